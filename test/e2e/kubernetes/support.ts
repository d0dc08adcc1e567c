import { execFile } from "node:child_process";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { build } from "../../../src/engine/build";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../src/engine/sandbox";
import { Session } from "../../../src/engine/session";

export const execP = promisify(execFile);
export const ROOT = resolve(__dirname, "../../..");
export const APP_FIXTURE = join(ROOT, "test/fixtures/k8s-app");
const CACHE = process.env["SEALANT_CACHE"] ?? join(homedir(), ".cache/sealant");

/** The two consecutive minors the base image is built for (scripts/kubernetes.sh builds and caches them). */
export const OLD = "v1.30.14";
export const NEW = "v1.31.4";
/** The minor before OLD (setup builds it too): a cluster on it goes to NEW through OLD, two minors in one change. */
export const OLDEST = "v1.29.15";

/**
 * Builds sealant's Kubernetes base image for `version` into the store under `home` with the
 * one-command script users run (binaries and container images come from the cache setup fills).
 */
export async function buildBaseImage(home: string, version: string): Promise<string> {
  const { stdout } = await execP("bash", [join(ROOT, "scripts/kube-base-image.sh"), version], {
    env: { ...process.env, SEALANT_HOME: home },
    maxBuffer: 64 << 20,
  });
  return stdout.trim();
}

export interface RealBed {
  home: string;
  session: Session;
  sb: Sandbox;
  /** The hello app built FROM sealant's base image, by version: `example/hello:<v>@sha256:...`. */
  app: Record<string, string>;
  /** The sandbox hosts' node addresses, in order. */
  ips: string[];
  close(): Promise<void>;
}

/**
 * A private store with sealant's Kubernetes base image for each version (built the way users build
 * it) and the hello app FROM each (its Deployment names docker.io/library/busybox by that name),
 * and `hosts` Kubernetes-capable sandbox hosts named `name`. `close` removes all of it.
 */
export async function openRealBed(name: string, hosts: number, versions: string[]): Promise<RealBed> {
  const home = await mkdtemp(join(tmpdir(), `sealant-${name}-`));
  let session: Session | undefined;
  let sb: Sandbox | undefined;
  const close = async () => {
    session?.close();
    if (sb) await sandboxDown(sb).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  };
  try {
    for (const v of versions) await buildBaseImage(home, v);
    session = await Session.open({ home });
    const app: Record<string, string> = {};
    for (const v of versions) {
      const built = await build(session, { context: APP_FIXTURE, tag: `example/hello:${v}`, buildArgs: { BASE: `sealant/kubernetes:${v}` } });
      app[v] = `example/hello:${v}@${built.digest}`;
    }
    sb = await sandboxUp(hosts, { kubernetes: true, name, dir: join(home, "sandbox") });
    return { home, session, sb, app, ips: sb.hosts.map((h) => h.ip), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The real kubectl (scripts/kubernetes.sh), run on this machine against the cluster with `kubeconfig`. */
export function kubectlWith(kubeconfig: string) {
  const bin = join(CACHE, `kubernetes-${NEW}`, "bin", "kubectl");
  return async (...args: string[]): Promise<string> => {
    const { stdout } = await execP(bin, ["--kubeconfig", kubeconfig, "--request-timeout=20s", ...args], { maxBuffer: 64 << 20 });
    return stdout;
  };
}

/**
 * etcd's member list, asked with etcdctl inside the etcd static pod `pod` (kubeadm's stacked
 * etcd, its own client certificate): one row per member, etcdctl's comma-separated fields.
 */
export async function etcdMembers(kubectl: ReturnType<typeof kubectlWith>, pod: string): Promise<string[][]> {
  const pki = "/etc/kubernetes/pki/etcd";
  const tls = ["--cacert", `${pki}/ca.crt`, "--cert", `${pki}/server.crt`, "--key", `${pki}/server.key`];
  const out = await kubectl("-n", "kube-system", "exec", pod, "--", "etcdctl", "--endpoints", "https://127.0.0.1:2379", ...tls, "member", "list");
  return out
    .trim()
    .split("\n")
    .map((l) => l.split(", "));
}

export async function writeKubeconfig(path: string, text: string | undefined): Promise<string> {
  if (!text) throw new Error("the cluster offered no kubeconfig");
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

interface KubeNodeJson {
  metadata: { name: string };
  status: { conditions: { type: string; status: string }[]; nodeInfo: { kubeletVersion: string }; addresses: { type: string; address: string }[] };
}

export interface NodeView {
  name: string;
  ip: string;
  ready: boolean;
  version: string;
}

export async function nodesOf(kubectl: ReturnType<typeof kubectlWith>): Promise<NodeView[]> {
  const list = JSON.parse(await kubectl("get", "nodes", "-o", "json")) as { items: KubeNodeJson[] };
  return list.items
    .map((n) => ({
      name: n.metadata.name,
      ip: n.status.addresses.find((a) => a.type === "InternalIP")?.address ?? "",
      ready: n.status.conditions.some((c) => c.type === "Ready" && c.status === "True"),
      version: n.status.nodeInfo.kubeletVersion,
    }))
    .sort((a, b) => a.ip.localeCompare(b.ip, undefined, { numeric: true }));
}

interface PodJson {
  metadata: { name: string; namespace: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { phase: string; containerStatuses?: { ready: boolean }[] };
}

export interface PodView {
  name: string;
  namespace: string;
  node: string;
  phase: string;
  ready: boolean;
  images: string[];
}

export async function podsOf(kubectl: ReturnType<typeof kubectlWith>, namespace?: string): Promise<PodView[]> {
  const list = JSON.parse(await kubectl("get", "pods", ...(namespace ? ["-n", namespace] : ["-A"]), "-o", "json")) as { items: PodJson[] };
  return list.items.map((p) => ({
    name: p.metadata.name,
    namespace: p.metadata.namespace,
    node: p.spec.nodeName ?? "",
    phase: p.status.phase,
    ready: (p.status.containerStatuses ?? []).length > 0 && (p.status.containerStatuses ?? []).every((c) => c.ready),
    images: p.spec.containers.map((c) => c.image),
  }));
}

/** Polls `probe` until it returns true (errors count as false), failing with `what` after `timeoutMs`. */
export async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${last})` : ""}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** What a reset must leave on a host: nothing of Kubernetes running, mounted, networked or written. */
export const LEFTOVERS = `
ps -eo comm= | grep -E '^(kubelet|containerd|containerd-shim|etcd|kube-|flanneld|coredns|haproxy|pause)' || true
grep -E ' /(var/lib/kubelet|run/containerd|var/lib/containerd)/' /proc/self/mounts || true
ip -o link show | grep -Eo ' (cni0|flannel[^:]*|veth[^:@]*)' || true
iptables-save 2> /dev/null | grep -E 'KUBE-|FLANNEL|CNI-' | head -3 || true
ls -d /etc/kubernetes /etc/cni/net.d/* /var/lib/etcd/member /etc/containerd/config.toml 2> /dev/null || true
ip -o addr show dev lo | grep -F 10.103.97.2 || true
`;
