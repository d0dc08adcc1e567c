/**
 * containerd's registry configuration directory (certs.d: one `<registry>/hosts.toml` per
 * registry, CA files beside it) as several writers share it: the cluster's registry
 * (registry.ts), its pull-through caches, an external registry, and the user's own registries
 * (user-registries.ts). Each marks the files it writes with a first line of its own, so it removes
 * only its own; every write and removal happens under one host lock.
 */
import { posix } from "node:path";
import { shellQuote as q, type Connection, type ExecOptions } from "../../ssh";
import { underHostLock } from "../../ssh/host-lock";

/** The host lock of containerd's certs.d: clusters on one host write and remove entries there. */
const CERTS_LOCK = "containerd-certs";

export const DEFAULT_CERTS_DIR = "/etc/containerd/certs.d";
/** The cluster registry's CA beside a hosts.toml. Every CA file sealant writes there is named `sealant-*.crt`. */
export const CA_FILE = "sealant-registry-ca.crt";

/** The first line of the hosts.toml files the cluster's registry (and an external one) writes. */
export const marker = (dataRoot: string) => `# sealant-cluster: ${dataRoot}`;

const opts = (signal?: AbortSignal, extra: ExecOptions = {}): ExecOptions => ({ sudo: true, ...(signal ? { signal } : {}), ...extra });

export function checkDataRoot(d: string): void {
  if (!d.startsWith("/") || posix.normalize(d) === "/" || d.split("/").includes("..") || /[\n\r]/.test(d))
    throw new Error(`data root "${d}": expected an absolute path other than /`);
}

/** Runs a script under the certs.d lock, as root. */
export function underCertsLock(conn: Connection, script: string, signal?: AbortSignal, extra: ExecOptions = {}) {
  return conn.run(`sh -c ${q(underHostLock(CERTS_LOCK, "containerd's registry configuration", script))}`, opts(signal, extra));
}

/**
 * Replaces a file only when its content differs (true when it did). Writes it through a temp file of its own (several clusters may write one certs.d file at
 * once), under the host's certs.d lock so that no removal by another cluster interleaves.
 */
export async function writeIfChanged(conn: Connection, path: string, content: string, mode: number, signal?: AbortSignal): Promise<boolean> {
  const f = q(path);
  const script = [
    `set -e; mkdir -p ${q(posix.dirname(path))}; umask 077`,
    `t=$(mktemp ${q(`${path}.sealant-`)}XXXXXX); trap 'rm -f "$t"' EXIT`,
    `cat > "$t"; chmod ${mode.toString(8)} "$t"`,
    `if [ -f ${f} ] && cmp -s "$t" ${f}; then echo same; else mv -f "$t" ${f}; echo changed; fi`,
  ].join("\n");
  const r = await underCertsLock(conn, script, signal, { stdin: content });
  return r.stdout.trim() === "changed";
}

/** certs.d dirs whose hosts.toml carries `line` (a writer's marker). */
export async function dirsMarkedBy(conn: Connection, certsDir: string, line: string, signal?: AbortSignal): Promise<string[]> {
  const r = await conn.run(`grep -lxF -- ${q(line)} ${q(certsDir)}/*/hosts.toml 2>/dev/null || true`, opts(signal));
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((f) => posix.dirname(f));
}

/** Removes the hosts.toml and sealant's CA files of dirs still marked with `line` (checked again under the lock); a dir goes only when nothing else is left in it. */
export async function removeDirsMarkedBy(conn: Connection, dirs: string[], line: string, signal?: AbortSignal): Promise<void> {
  if (dirs.length === 0) return;
  const cmds = dirs.map(
    (d) =>
      `if grep -qxF -- ${q(line)} ${q(`${d}/hosts.toml`)} 2>/dev/null; then rm -f ${q(`${d}/hosts.toml`)} ${q(d)}/sealant-*.crt; rmdir ${q(d)} 2>/dev/null || true; fi`,
  );
  await underCertsLock(conn, cmds.join("\n"), signal);
}

/** certs.d dirs whose hosts.toml this cluster's registry wrote. */
export function markedDirs(conn: Connection, certsDir: string, dataRoot: string, signal?: AbortSignal): Promise<string[]> {
  return dirsMarkedBy(conn, certsDir, marker(dataRoot), signal);
}

export function removeDirs(conn: Connection, dirs: string[], dataRoot: string, signal?: AbortSignal): Promise<void> {
  return removeDirsMarkedBy(conn, dirs, marker(dataRoot), signal);
}

/** The first line of the hosts.toml files a cluster's pull-through caches write. */
export const pullThroughMarker = (dataRoot: string) => `# sealant-pull-through: ${dataRoot}`;

/** The first line of the hosts.toml files the user's registries (`registry.registries`) write where no other part of the cluster does. */
export const registriesMarker = (dataRoot: string) => `# sealant-registries: ${dataRoot}`;

/** Writes the user's CA files into a certs.d dir (see registry-hosts.ts) and removes the ones no longer named there. */
export async function writeUserCas(conn: Connection, dir: string, cas: Record<string, string>, signal?: AbortSignal): Promise<void> {
  for (const [name, pem] of Object.entries(cas)) await writeIfChanged(conn, `${dir}/${name}`, pem, 0o644, signal);
  const keep = Object.keys(cas).map((n) => ` ${n} `);
  await underCertsLock(
    conn,
    `cd ${q(dir)} 2>/dev/null || exit 0; for f in sealant-ca-*.crt; do [ -f "$f" ] || continue; case ${q(` ${keep.join("")} `)} in *" $f "*) ;; *) rm -f "$f" ;; esac; done`,
    signal,
  );
}
