import { execFile } from "node:child_process";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { writeFile } from "node:fs/promises";
import { hostExec, type Sandbox } from "../../src/engine/sandbox";

export const execP = promisify(execFile);
export const ROOT = resolve(__dirname, "../..");
export const APP_FIXTURE = join(ROOT, "test/fixtures/k8s-app");
const CACHE = process.env["SEALANT_CACHE"] ?? join(homedir(), ".cache/sealant");

/** The two consecutive minors the base image is built for (scripts/kubernetes.sh builds and caches them). */
export const OLD = "v1.30.14";
export const NEW = "v1.31.4";

/**
 * Builds sealant's Kubernetes base image for `version` into the store under `home` with the
 * one-command script users run (binaries and container images come from the cache setup fills).
 */
export async function buildBaseImage(home: string, version: string): Promise<string> {
  const { stdout } = await execP("bash", [join(ROOT, "scripts/kube-base-image.sh"), version], { env: { ...process.env, SEALANT_HOME: home }, maxBuffer: 64 << 20 });
  return stdout.trim();
}

/** The real kubectl (scripts/kubernetes.sh), run on this machine against the cluster with `kubeconfig`. */
export function kubectlWith(kubeconfig: string) {
  const bin = join(CACHE, `kubernetes-${NEW}`, "bin", "kubectl");
  return async (...args: string[]): Promise<string> => {
    const { stdout } = await execP(bin, ["--kubeconfig", kubeconfig, "--request-timeout=20s", ...args], { maxBuffer: 64 << 20 });
    return stdout;
  };
}

export async function writeKubeconfig(path: string, text: string | undefined): Promise<string> {
  if (!text) throw new Error("the cluster offered no kubeconfig");
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

/** A command inside a sandbox host (its own namespaces), failing with its stderr. */
export async function inHost(sb: Sandbox, ip: string, script: string): Promise<string> {
  const r = await hostExec(sb, ip, ["/bin/sh", "-c", script], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${ip}: \`${script}\` exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
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
