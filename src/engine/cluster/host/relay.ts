/**
 * Relay distribution on the hosts: a host that received a layer passes it on to another host
 * over the hosts' own network, so the operator's link carries each layer only to a few seeds.
 *
 * Transport: SSH between the hosts, with a key pair made for the apply. Every host runs sshd
 * (sealant reaches it that way) and the machines that run sshd have the OpenSSH client beside
 * it; nothing else (an HTTP server, nc, a registry the image may not carry) is there on every
 * host before the image is. So:
 *  - the sender makes its own ed25519 key pair in its relay directory (the private key never
 *    leaves the host);
 *  - the receiver authorises that public key for one forced command only —
 *    `restrict,command="... cat > <relay>/incoming.<hex>"`, the hex the only thing read from
 *    the sender: no shell, no forwarding, no pty; whatever the sender sends can only land in
 *    such a file, and it is checked against the layer's digest before it is used;
 *  - the sender checks the receiver's host key against a known_hosts file the operator wrote
 *    from the receiver's host keys, read over the operator's own connection to it (which the
 *    cluster's host-key policy verified): StrictHostKeyChecking stays on;
 *  - what travels is the layer's blob exactly as the image store holds it — or, for a gzip
 *    layer gzip hardly shrinks, its plain tar (layer-relay.ts) — so the receiver checks its
 *    sha256 against the layer's digest (or diffID) before extracting it (relay-placer.ts: into a
 *    temp directory renamed into place, as a direct send does);
 *  - cut-through: a host passes a layer on while it is still arriving. Whatever writes a blob
 *    (the forced command, or the operator's receive) first records its process id beside it;
 *    the sender reads the growing file with `tail -f --pid` (GNU coreutils), which ends once
 *    that writer has ended and everything it wrote is read. Each host still checks the whole
 *    blob it got, so a short or corrupt upstream copy is refused downstream too, never placed.
 *    A host whose tail cannot follow a writer passes a layer on only once it has placed it.
 * Afterwards the ssh connections between the hosts are closed, the relay directory (keys,
 * known_hosts, blobs, control sockets) goes, and so do the authorised entries (marked
 * `sealant-relay:<cluster>`; an apply that died leaves them for the next one to remove before
 * it adds its own).
 */
import { digestHex } from "../../image/digest";
import { shellQuote, type Connection } from "../../ssh";
import type { HostLayer } from "./distribute";
import type { HostLayout } from "./layout";

/** Where a host keeps what relaying needs during one apply: its key, known_hosts files, blobs. */
export function relayDir(layout: HostLayout): string {
  return `${layout.root}/relay`;
}

/** The comment on every authorized_keys entry relaying adds for a cluster: how they are found and removed. */
export function relayMarker(cluster: string): string {
  return `sealant-relay:${cluster}`;
}

const AUTHORIZED_KEYS = '"$HOME/.ssh/authorized_keys"';

/** The login user's authorized_keys file, following a link so an edit keeps the link. */
const keysFile = `f=${AUTHORIZED_KEYS}; if [ -L "$f" ]; then f=$(readlink -f "$f"); fi`;

/**
 * Makes the host's relay directory, empty and owned by the login user (the forced command
 * and the sender's ssh run as that user), and takes away entries an earlier apply left.
 */
export async function prepareRelay(conn: Connection, layout: HostLayout, cluster: string, signal?: AbortSignal): Promise<void> {
  const sig = signal ? { signal } : {};
  const who = await conn.run('printf \'%s:%s\' "$(id -un)" "$(id -gn)"', { timeoutMs: 30_000, ...sig });
  const dir = shellQuote(relayDir(layout));
  const owner = shellQuote(who.stdout.trim());
  await conn.run(`set -e; rm -rf ${dir}; mkdir -p ${shellQuote(layout.root)}; install -d -m 0700 -o ${owner.replace(":", " -g ")} ${dir}`, {
    sudo: true,
    timeoutMs: 60_000,
    ...sig,
  });
  await removeAuthorizations(conn, cluster, signal);
}

