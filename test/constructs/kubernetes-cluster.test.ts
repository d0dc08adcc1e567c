import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import { InvalidPropsError, KubernetesCluster } from "../../src/constructs";
import { checkedProp, hostProblems, mergeEnv } from "../../src/constructs/kubernetes-cluster";

/*
 * KubernetesCluster under Pulumi's mocks: no engine, no provider runs; the mocks record every
 * resource registered (type, name, inputs) and the mock monitor gives each its URN, whose type
 * chain names the parent's type. Resources are only created when a constructor is called, so
 * setting the mocks here, before any test, is early enough.
 */
interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];
const REPO_DIGEST = `registry.example.com/team/etcd:3.4@sha256:${"ab".repeat(32)}`;

void pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      const state: Record<string, unknown> = { ...args.inputs };
      if (args.type.endsWith(":ImageBuild"))
        Object.assign(state, { ref: "registry.example.com/team/etcd:3.4", digest: `sha256:${"ab".repeat(32)}`, repoDigest: REPO_DIGEST });
      if ("hosts" in args.inputs)
        Object.assign(state, {
          imageDigest: `sha256:${"ab".repeat(32)}`,
          nodes: [],
          plan: "create",
          lastPlan: [],
          endpoint: "",
          kubeconfig: "",
          caCertificate: "",
        });
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

const monitor = () => pulumi.runtime.getMonitor() as unknown as { resources: Map<string, { urn: string }> };

/** The mocks see secrets in their wire form: `{ <secret sig>: ..., value }`. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
function isSecretValue(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && SECRET_SIG in v;
}
function reveal(v: unknown): unknown {
  if (isSecretValue(v)) return reveal(v.value);
  if (Array.isArray(v)) return v.map(reveal);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
  return v;
}

function value<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply(resolve));
}

/** The parent's type of each registered resource, by `type::name` (from the URN's type chain). */
function parents(): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const urn of monitor().resources.keys()) {
    const [, , chain, name] = urn.split("::");
    const types = chain!.split("$");
    out.set(`${types.at(-1)}::${name}`, types.length > 1 ? types.at(-2) : undefined);
  }
  return out;
}

const clusterOf = () => registered.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic") && "hosts" in r.inputs);

beforeEach(() => {
  registered.length = 0;
});

