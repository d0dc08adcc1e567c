import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import { KubernetesCluster } from "../../src/constructs";
import { clusterIdentifierOf } from "../../src/constructs/kubernetes-provider";

/*
 * KubernetesCluster's Kubernetes provider under Pulumi's mocks (no engine; the mocks record what
 * is registered), and, in a process of its own, a program whose node_modules lack
 * @pulumi/kubernetes. The provider's behaviour on a real cluster is
 * test/e2e/pulumi-kubernetes/cluster-provider.test.ts.
 */
interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];
const KUBECONFIG = "apiVersion: v1\nkind: Config\n";

void pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      const state: Record<string, unknown> = { ...args.inputs };
      if ("hosts" in args.inputs) Object.assign(state, { endpoint: "", kubeconfig: KUBECONFIG, caCertificate: "", nodes: [], plan: "", lastPlan: [] });
      return { id: `${args.name}-id`, state };
    },
    call() {
      return {};
    },
  },
  "sealant-test",
  "test",
  false,
);

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const value = <T>(o: pulumi.Output<T>): Promise<T> => new Promise((done) => o.apply(done));
/** Lets the mocks' registrations (asynchronous) arrive. */
const settled = () => new Promise((done) => setTimeout(done, 50));
const props = { image: `example/k8s:1@sha256:${"ab".repeat(32)}`, masters: ["10.0.0.3", "10.0.0.2"], workers: ["10.0.0.9"] };

beforeEach(() => {
  registered.length = 0;
});

describe("KubernetesCluster's Kubernetes provider", () => {
  it("exists only when asked for: a cluster alone registers no kubeconfig resource and no provider", async () => {
    new KubernetesCluster("alone", props);
    await settled();
    expect(registered.map((r) => r.type)).toEqual(["sealant:index:KubernetesCluster", "pulumi-nodejs:dynamic/sealant:Cluster"]);
  });

  it("cluster.provider: a k8s.Provider from the stable kubeconfig, clusterIdentifier the cluster's name; asked twice, the same one", async () => {
    const cluster = new KubernetesCluster("prod", props);
    const provider = cluster.provider;
    expect(cluster.provider).toBe(provider);
    expect(await value(cluster.kubernetes.clusterIdentifier)).toBe("sealant:prod");
    await settled();
    const stable = registered.find((r) => r.type === "pulumi-nodejs:dynamic/sealant:ClusterKubeconfig")!;
    expect(stable.name).toBe("prod-kubeconfig");
    // The server as the program knows it before any apply: the first master in address order.
    expect(stable.inputs).toMatchObject({
      server: "https://10.0.0.2:6443",
      clusterIdentifier: "sealant:prod",
      kubeconfig: { [SECRET_SIG]: expect.anything() },
    });
    const k8s = registered.filter((r) => r.type === "pulumi:providers:kubernetes");
    expect(k8s.map((r) => r.name)).toEqual(["prod-kubernetes"]);
    expect(k8s[0]!.inputs).toMatchObject({ clusterIdentifier: "sealant:prod" });
    expect(await value(cluster.kubernetes.kubeconfig)).toBe(KUBECONFIG);
  });
});

describe("clusterIdentifierOf", () => {
  it("is the cluster's name, with a digest of what else replaces the cluster (data root, network ranges) when set", () => {
    expect(clusterIdentifierOf("prod", undefined, { drainTimeout: 60 })).toBe("sealant:prod");
    const withRoot = clusterIdentifierOf("prod", "/data/prod/", undefined);
    expect(withRoot).toMatch(/^sealant:prod:[0-9a-f]{12}$/);
    const pods = (podSubnet: string) => clusterIdentifierOf("prod", undefined, { kubeadm: [{ kind: "ClusterConfiguration", networking: { podSubnet } }] });
    expect(new Set([withRoot, pods("10.245.0.0/16"), pods("10.246.0.0/16")]).size).toBe(3);
    expect(pods("10.245.0.0/16")).toBe(pods("10.245.0.0/16"));
  });
});

describe("a program without @pulumi/kubernetes installed", () => {
  const ROOT = resolve(__dirname, "../..");

  it("asking for cluster.provider fails with one error saying what to install; the cluster alone works, and no declaration names the package", async () => {
    // The compiled package (dist) in a node_modules of its own that has every dependency but @pulumi/kubernetes.
    const dir = await mkdtemp(join(tmpdir(), "sealant-no-k8s-"));
    try {
      const modules = join(dir, "node_modules");
      await mkdir(join(modules, "@pulumi"), { recursive: true });
      for (const entry of await readdir(join(ROOT, "node_modules"))) {
        if (entry !== "@pulumi" && entry !== "sealant" && entry !== ".bin") await symlink(join(ROOT, "node_modules", entry), join(modules, entry));
      }
      for (const entry of await readdir(join(ROOT, "node_modules/@pulumi"))) {
        if (entry !== "kubernetes") await symlink(join(ROOT, "node_modules/@pulumi", entry), join(modules, "@pulumi", entry));
      }
      await cp(join(ROOT, "dist"), join(modules, "sealant/dist"), { recursive: true });
      await cp(join(ROOT, "package.json"), join(modules, "sealant/package.json"));
      const program = `const pulumi = require("@pulumi/pulumi");
pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: () => ({}) }, "p", "s", false);
const { KubernetesCluster } = require("sealant");
const cluster = new KubernetesCluster("prod", ${JSON.stringify(props)});
try { cluster.provider; console.log("no error"); } catch (err) { console.log(err.message); }
`;
      await writeFile(join(dir, "index.js"), program);
      // Types too: the package's declarations compile without @pulumi/kubernetes (no skipLibCheck needed).
      const declarations = (await readdir(join(modules, "sealant/dist"), { recursive: true })).filter((f) => f.endsWith(".d.ts"));
      expect(declarations.length).toBeGreaterThan(10);
      for (const f of declarations)
        expect(await readFile(join(modules, "sealant/dist", f), "utf8"), f).not.toMatch(/from "@pulumi\/kubernetes"|import\("@pulumi\/kubernetes"\)/);
      const { stdout } = await promisify(execFile)(process.execPath, ["index.js"], { cwd: dir });
      expect(stdout.trim()).toBe(
        'KubernetesCluster "prod": a Kubernetes provider needs the npm package @pulumi/kubernetes (^4.25.0), which is not installed: npm install @pulumi/kubernetes',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