/** The host's relay key pair, made there; returns its public key line. */
export async function relayKey(conn: Connection, layout: HostLayout, signal?: AbortSignal): Promise<string> {
  const key = shellQuote(`${relayDir(layout)}/key`);
  const r = await conn.run(`set -e; if [ ! -f ${key} ]; then ssh-keygen -q -t ed25519 -N '' -C sealant-relay -f ${key}; fi; cat ${key}.pub`, {
    timeoutMs: 60_000,
    ...(signal ? { signal } : {}),
  });
  const line = r.stdout.trim().split("\n")[0] ?? "";
  if (!/^ssh-ed25519 [A-Za-z0-9+/=]+/.test(line)) throw new Error(`ssh-keygen gave no ed25519 public key (${JSON.stringify(line.slice(0, 80))})`);
  return line.split(" ").slice(0, 2).join(" ");
}

/** The host's public host keys (`type base64` lines), read over the operator's verified connection. */
export async function hostPublicKeys(conn: Connection, signal?: AbortSignal): Promise<string[]> {
  const r = await conn.run("cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null || true", { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  const keys = r.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/).slice(0, 2))
    .filter((p) => p.length === 2 && /^(ssh-|ecdsa-)/.test(p[0]!))
    .map((p) => p.join(" "));
  if (keys.length === 0) throw new Error("no host key readable under /etc/ssh");
  return keys;
}

/** Writes, on the sender, the known_hosts file it checks the receiver against. */
export async function writeKnownHosts(
  sender: Connection,
  layout: HostLayout,
  receiver: { ip: string; port: number },
  keys: string[],
  signal?: AbortSignal,
): Promise<void> {
  const name = receiver.port === 22 ? receiver.ip : `[${receiver.ip}]:${receiver.port}`;
  const file = shellQuote(`${relayDir(layout)}/known_hosts.${receiver.ip}`);
  await sender.run(`umask 077; cat > ${file}.tmp && mv -f ${file}.tmp ${file}`, {
    stdin: keys.map((k) => `${name} ${k}\n`).join(""),
    timeoutMs: 30_000,
    ...(signal ? { signal } : {}),
  });
}

/** Where a layer's blob arrives on a host (as the login user), named by its digest; the hosts below it read it there. */
export function incoming(layout: HostLayout, hex: string): string {
  return `${relayDir(layout)}/incoming.${hex}`;
}

/** The id of the process writing a blob, recorded (complete) before the blob's file is made. */
export function writerPid(layout: HostLayout, hex: string): string {
  return `${relayDir(layout)}/writer.${hex}`;
}

/**
 * Records the shell's process id, which `exec cat` then keeps, as the blob's writer; `name` is
 * the shell word for the digest's hex. No temp name and rename for the pid file (a process per
 * layer and host): it is whole before the blob's file exists, and readers wait for that file.
 */
function receiveInto(layout: HostLayout, name: string): string {
  return `echo $$ > ${shellQuote(`${relayDir(layout)}/writer.`)}${name} && exec cat > ${shellQuote(`${relayDir(layout)}/incoming.`)}${name}`;
}

/**
 * Whether the host's `tail` follows a file until its writer ends (`--pid`, GNU coreutils): then
 * it passes layers on while they arrive, otherwise only once it has placed them.
 */
