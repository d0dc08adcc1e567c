import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import { sshArgs } from "../../../src/engine/sandbox";
import { execP, type Bed } from "./support";

/**
 * What a user does once for hosts whose Clusterfile cannot name a known_hosts file (sealer's
 * has no such field): put their keys into sealant's own known_hosts ($SEALANT_HOME/known_hosts),
 * which every connection checks under the default strict host-key policy.
 */
export async function trustSandboxHosts(bed: Bed): Promise<void> {
  await copyFile(bed.sandbox.ssh.knownHosts, join(bed.home, "known_hosts"));
}

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a shell command as root on a sandbox host with the system ssh client; never throws on a non-zero exit. */
export async function shOn(bed: Bed, ip: string, command: string): Promise<ShResult> {
  try {
    const { stdout, stderr } = await execP("ssh", sshArgs(bed.sandbox, ip, command), { maxBuffer: 16 << 20 });
    return { code: 0, stdout: stdout.trim(), stderr: stderr.trim() };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: (e.stdout ?? "").trim(), stderr: (e.stderr ?? "").trim() };
  }
}

/** The same, failing with the host, command and stderr when the command fails; returns trimmed stdout. */
export async function sh(bed: Bed, ip: string, command: string): Promise<string> {
  const r = await shOn(bed, ip, command);
  if (r.code !== 0) throw new Error(`${ip}: \`${command}\` exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A containerd of the test's own on a sandbox host: a plain process, no CRI, its own socket. */
export interface TestContainerd {
  host: string;
  socket: string;
  /** `ctr -a <socket> <args>` on the host. */
  ctr(args: string): Promise<ShResult>;
}

/**
 * Starts containerd on a sandbox host as in test/cluster/host/registry.test.ts: root on the host's
 * real /var/lib/containerd (overlay snapshots cannot live on the host's overlay root), state and
 * socket under /run/ctd, CRI disabled; waits until it answers.
 */
export async function startContainerd(bed: Bed, ip: string): Promise<TestContainerd> {
  const socket = "/run/ctd/containerd.sock";
  const config = `version = 2\nroot = "/var/lib/containerd/root"\nstate = "/run/ctd"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${socket}"\n`;
  await sh(bed, ip, `mkdir -p /run/ctd /etc/ctd && printf '%s' '${config}' > /etc/ctd/config.toml`);
  await sh(bed, ip, "setsid -f containerd --config /etc/ctd/config.toml > /run/ctd/log 2>&1 < /dev/null");
  await sh(bed, ip, `for i in $(seq 1 100); do ctr -a ${socket} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`);
  return { host: ip, socket, ctr: (args) => shOn(bed, ip, `ctr -a ${socket} ${args}`) };
}
