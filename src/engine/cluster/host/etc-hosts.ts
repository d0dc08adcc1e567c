import { shellQuote, type Connection } from "../../ssh";
import { ETC_HOSTS_LOCK, underHostLock } from "../../ssh/host-lock";

/**
 * The edit, done on the host under the lock: awk reads /etc/hosts twice (first to find the block,
 * then to write the file with the new block where the old one was, or appended), so nothing read
 * can be stale by the time it is written. The names come in the environment (awk's -v would
 * interpret backslashes), the new block's lines on stdin. Written only when it changes, to a
 * unique temp file and renamed; a bind-mounted /etc/hosts (containers) refuses the rename, so
 * then it is written in place — still under the lock.
 */
const EDIT = [
  `src=/etc/hosts; [ -e "$src" ] || src=/dev/null`,
  // in /etc for an atomic rename; in /tmp when /etc is read-only around a bind-mounted /etc/hosts
  `t=$(mktemp /etc/.hosts.sealant-XXXXXX 2> /dev/null || mktemp) && n=$(mktemp) || exit 1`,
  `trap 'rm -f "$t" "$n"' EXIT`,
  `cat > "$n" || exit 1`,
  `SEALANT_BLOCK="$n" awk '`,
  `  BEGIN { b = ENVIRON["SEALANT_BEGIN"]; e = ENVIRON["SEALANT_END"]; while ((getline l < ENVIRON["SEALANT_BLOCK"]) > 0) block = block l "\\n" }`,
  `  NR == FNR { if (!s && $0 == b) s = FNR; else if (s && !t && $0 == e) t = FNR; next }`,
  `  !checked { checked = 1; if (!t) s = 0 }`,
  `  s && FNR == s { printf "%s", block; next }`,
  `  s && FNR > s && FNR <= t { next }`,
  `  { print }`,
  `  END { if (!checked && !t) s = 0; if (!s) printf "%s", block }`,
  `' "$src" "$src" > "$t" || exit 1`,
  `[ "$src" = /etc/hosts ] && cmp -s "$t" /etc/hosts && exit 0`,
  `[ "$src" = /dev/null ] && [ ! -s "$t" ] && exit 0`,
  `chmod 644 "$t" || exit 1`,
  `mv -f "$t" /etc/hosts 2>/dev/null || cat "$t" > /etc/hosts`,
].join("\n");

/**
 * A block of /etc/hosts that sealant owns, between `# BEGIN <name>` and `# END <name>` lines:
 * replaced where it is (or appended), removed when `lines` is empty, the rest of the file kept.
 * Several clusters may edit one host's /etc/hosts at once, so the whole read-change-write runs
 * on the host under the host lock (see EDIT): no edit can lose another's block.
 */
export async function setHostsBlock(conn: Connection, name: string, lines: string[], signal?: AbortSignal): Promise<void> {
  const opts = { sudo: true, timeoutMs: 120_000, ...(signal ? { signal } : {}) };
  const env = `SEALANT_BEGIN=${shellQuote(`# BEGIN ${name}`)} SEALANT_END=${shellQuote(`# END ${name}`)}; export SEALANT_BEGIN SEALANT_END`;
  const block = lines.length ? [`# BEGIN ${name}`, ...lines, `# END ${name}`].join("\n") + "\n" : "";
  const res = await conn.exec(`sh -c ${shellQuote(underHostLock(ETC_HOSTS_LOCK, "/etc/hosts", `${env}\n${EDIT}`))}`, { ...opts, stdin: block });
  if (res.code !== 0) throw new Error(`${conn.host}: updating the "${name}" block of /etc/hosts: ${res.stderr.trim() || `exit ${res.code}`}`);
}

/** The block name for a cluster's own host aliases (spec.hostAliases). */
export function aliasesBlock(dataRoot: string): string {
  return `sealant aliases ${dataRoot}`;
}