export async function canCutThrough(conn: Connection, signal?: AbortSignal): Promise<boolean> {
  const r = await conn.exec("tail -c +1 -s 0.1 --pid=1 /dev/null", { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  return r.code === 0;
}

/**
 * The forced command's stream mode (relay-stream.ts: one session per pair of hosts for all the
 * layers): lines `<64 hex> <size>` each followed by that many bytes, written to
 * `incoming.<hex>` by a `head -c` whose process id is the blob's writer; `got <hex>` answered
 * once it is all there. Anything that is not such a line ends it.
 */
function streamInto(layout: HostLayout): string {
  return [
    `cd ${shellQuote(relayDir(layout))} || exit 3`,
    "while read -r h s; do case $h in *[!0-9a-f]*) exit 2;; esac",
    "[ ${#h} -eq 64 ] || exit 2",
    "case $s in ''|*[!0-9]*) exit 2;; esac",
    // Only hex digits and a number reach the inner shell; its id, which head then keeps, is the writer.
    "sh -c 'echo $$ > writer.$1 && exec head -c $2 > incoming.$1' sh $h $s || exit 3",
    "echo got $h; done; exit 0",
  ].join("; ");
}

/**
 * Authorises the sender's key on the receiver for writing files of its relay directory and
 * nothing else: the command ssh asks for is only read as a 64-hex-digit name (the blob arrives
 * as `incoming.<that>`) or as `stream` (streamInto); anything else is refused. Answers whether
 * the receiver takes a stream: its `head -c` must read no byte past the count (GNU coreutils';
 * busybox's reads ahead), else each layer comes in a session of its own.
 */
export async function authorizeSender(receiver: Connection, layout: HostLayout, cluster: string, publicKey: string, signal?: AbortSignal): Promise<boolean> {
  const forced = [
    "h=$SSH_ORIGINAL_COMMAND",
    `case $h in stream) ${streamInto(layout)};; esac`,
    "case $h in *[!0-9a-f]*) exit 2;; esac",
    "[ ${#h} -eq 64 ] || exit 2",
    receiveInto(layout, "$h"),
  ].join("; ");
  if (/["\\]/.test(forced)) throw new Error(`the data root ${layout.root} cannot be named in an authorized_keys command`);
  const entry = `restrict,command="${forced}" ${publicKey} ${relayMarker(cluster)}`;
  const r = await receiver.run(
    [
      "set -e; umask 077",
      'mkdir -p "$HOME/.ssh"',
      keysFile,
      // A file without a final newline would glue the entry onto its last key.
      'if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then printf "\\n" >> "$f"; fi',
      `printf '%s\\n' ${shellQuote(entry)} >> "$f"`,
      "if head --version 2> /dev/null | grep -q GNU; then echo stream; fi",
    ].join("\n"),
    { timeoutMs: 30_000, ...(signal ? { signal } : {}) },
  );
  return r.stdout.trim() === "stream";
}

/** Takes every relay entry of the cluster out of the login user's authorized_keys (a new file renamed over it). */
export async function removeAuthorizations(conn: Connection, cluster: string, signal?: AbortSignal): Promise<void> {
  const marker = shellQuote(relayMarker(cluster));
  await conn.run(
    [
      keysFile,
      `if [ -f "$f" ] && grep -q -F ${marker} "$f"; then`,
      `  grep -v -F ${marker} "$f" > "$f.sealant-tmp" || true`,
      '  chmod 600 "$f.sealant-tmp" && mv -f "$f.sealant-tmp" "$f"',
      "fi",
    ].join("\n"),
    { timeoutMs: 30_000, ...(signal ? { signal } : {}) },
  );
}

/** Where the receiver is, as the sender reaches it. */
export interface RelayPeer {
  ip: string;
  port: number;
  user: string;
}

/** The sender's ssh to the receiver with the relay's key, known_hosts and shared connection; the words before the command. */
export function sshTo(layout: HostLayout, receiver: RelayPeer): string[] {
  const dir = relayDir(layout);
  return [
    "ssh",
    "-F /dev/null",
    `-i ${shellQuote(`${dir}/key`)}`,
    "-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes",
    `-o UserKnownHostsFile=${shellQuote(`${dir}/known_hosts.${receiver.ip}`)} -o GlobalKnownHostsFile=/dev/null`,
    "-o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o LogLevel=ERROR",
    // One connection per pair of hosts for all the layers: a new one per layer (key exchange,
    // authentication) cost more than an 8 MiB layer's transfer. cleanUpRelay ends it.
    `-o ControlMaster=auto -o ControlPath=${shellQuote(`${dir}/cm.${receiver.ip}`)} -o ControlPersist=60`,
    // The fastest ciphers first (AES-NI); never compression: the blob is gzip already or crosses a LAN.
    "-c aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr",
    `-p ${receiver.port}`,
    `-l ${shellQuote(receiver.user)}`,
    shellQuote(receiver.ip),
  ];
}

/**
 * Opens the sender's shared connection to the receiver ahead of the first layer (no command:
 * the forced one never runs), so the key exchanges of a tree's hops happen at once rather than
 * one after the other as the first layer goes down it. Best effort: sendBlob connects itself
 * when there is none.
 */
export async function connectPeer(sender: Connection, layout: HostLayout, receiver: RelayPeer, signal?: AbortSignal): Promise<void> {
  await sender.exec(`${sshTo(layout, receiver).join(" ")} -f -N < /dev/null > /dev/null 2>&1`, { timeoutMs: 60_000, ...(signal ? { signal } : {}) });
}

/** What sendBlob prints once the sender's own copy is there to be read: the receiver's begins then. */
const SENDING = "sending";

/**
 * Runs, on the sender, the ssh that streams a layer's blob into the receiver's forced command;
 * `onSending` is called once the sender has begun to read its copy (so the hosts below the
 * receiver are asked for theirs only then, instead of each waiting for it on its own).
 */
export async function sendBlob(
  sender: Connection,
  layout: HostLayout,
  receiver: RelayPeer,
  layer: HostLayer,
  timeoutMs: number,
  follow: boolean,
  signal?: AbortSignal,
  onSending?: () => void,
): Promise<void> {
  const args = [...sshTo(layout, receiver), digestHex(layer.digest)];
  const hex = digestHex(layer.digest);
  let said = "";
  await sender.run(
    [
      `in=${shellQuote(incoming(layout, hex))}; p=${shellQuote(writerPid(layout, hex))}; i=0`,
      // The sender is asked once its own copy has begun to arrive (its sender said SENDING), so
      // the file is there or about to be: a few polls, not one per 50 ms while the layers before
      // it go down the tree (a process each, on every host: seconds of CPU in all at 30 hosts).
      `while [ ! -e "$in" ]; do i=$((i + 1)); if [ $i -gt ${Math.ceil(timeoutMs / 50)} ]; then echo "no blob arrived at $in" >&2; exit 3; fi; sleep 0.05; done`,
      `echo ${SENDING}`,
      // Followed until its writer has ended (a file with no writer recorded is whole already: read to its end).
      `${follow ? 'if [ -s "$p" ]; then read -r w < "$p"; tail -c +1 -s 0.1 -f --pid="$w" "$in"; else cat "$in"; fi' : 'cat "$in"'} | ${args.join(" ")}`,
    ].join("\n"),
    {
      timeoutMs,
      ...(signal ? { signal } : {}),
      onStdout: (chunk) => {
        if (said.includes(SENDING)) return;
        said += chunk.toString();
        if (said.includes(SENDING)) onSending?.();
      },
    },
  );
}

/** Streams a layer's blob from the operator into the host's relay directory (as the login user). */
export function receiveCommand(layout: HostLayout, layer: HostLayer): string {
  return receiveInto(layout, digestHex(layer.digest));
}

/** Everything relaying left on a host: its relay directory and its authorised entries. */
export async function cleanUpRelay(conn: Connection, layout: HostLayout, cluster: string, signal?: AbortSignal): Promise<void> {
  // The connections sendBlob left open to the hosts below this one (as the login user, whose they are).
  await conn.run(
    `for s in ${shellQuote(relayDir(layout))}/cm.*; do if [ -S "$s" ]; then ssh -o ControlPath="$s" -O exit relay > /dev/null 2>&1 || true; fi; done`,
    {
      timeoutMs: 60_000,
      ...(signal ? { signal } : {}),
    },
  );
  await conn.run(`rm -rf ${shellQuote(relayDir(layout))}`, { sudo: true, timeoutMs: 5 * 60_000, ...(signal ? { signal } : {}) });
  await removeAuthorizations(conn, cluster, signal);
}