describe("KubernetesCluster", () => {
  it("GIVEN an image ref and host IPs WHEN created THEN one Cluster child keyed by IP with master/node roles", async () => {
    const ref = `registry.example.com/team/etcd:3.4@sha256:${"cd".repeat(32)}`;
    const k = new KubernetesCluster("kc", {
      image: ref,
      masters: ["10.0.0.3", "10.0.0.2"],
      workers: ["10.0.0.10"],
      ssh: { user: "root", privateKeyPath: "/keys/id" },
    });
    await value(k.cluster.urn);

    const clusters = clusterOf();
    expect(clusters).toHaveLength(1);
    expect(registered.filter((r) => r.type.endsWith(":ImageBuild"))).toHaveLength(0);
    const c = clusters[0]!;
    expect(c.name).toBe("kc");
    expect(c.inputs["name"]).toBe("kc");
    expect(c.inputs["image"]).toBe(ref);
    expect(c.inputs["hosts"]).toEqual({ "10.0.0.2": { roles: ["master"] }, "10.0.0.3": { roles: ["master"] }, "10.0.0.10": { roles: ["node"] } });
    // The Cluster makes its ssh settings secret.
    expect(isSecretValue(c.inputs["ssh"])).toBe(true);
    expect(reveal(c.inputs["ssh"])).toEqual({ user: "root", privateKeyPath: "/keys/id" });

    // The Cluster's parent is the component; the component has none.
    const p = parents();
    expect(p.get(`${c.type}::kc`)).toBe("sealant:index:KubernetesCluster");
    expect(p.get("sealant:index:KubernetesCluster::kc")).toBeUndefined();

    expect(await value(k.masters)).toEqual(["10.0.0.2", "10.0.0.3"]);
    expect(await value(k.workers)).toEqual(["10.0.0.10"]);
    // The first master in address order anchors the cluster.
    expect(await value(k.endpoint)).toBe("https://10.0.0.2:6443");
    expect(await value(k.kubeconfig)).toBe("");
    expect(await pulumi.isSecret(k.kubeconfig)).toBe(true);
    expect(await value(k.image)).toBe(ref);
  });

  it("GIVEN a cluster WHEN backup and restore are asked of it THEN a ClusterBackup and a ClusterRestore child with the cluster's own arguments", async () => {
    const k = new KubernetesCluster("kb", {
      image: REPO_DIGEST,
      masters: ["10.0.0.2"],
      workers: ["10.0.0.10"],
      ssh: { user: "root", privateKeyPath: "/keys/id" },
      runtime: { drainTimeout: 60 },
    });
    const backup = k.backup("nightly", { to: "/var/backups/k8s", trigger: "2026-12-05", push: "registry.example.com/backups/kb:latest" });
    const restore = k.restore("back", { from: "oci://registry.example.com/backups/kb:latest" });
    await Promise.all([value(backup.urn), value(restore.urn)]);

    const byName = (n: string) => registered.find((r) => r.name === n)!;
    const b = byName("nightly");
    const r = byName("back");
    const cluster = clusterOf().find((c) => c.name === "kb")!;
    for (const child of [b, r]) {
      for (const key of ["name", "image", "runtime"]) expect(child.inputs[key]).toEqual(cluster.inputs[key]);
      expect(reveal(child.inputs["hosts"])).toEqual({ "10.0.0.2": { roles: ["master"] }, "10.0.0.10": { roles: ["node"] } });
      expect(isSecretValue(child.inputs["ssh"])).toBe(true);
      expect(parents().get(`${child.type}::${child.name}`)).toBe("sealant:index:KubernetesCluster");
    }
    expect(b.inputs).toMatchObject({ to: "/var/backups/k8s", trigger: "2026-12-05", push: "registry.example.com/backups/kb:latest" });
    expect(r.inputs["from"]).toBe("oci://registry.example.com/backups/kb:latest");
  });

  it("GIVEN distribution WHEN created THEN the Cluster gets it as given", async () => {
    const k = new KubernetesCluster("relayed", {
      image: `example/etcd:3.4@sha256:${"cd".repeat(32)}`,
      masters: ["10.0.0.2"],
      workers: ["10.0.0.10", "10.0.0.11"],
      distribution: { mode: "relay", fanout: pulumi.output(2) },
    });
    await value(k.cluster.urn);
    const c = clusterOf().find((x) => x.name === "relayed")!;
    expect(c.inputs["distribution"]).toEqual({ mode: "relay", fanout: 2 });
  });

  it("GIVEN { build } WHEN created THEN an ImageBuild child and the Cluster runs its repoDigest", async () => {
    const k = new KubernetesCluster("built", {
      image: { build: { context: "./examples/etcd", tag: "registry.example.com/team/etcd:3.4" } },
      masters: ["10.0.0.2"],
      clusterName: "etcd",
    });
    await value(k.cluster.urn);

    const builds = registered.filter((r) => r.type.endsWith(":ImageBuild"));
    expect(builds.map((b) => b.name)).toEqual(["built-image"]);
    expect(builds[0]!.inputs).toMatchObject({ context: "./examples/etcd", tag: "registry.example.com/team/etcd:3.4" });
    expect(k.imageBuild).toBeDefined();
    const c = clusterOf()[0]!;
    expect(c.inputs["image"]).toBe(REPO_DIGEST);
    expect(c.inputs["name"]).toBe("etcd");
    const p = parents();
    expect(p.get(`${builds[0]!.type}::built-image`)).toBe("sealant:index:KubernetesCluster");
    expect(p.get(`${c.type}::built`)).toBe("sealant:index:KubernetesCluster");
  });

  it("GIVEN settings per group and per host WHEN created THEN each host carries them over the group's", async () => {
    const k = new KubernetesCluster("set", {
      image: "example/etcd:3.4",
      masters: ["10.0.0.2"],
      workers: ["10.0.0.10", "10.0.0.11"],
      workerSettings: { labels: { tier: "worker" }, taints: ["dedicated=db:NoSchedule"] },
      hostSettings: { "10.0.0.11": { labels: { disk: "ssd" }, taints: [] } },
    });
    await value(k.cluster.urn);
    expect(clusterOf()[0]!.inputs["hosts"]).toEqual({
      "10.0.0.2": { roles: ["master"] },
      "10.0.0.10": { roles: ["node"], labels: { tier: "worker" }, taints: ["dedicated=db:NoSchedule"] },
      "10.0.0.11": { roles: ["node"], labels: { tier: "worker", disk: "ssd" }, taints: [] },
    });
  });

  it("GIVEN host IPs as outputs WHEN they resolve THEN the hosts are keyed by them", async () => {
    const k = new KubernetesCluster("late", { image: "example/etcd:3.4", masters: pulumi.output(["10.0.0.5"]), workers: [pulumi.output("10.0.0.6")] });
    await value(k.cluster.urn);
    expect(clusterOf()[0]!.inputs["hosts"]).toEqual({ "10.0.0.5": { roles: ["master"] }, "10.0.0.6": { roles: ["node"] } });
  });

  it("GIVEN ssh settings per host as plain strings and secrets (hostSettings, masterSettings) WHEN created THEN the Cluster gets the hosts as a secret, each with its settings", async () => {
    const k = new KubernetesCluster("hostssh", {
      image: "example/etcd:3.4",
      masters: ["10.0.0.2"],
      workers: ["10.0.0.10", "10.0.0.11"],
      masterSettings: { ssh: { password: pulumi.secret("master-pw") } },
      workerSettings: { labels: { tier: pulumi.output("worker") } },
      hostSettings: { "10.0.0.11": pulumi.output({ ssh: { password: "plain-pw", port: 2222 } }) },
    });
    await value(k.cluster.urn);
    const hosts = clusterOf()[0]!.inputs["hosts"];
    expect(isSecretValue(hosts)).toBe(true);
    expect(reveal(hosts)).toEqual({
      "10.0.0.2": { roles: ["master"], ssh: { password: "master-pw" } },
      "10.0.0.10": { roles: ["node"], labels: { tier: "worker" } },
      "10.0.0.11": { roles: ["node"], labels: { tier: "worker" }, ssh: { password: "plain-pw", port: 2222 } },
    });
    // Only the plain string: still a secret (the Cluster makes every host's ssh secret).
    const plain = new KubernetesCluster("hostssh-plain", {
      image: "example/etcd:3.4",
      masters: ["10.0.0.2"],
      hostSettings: { "10.0.0.2": { ssh: { password: "plain-pw" } } },
    });
    await value(plain.cluster.urn);
    expect(isSecretValue(clusterOf().find((c) => c.name === "hostssh-plain")!.inputs["hosts"])).toBe(true);
  });

  it("GIVEN env for a group and a host, as maps or sealer's KEY=VALUE lists WHEN merged THEN the host's over the group's (one list when either is a list)", () => {
    expect(mergeEnv({ A: "1", B: "2" }, { B: "3" })).toEqual({ A: "1", B: "3" });
    expect(mergeEnv(["A=1", "B=2"], { B: "3" })).toEqual(["A=1", "B=2", "B=3"]);
    expect(mergeEnv({ A: "1" }, ["A=2"])).toEqual(["A=1", "A=2"]);
    expect(mergeEnv(undefined, ["A=2"])).toEqual(["A=2"]);
    expect(mergeEnv({ A: "1" }, undefined)).toEqual({ A: "1" });
  });

  it("GIVEN a prop checked now or when it resolves WHEN it is bad THEN the problem is collected now, or the output fails with the construct's error", async () => {
    const problems: string[] = [];
    const positive = (v: number) => (v > 0 ? undefined : `size must be positive (got ${v})`);
    expect(checkedProp('X "x"', 0, positive, problems)).toBe(0);
    expect(problems).toEqual(["size must be positive (got 0)"]);
    const later = checkedProp('X "x"', pulumi.output(-1), positive, problems) as pulumi.Output<number>;
    expect(problems).toHaveLength(1);
    const failed = later as unknown as { promise(): Promise<number>; isKnown: Promise<boolean>; isSecret: Promise<boolean> };
    // The failure is what a deployment reports; here it is only looked at.
    for (const p of [failed.isKnown, failed.isSecret]) p.catch(() => undefined);
    const promise = failed.promise();
    await expect(promise).rejects.toThrow(InvalidPropsError);
    await expect(promise).rejects.toThrow('X "x": size must be positive (got -1)');
    expect(await value(checkedProp("X", pulumi.secret(5), positive, problems) as pulumi.Output<number>)).toBe(5);
    expect(await pulumi.isSecret(checkedProp("X", pulumi.secret(5), positive, problems) as pulumi.Output<number>)).toBe(true);
  });

  describe("validation at construction, in the props' terms", () => {
    const base = { image: "example/etcd:3.4", masters: ["10.0.0.2"] };
    const fails = (props: object, message: RegExp) => {
      let err: unknown;
      try {
        new KubernetesCluster("bad", props as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidPropsError);
      expect((err as Error).message).toMatch(/^KubernetesCluster "bad"/);
      expect((err as Error).message).toMatch(message);
      // Nothing was registered for a construct that failed validation.
      expect(registered.filter((r) => r.name.startsWith("bad"))).toEqual([]);
    };

    it("no masters", () => fails({ ...base, masters: [] }, /masters must list at least one host IP \(got \[\]\)/));
    it("masters missing", () => fails({ image: "example/etcd:3.4" }, /masters is required/));
    it("an IP in masters and workers", () => fails({ ...base, workers: ["10.0.0.2"] }, /workers\[0\]: 10\.0\.0\.2 is already masters\[0\]/));
    it("an IP twice in workers", () => fails({ ...base, workers: ["10.0.0.7", "10.0.0.7"] }, /workers\[1\]: 10\.0\.0\.7 is already workers\[0\]/));
    it("not an IP", () => fails({ ...base, workers: ["node-1"] }, /workers\[0\]: .*node-1/));
    it("mixed families", () => fails({ ...base, workers: ["fd00::7"] }, /mix IPv4 and IPv6/));
    it("a bad image ref", () => fails({ ...base, image: "Bad Ref" }, /image: invalid image reference "Bad Ref"/));
    it("no image", () => fails({ masters: ["10.0.0.2"] }, /image is required/));
    it("a construct name that is no DNS label, without clusterName", () => {
      expect(() => new KubernetesCluster("Prod_1", base)).toThrow(
        /clusterName "Prod_1" is not a valid DNS label.*\(it defaults to the construct's name; set clusterName\)/,
      );
    });
    it("a clusterName that is no DNS label", () => fails({ ...base, clusterName: "Prod_1" }, /clusterName "Prod_1" is not a valid DNS label/));
    it("every problem at once", () =>
      fails({ image: "Bad Ref", masters: [], workers: ["x"] }, /invalid props:\n {2}- .*image[\s\S]*masters must list[\s\S]*workers\[0\]/));
  });

  it("host IPs known only later (outputs) are checked by the same rules when they resolve", () => {
    // The construct runs hostProblems inside the apply that builds the Cluster's hosts; a
    // problem there fails `pulumi up` with the same message (not run here: under mocks it is
    // an unhandled rejection of the registration).
    expect(hostProblems(["10.0.0.5"], ["10.0.0.5"])).toEqual(["workers[0]: 10.0.0.5 is already masters[0]; a host is a master or a worker, once"]);
    expect(hostProblems(["fd00::1", "FD00:0::1"], [])).toEqual(["masters[1]: FD00:0::1 is already masters[0]; a host is a master or a worker, once"]);
    expect(hostProblems([], ["10.0.0.6"], false)).toEqual([]);
  });
});
