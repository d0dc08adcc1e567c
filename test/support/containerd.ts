/** A containerd of the test's own on a sandbox host. */
import type { Bed } from "./bed";
import { onHost, runOnHost, type HostResult } from "./hosts";

/** A containerd of the test's own on a sandbox host: a plain process, no CRI, its own socket. */
export interface TestContainerd {
  host: string;
  socket: string;
  /** `ctr -a <socket> <args>` on the host. */
  ctr(args: string): Promise<HostResult>;
}

/**
 * Starts containerd on a sandbox host as in test/engine/cluster/host/registry.test.ts: root on the host's
 * real /var/lib/containerd (overlay snapshots cannot live on the host's overlay root), state and
 * socket under /run/ctd, CRI disabled; waits until it answers.
 */
export async function startContainerd(bed: Bed, ip: string): Promise<TestContainerd> {
  const socket = "/run/ctd/containerd.sock";
  const config = `version = 2\nroot = "/var/lib/containerd/root"\nstate = "/run/ctd"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${socket}"\n`;
  await onHost(bed.sandbox, ip, `mkdir -p /run/ctd /etc/ctd && printf '%s' '${config}' > /etc/ctd/config.toml`);
  await onHost(bed.sandbox, ip, "setsid -f containerd --config /etc/ctd/config.toml > /run/ctd/log 2>&1 < /dev/null");
  await onHost(bed.sandbox, ip, `for i in $(seq 1 100); do ctr -a ${socket} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`);
  return { host: ip, socket, ctr: (args) => runOnHost(bed.sandbox, ip, `ctr -a ${socket} ${args}`) };
}
