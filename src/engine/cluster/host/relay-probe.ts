/**
 * Before any layer moves: whether relaying can work from each planned source host to the host
 * it relays to, found out in a few seconds at most, so that a host that cannot get the image
 * that way gets it from the operator at once instead of after a relay has failed (an ssh
 * between the hosts that times out costs 20 s; see relay.ts for the transport). Two things
 * decide it, both asked of the hosts themselves:
 *  - the sender reaches the receiver on the address the cluster names it by, and finds the
 *    receiver's sshd there: `ssh-keyscan` from the sender must return one of the host keys the
 *    operator reads on the receiver over its own verified connection. Hosts the operator reaches
 *    through a bastion, or by addresses the hosts cannot use among themselves, fail this;
 *  - the receiver's sshd reads the login user's `~/.ssh/authorized_keys` (where relaying
 *    authorises the sender's key) with public-key logins on, and lets that user in (root: not
 *    `PermitRootLogin no`), as `sshd -T` says for that user coming from the sender.
 * A question a host cannot answer (no `ssh-keyscan`, no `sshd -T` through sudo) does not block:
 * the relay then tries, and a failure still falls back to a direct send.
 */
import { shellQuote, type Connection } from "../../ssh";
import type { ClusterHost } from "./connect";
import { hostPublicKeys } from "./relay";

/** One planned hop: `sender` passes the layers on to `receiver`. */
export interface RelayHop {
  sender: ClusterHost;
  receiver: ClusterHost;
}

/** How long the sender waits for the receiver's sshd to answer. */
const KEYSCAN_SECONDS = 3;

/** The `~/.ssh/authorized_keys` spellings sshd_config uses for the login user's own file. */
const OWN_KEYS_FILE = new Set([".ssh/authorized_keys", "%h/.ssh/authorized_keys", "~/.ssh/authorized_keys"]);

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * For each hop that cannot work, the receiver's IP and why (in the user's terms); hops not
 * named can be tried. All hops are asked at once.
 */
export async function relayBlockers(
  connOf: (host: ClusterHost) => Promise<Connection>,
  hops: readonly RelayHop[],
  signal?: AbortSignal,
): Promise<Map<string, string>> {
  const blocked = new Map<string, string>();
  const clients = new Map<string, Promise<string | undefined>>();
  const clientOf = (h: ClusterHost): Promise<string | undefined> => {
    let c = clients.get(h.ip);
    if (!c) {
      c = missingClient(connOf, h, signal);
      clients.set(h.ip, c);
    }
    return c;
  };
  await Promise.all(
    hops.map(async ({ sender, receiver }) => {
      try {
        const why = (await clientOf(sender)) ?? (await hopBlocker(connOf, sender, receiver, signal));
        if (why) blocked.set(receiver.ip, why);
      } catch (err) {
        signal?.throwIfAborted();
        blocked.set(receiver.ip, `asking ${sender.ip} and ${receiver.ip} whether relaying works failed: ${errorMessage(err)}`);
      }
    }),
  );
  return blocked;
}

/** Why the host cannot send by relay (no OpenSSH client to run), or nothing. */
async function missingClient(connOf: (host: ClusterHost) => Promise<Connection>, h: ClusterHost, signal?: AbortSignal): Promise<string | undefined> {
  const r = await (await connOf(h)).exec("command -v ssh && command -v ssh-keygen", { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  return r.code === 0 ? undefined : `${h.ip} has no OpenSSH client (ssh, ssh-keygen) to pass the layers on with`;
}

async function hopBlocker(
  connOf: (host: ClusterHost) => Promise<Connection>,
  sender: ClusterHost,
  receiver: ClusterHost,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const sig = signal ? { signal } : {};
  const port = receiver.ssh.port ?? 22;
  const receiverConn = await connOf(receiver);
  const keys = hostPublicKeys(receiverConn, signal);
  const [scanned, sshd] = await Promise.all([
    (async () =>
      (await connOf(sender)).exec(
        // Only a key type the receiver has: each type asked for is a key exchange of its own, for the sender and the receiver's sshd.
        `command -v ssh-keyscan > /dev/null 2>&1 || exit 3; ssh-keyscan -T ${KEYSCAN_SECONDS} -t ${scanType(await keys)} -p ${port} ${shellQuote(receiver.ip)} 2> /dev/null || true`,
        { timeoutMs: (KEYSCAN_SECONDS + 20) * 1000, ...sig },
      ))(),
    receiverConn.exec(
      `PATH="$PATH:/usr/sbin:/sbin"; sshd -T -C ${shellQuote(`user=${receiver.ssh.user ?? "root"},host=${sender.ip},addr=${sender.ip}`)} 2> /dev/null`,
      { sudo: true, timeoutMs: 30_000, ...sig },
    ),
  ]);
  if (scanned.code === 0) {
    const seen = new Set(
      scanned.stdout
        .split("\n")
        .map((l) => l.trim().split(/\s+/).slice(1, 3).join(" "))
        .filter((k) => k.includes(" ")),
    );
    const where = port === 22 ? receiver.ip : `${receiver.ip} port ${port}`;
    if (seen.size === 0) return `${sender.ip} cannot reach ${receiver.ip}'s sshd at ${where} (no answer in ${KEYSCAN_SECONDS} s)`;
    if (!(await keys).some((k) => seen.has(k))) return `at ${where}, ${sender.ip} reaches an sshd whose host keys are not ${receiver.ip}'s`;
  }
  if (sshd.code === 0) return sshdBlocker(sshd.stdout, receiver);
  return undefined;
}

/** The `ssh-keyscan -t` name of one of the receiver's host key types (`ssh-ed25519 AAAA...` -> ed25519), ed25519 first. */
export function scanType(keys: readonly string[]): string {
  const types = keys.map((k) => k.split(" ")[0]!);
  if (types.includes("ssh-ed25519")) return "ed25519";
  if (types.some((t) => t.startsWith("ecdsa-"))) return "ecdsa";
  if (types.includes("ssh-rsa")) return "rsa";
  return "ed25519,ecdsa,rsa";
}

/** Why the receiver's sshd (its `sshd -T` output) will not let the sender's relay key in, or nothing. */
export function sshdBlocker(settings: string, receiver: ClusterHost): string | undefined {
  const value = (name: string): string | undefined =>
    settings
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .find((w) => w[0]?.toLowerCase() === name)
      ?.slice(1)
      .join(" ");
  if (value("pubkeyauthentication")?.toLowerCase() === "no") return `${receiver.ip}'s sshd does not take public-key logins`;
  // The relay's key logs in as the login user: root only where sshd lets root in by key (a forced command is enough).
  if ((receiver.ssh.user ?? "root") === "root" && value("permitrootlogin")?.toLowerCase() === "no") return `${receiver.ip}'s sshd does not let root log in`;
  const files = value("authorizedkeysfile");
  if (files !== undefined && !files.split(" ").some((f) => OWN_KEYS_FILE.has(f)))
    return `${receiver.ip}'s sshd reads keys from ${files}, not the login user's ~/.ssh/authorized_keys where relaying authorises the sender`;
  return undefined;
}
