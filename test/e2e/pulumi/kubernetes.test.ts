import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../src/engine/sandbox";
import { eventually, kubectlWith, nodesOf } from "../kubernetes/support";
import { inHost as inHostOf } from "../../support/hosts";
import { pulumiBin } from "./support";

/**
 * The Pulumi program examples/pulumi-kubernetes (TypeScript, run by the real Pulumi CLI that
 * scripts/pulumi-cli.sh builds, file:// backend) creating a real Kubernetes cluster — kubeadm,
 * kubelet, containerd, etcd, flannel, CoreDNS, all built from source by this repo's scripts — on
 * three Kubernetes-capable sandbox hosts, with an application image built FROM sealant's
 * Kubernetes base image. The real kubectl on this machine, with the kubeconfig the stack
 * outputs, judges the cluster; the hosts themselves (hostExec) judge the reset. No doubles.
 */
const ROOT = resolve(__dirname, "../../..");
const PROGRAM = join(ROOT, "examples/pulumi-kubernetes");
const CLI = join(ROOT, "dist/cli/main.js");
const VERSION = "v1.31.4";
const STACK = "e2e";
const execP = promisify(execFile);

interface Run {
  code: number;
  output: string;
}

/** A copy of the program with its own backend, PULUMI_HOME and sealant home (nothing shared with other runs). */
class Project {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(base: string, sealantHome: string) {
    this.dir = join(base, "program");
    this.env = {
      ...process.env,
      PATH: `${pulumiBin()}:${join(ROOT, "node_modules/@pulumi/pulumi")}:${process.env["PATH"] ?? ""}`,
      PULUMI_BACKEND_URL: `file://${join(base, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "sealant-e2e-kubernetes",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_HOME: join(base, "pulumi-home"),
      SEALANT_HOME: sealantHome,
      NO_COLOR: "1",
    };
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await mkdir(join(this.dir, "../state"), { recursive: true });
    for (const f of ["Pulumi.yaml", "index.ts", "package.json", "tsconfig.json"]) await copyFile(join(PROGRAM, f), join(this.dir, f));
    await symlink(join(ROOT, "node_modules"), join(this.dir, "node_modules"));
  }

  run(args: string[], input = ""): Promise<Run> {
    return new Promise((done, fail) => {
      const child = spawn("pulumi", [...args, "--non-interactive", "--stack", STACK], { cwd: this.dir, env: this.env, stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("error", fail);
      child.on("close", (code) => done({ code: code ?? 1, output }));
      child.stdin.end(input);
    });
  }

  /** `pulumi args...`; a non-zero exit is an error carrying the whole output. */
  async ok(args: string[], input = ""): Promise<string> {
    const r = await this.run(args, input);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${r.output}`);
    return r.output;
  }
}

/** The new `plan` of a `pulumi preview --diff`: inline after "=>", or the "+" lines under "~ plan". */
function plannedLines(preview: string): string[] {
  const lines = preview.split("\n");
  const at = lines.findIndex((l) => /^\s*~ plan\s*:/.test(l));
  if (at < 0) return [];
  // A one-line plan is shown inline: ~ plan: "old" => "new".
  const inline = /=>\s*"(.*)"\s*$/.exec(lines[at]!);
  if (inline)
    return JSON.parse(`"${inline[1]!}"`)
      .split("\n")
      .map((l: string) => l.trim())
      .filter(Boolean);
  const out: string[] = [];
  for (const l of lines.slice(at + 1)) {
    const m = /^\s*([-+]) (.*)$/.exec(l);
    if (!m) break;
    if (m[1] === "+") out.push(m[2]!.trim());
  }
  return out;
}

describe("the Pulumi program examples/pulumi-kubernetes with the real CLI: a real Kubernetes cluster", () => {
  let base: string;
  let sb: Sandbox;
  let project: Project;
  let image: string;
  let privateKey: string;
  let m: string, w1: string, w2: string;
  let kubeconfigFile: string;
  let kubeconfigText: string;
  let previewedPlan: string[] = [];
  let executedPlan: string[] = [];
  let destroyed = false;

  /** The real kubectl on this machine, with the kubeconfig the stack outputs. */
  const kubectl = (...args: string[]) => kubectlWith(kubeconfigFile)(...args);
  const nodes = () => nodesOf(kubectl);
  /** The hello app's pods: phase and readiness. */
  const helloPods = async () => {
    const list = JSON.parse(await kubectl("get", "pods", "-n", "hello", "-l", "app=hello", "-o", "json")) as {
      items: { status: { phase: string; containerStatuses?: { ready: boolean }[] } }[];
    };
    return list.items.map((p) => ({ phase: p.status.phase, ready: (p.status.containerStatuses ?? []).some((c) => c.ready) }));
  };
  const helloRunning = async () => {
    const pods = await helloPods();
    return pods.length === 2 && pods.every((p) => p.phase === "Running" && p.ready);
  };
  const inHost = (ip: string, script: string) => inHostOf(sb, ip, script);

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "sealant-pulumi-k8s-"));
    const home = join(base, "sealant-home");
    await mkdir(home, { recursive: true });
    const env = { ...process.env, SEALANT_HOME: home };
    // GIVEN sealant's Kubernetes base image, built with the one-command script users run, and the
    // hello app (a busybox httpd Deployment + Service) built FROM it, pinned by digest.
    await execP("bash", [join(ROOT, "scripts/kube-base-image.sh"), VERSION], { env, maxBuffer: 64 << 20 });
    await execP(
      "node",
      [CLI, "build", "-q", "-t", `example/hello:${VERSION}`, "--build-arg", `BASE=sealant/kubernetes:${VERSION}`, join(ROOT, "test/fixtures/k8s-app")],
      { env, maxBuffer: 64 << 20 },
    );
    const inspected = JSON.parse((await execP("node", [CLI, "inspect", `example/hello:${VERSION}`, "--json"], { env, maxBuffer: 64 << 20 })).stdout) as {
      digest: string;
    };
    image = `example/hello:${VERSION}@${inspected.digest}`;
    // AND three Kubernetes-capable sandbox hosts (own network namespaces, reached through a veth).
    sb = await sandboxUp(3, { kubernetes: true, name: `pk8s-${randomBytes(3).toString("hex")}`, dir: join(base, "sandbox") });
    [m, w1, w2] = sb.hosts.map((h) => h.ip) as [string, string, string];
    privateKey = await readFile(sb.ssh.pk, "utf8");
    // AND a stack of the program: the image, 1 master + 1 worker, the sandbox's key (secret) and known_hosts.
    project = new Project(join(base, "pulumi"), home);
    await project.init();
    await project.ok(["stack", "init"]); // named by --stack
    await project.ok(["config", "set", "image", image]);
    await project.ok(["config", "set", "--path", "masters[0]", m]);
    await project.ok(["config", "set", "--path", "workers[0]", w1]);
    await project.ok(["config", "set", "knownHosts", sb.ssh.knownHosts]);
    await project.ok(["config", "set", "--secret", "sshPrivateKey"], privateKey);
    kubeconfigFile = join(base, "admin.conf");
  }, 300_000);

  afterAll(async () => {
    // After a failure: destroy what is left (the hosts go down with the sandbox anyway).
    if (project && !destroyed) await project.run(["destroy", "--yes"]).catch(() => undefined);
    if (sb) await sandboxDown(sb).catch(() => undefined);
    if (base) await rm(base, { recursive: true, force: true });
  }, 300_000);

  it("WHEN pulumi up with 1 master + 1 worker THEN the kubeconfig output lets kubectl list 2 Ready nodes and the hello pods Running", async () => {
    const up = await project.ok(["up", "--yes", "--skip-preview"]);
    expect(up).toMatch(/create cluster/);

    kubeconfigText = await project.ok(["stack", "output", "--show-secrets", "kubeconfig"]);
    await writeFile(kubeconfigFile, kubeconfigText, { mode: 0o600 });
    expect(kubeconfigText).toContain(`server: https://${m}:6443`);
    const outputs = JSON.parse(await project.ok(["stack", "output", "--json"])) as Record<string, unknown>;
    expect(outputs["endpoint"]).toBe(`https://${m}:6443`);
    expect(outputs["kubeconfig"]).toBe("[secret]");
    expect((outputs["nodes"] as { ip: string; roles: string[] }[]).map((n) => [n.ip, n.roles])).toEqual([
      [m, ["master"]],
      [w1, ["node"]],
    ]);

    expect(await nodes()).toEqual([m, w1].map((ip) => expect.objectContaining({ ip, ready: true, version: VERSION })));
    await eventually("the hello app's 2 pods Running and ready", helloRunning);
  }, 300_000);

  it("WHEN workers gets the 3rd host THEN preview --diff shows its join and up joins it: 3 Ready nodes", async () => {
    await project.ok(["config", "set", "--path", "workers[1]", w2]);
    const preview = await project.ok(["preview", "--diff"]);
    expect(preview).toContain(`join ${w2} (node)`);
    expect(preview).not.toMatch(/remove 10\.|upgrade image|replace/);

    previewedPlan = plannedLines(preview);
    expect(previewedPlan).toContain(`join ${w2} (node)`);

    await project.ok(["up", "--yes", "--skip-preview"]);
    executedPlan = JSON.parse(await project.ok(["stack", "output", "lastPlan", "--json"])) as string[];
    expect(executedPlan).toEqual([`join ${w2} (node)`]);
    expect(await nodes()).toEqual([m, w1, w2].map((ip) => expect.objectContaining({ ip, ready: true, version: VERSION })));
    await eventually("the hello app still Running", helloRunning);
    // Nothing changed since: nothing to do.
    expect(await project.ok(["preview"])).toMatch(/\d+ unchanged/);
    expect(await project.ok(["preview"])).not.toMatch(/to update|to create|to delete/);
  }, 300_000);

  // The preview's "current" cluster (src/provider/impl/cluster.ts, asApplied) records which
  // masters each worker follows, as an apply does: no phantom "point <w> at masters <m>".
  it("THEN the plan preview showed is the plan up ran", () => {
    expect(previewedPlan).toEqual(executedPlan);
  });

  it("THEN the stack's state holds the kubeconfig and the private key only encrypted", async () => {
    const exported = await project.ok(["stack", "export"]);
    const keyBody = privateKey.split("\n")[2]!; // a line of the key's base64 body
    const clientKey = /client-key-data: (\S+)/.exec(kubeconfigText)?.[1];
    expect(keyBody.length).toBeGreaterThan(20);
    expect(clientKey?.length).toBeGreaterThan(100);
    for (const secret of [keyBody, clientKey!]) expect(exported).not.toContain(secret);
    expect(exported).not.toMatch(/client-key-data|PRIVATE KEY/);
    // They are there, as ciphertext: the same export with --show-secrets has them.
    const shown = await project.ok(["stack", "export", "--show-secrets"]);
    for (const secret of [keyBody, clientKey!]) expect(shown).toContain(secret);
  }, 120_000);

  it("WHEN pulumi destroy THEN every host is reset: no kubelet or containerd, nothing mounted under /var/lib/kubelet, no pod network interface", async () => {
    const out = await project.ok(["destroy", "--yes", "--skip-preview"]);
    expect(out).toMatch(/deleted/);
    for (const ip of [m, w1, w2]) {
      const left = await inHost(
        ip,
        [
          "ps -eo comm= | grep -E '^(kubelet|containerd|containerd-shim.*|kube-.*|etcd|flanneld|coredns|haproxy|pause)$' || true",
          "grep -E ' /var/lib/kubelet/' /proc/self/mounts || true",
          "ip -o link show | grep -Eo ' (cni0|flannel[^:]*|veth[^:@]*)' || true",
        ].join("; "),
      );
      expect(`${ip}:\n${left}`).toBe(`${ip}:\n`);
    }
    destroyed = true;
    await project.ok(["stack", "rm", "--yes"]);
  }, 300_000);
});
