/**
 * A registry login for containerd's CRI, on one host. hosts.toml (certs.d) cannot carry
 * credentials: containerd's CRI (1.5 up, with `config_path`) takes them from
 * `[plugins.<cri>.registry.configs."<host>".auth]` of its own config, looked up by the host a
 * request goes to — the mirror's. An imported config file would not do: containerd replaces a
 * plugin's whole section with an import's, so the login lives in config.toml itself, as a block
 * between `# BEGIN/END sealant registry auth <dataRoot>` (the file then mode 0600).
 *
 * Two parts of the spec give logins, each to endpoints of its own: the cluster's registry (or the
 * external one, its pull-through caches too) and the user's registries (`registry.registries`
 * configs). Each part's logins are a file; the block is made of both, and an endpoint given a
 * login by both is refused (TOML takes a table once, and one of the two would be dropped).
 *
 *   <dataRoot>/registry/containerd-auth.toml              the cluster registry's logins (0600, written from stdin)
 *   <dataRoot>/registry/containerd-auth-registries.toml   the user's registries' logins (0600, written from stdin)
 *   <dataRoot>/registry/containerd-auth.sh                puts the block into config.toml (holds no secret)
 *
 * An image's container runtime script that rewrites config.toml (scripts/containerd.sh) drops
 * the block: the Kubernetes runtime runs containerd-auth.sh right after that script, and the
 * mirrors step runs it once itself. The password reaches the host on stdin only.
 */
import { posix } from "node:path";
import { shellQuote as q, type Connection, type ExecOptions } from "../../ssh";
import { underHostLock } from "../../ssh/host-lock";

/** containerd's main config, where CRI auth must live. */
export const CONTAINERD_CONFIG = "/etc/containerd/config.toml";
const CONFIG_LOCK = "containerd-config";

export interface ContainerdLogin {
  /** The `host[:port]`s requests go to (mirror endpoints), each given the login. */
  endpoints: string[];
  /** Secret. Without them, the cluster registry's logins are taken out. */
  username?: string;
  password?: string;
  dataRoot: string;
}

/** One endpoint's login (secret). */
export interface EndpointLogin {
  endpoint: string;
  username: string;
  password: string;
}

/** Who gives an endpoint its login: the file of that part's logins, and the part in the user's terms. */
const PARTS = {
  cluster: { file: "containerd-auth.toml", what: "the cluster's registry (registry.username/password, or registry.external)" },
  registries: { file: "containerd-auth-registries.toml", what: "registry.registries configs" },
} as const;
type Part = keyof typeof PARTS;

const opts = (signal?: AbortSignal, extra: ExecOptions = {}): ExecOptions => ({ sudo: true, ...(signal ? { signal } : {}), ...extra });
const blockName = (dataRoot: string) => `sealant registry auth ${dataRoot.replace(/\/+$/, "")}`;
const files = (dataRoot: string) => {
  const dir = `${dataRoot.replace(/\/+$/, "")}/registry`;
  return {
    dir,
    bodies: (Object.keys(PARTS) as Part[]).map((p) => ({ path: `${dir}/${PARTS[p].file}`, what: PARTS[p].what })),
    script: `${dir}/containerd-auth.sh`,
  };
};

/**
 * The cluster registry's login for its endpoints: writes the login's files and runs the script:
 * `changed` (containerd restarted when systemd runs it), `same`, or `absent` (no config.toml yet:
 * the container runtime's set-up runs the script once it wrote one).
 */
export async function setContainerdLogin(conn: Connection, login: ContainerdLogin, signal?: AbortSignal): Promise<"changed" | "same" | "absent"> {
  checkLogin(login);
  const logins =
    login.username !== undefined && login.password !== undefined
      ? login.endpoints.map((endpoint) => ({ endpoint, username: login.username!, password: login.password! }))
      : [];
  return setPart(conn, login.dataRoot, "cluster", logins, signal);
}

/** The user's registries' logins (`registry.registries` configs), one per endpoint; none takes them out. Same answers as setContainerdLogin. */
export async function setRegistriesLogins(
  conn: Connection,
  dataRoot: string,
  logins: EndpointLogin[],
  signal?: AbortSignal,
): Promise<"changed" | "same" | "absent"> {
  checkDataRoot(dataRoot);
  for (const l of logins) checkLogin({ endpoints: [l.endpoint], username: l.username, password: l.password, dataRoot });
  return setPart(conn, dataRoot, "registries", logins, signal);
}

async function setPart(conn: Connection, dataRoot: string, part: Part, logins: EndpointLogin[], signal?: AbortSignal): Promise<"changed" | "same" | "absent"> {
  const f = files(dataRoot);
  const seen = new Set<string>();
  for (const l of logins) {
    if (seen.has(l.endpoint)) throw new Error(`registry "${l.endpoint}" is given two logins by ${PARTS[part].what}`);
    seen.add(l.endpoint);
  }
  // One table per endpoint, its header a placeholder the script completes for the config's version.
  const body = logins.map((l) => `[@ "${l.endpoint}"]\n  username = ${JSON.stringify(l.username)}\n  password = ${JSON.stringify(l.password)}\n`).join("");
  const secrets = logins.map((l) => l.password);
  const file = `${f.dir}/${PARTS[part].file}`;
  // umask first: the file is never readable by others, not even briefly.
  await conn.run(
    `set -e; mkdir -p ${q(f.dir)}; umask 077; t=$(mktemp ${q(`${file}.XXXXXX`)}); cat > "$t"; mv -f "$t" ${q(file)}`,
    opts(signal, { stdin: body, secrets }),
  );
  await conn.run(`set -e; umask 077; cat > ${q(`${f.script}.tmp`)}; chmod 700 ${q(`${f.script}.tmp`)}; mv -f ${q(`${f.script}.tmp`)} ${q(f.script)}`, {
    ...opts(signal),
    stdin: loginScript(dataRoot),
  });
  const r = await conn.run(`sh ${q(f.script)}`, opts(signal, { secrets }));
  const out = r.stdout.trim().split("\n").pop() ?? "";
  return out === "changed" || out === "absent" ? out : "same";
}

/** Takes the cluster's block out of config.toml (containerd restarted if systemd runs it) and removes its files. */
export async function removeContainerdLogin(conn: Connection, dataRoot: string, signal?: AbortSignal): Promise<void> {
  checkDataRoot(dataRoot);
  const f = files(dataRoot);
  await conn.run(`sh -c ${q(editConfig(blockName(dataRoot), undefined))}; rm -f ${f.bodies.map((b) => q(b.path)).join(" ")} ${q(f.script)}`, opts(signal));
}

/**
 * The host-side script: the block made of the parts' login files (each table's header for the
 * config's version: 3 is containerd 2's `io.containerd.cri.v1.images`, 2 is
 * `io.containerd.grpc.v1.cri`, 1 `cri`), into config.toml. Prints `absent`, `same` or `changed`.
 */
export function loginScript(dataRoot: string): string {
  return `#!/bin/sh
# Written by sealant: puts this cluster's registry logins into containerd's CRI configuration
# (run again after anything rewrites ${CONTAINERD_CONFIG}). Holds no secret itself.
${editConfig(blockName(dataRoot), { bodies: files(dataRoot).bodies })}
`;
}

/** A shell script that replaces (or, without `add`, removes) the named block of config.toml, under the host's lock. */
function editConfig(name: string, add: { bodies: { path: string; what: string }[] } | undefined): string {
  const begin = `# BEGIN ${name}`;
  const end = `# END ${name}`;
  const header = add
    ? [
        `case "$(sed -n 's/^[[:space:]]*version[[:space:]]*=[[:space:]]*\\([0-9]\\).*/\\1/p' "$f" | head -n 1)" in`,
        `  3) p='plugins."io.containerd.cri.v1.images"' ;;`,
        `  2) p='plugins."io.containerd.grpc.v1.cri"' ;;`,
        `  *) p='plugins.cri' ;;`,
        "esac",
        `: > "$t.block"; : > "$t.seen"`,
        ...add.bodies.flatMap((b) => [
          `if [ -s ${q(b.path)} ]; then`,
          `  for e in $(sed -n 's/^\\[@ "\\(.*\\)"\\]$/\\1/p' ${q(b.path)}); do`,
          // The same endpoint from two parts: TOML refuses a table twice.
          `    w=$(awk -v e="$e" '$1 == e { sub(/^[^ ]* /, ""); print; exit }' "$t.seen")`,
          `    if [ -n "$w" ]; then echo "registry $e is given a login by both $w and ${b.what}: give it in one place" >&2; exit 1; fi`,
          `    echo "$e ${b.what}" >> "$t.seen"`,
          `    h="[$p.registry.configs.\\"$e\\".auth]"`,
          // Someone else's table for this host: TOML refuses a table twice, and containerd would not start.
          `    if grep -qF -- "$h" "$t"; then echo "${CONTAINERD_CONFIG} already has its own registry configs for $e: remove them (sealant writes this host's login)" >&2; exit 1; fi`,
          "  done",
          `  sed "s|^\\[@ \\(\\".*\\"\\)\\]\\$|[$p.registry.configs.\\1.auth]|" ${q(b.path)} >> "$t.block"`,
          "fi",
        ]),
        `if [ -s "$t.block" ]; then { echo ${q(begin)}; cat "$t.block"; echo ${q(end)}; } >> "$t"; fi`,
      ]
    : [];
  const script = [
    "set -e",
    `f=${q(CONTAINERD_CONFIG)}`,
    `if [ ! -f "$f" ]; then echo absent; exit 0; fi`,
    `t=$(mktemp "$f.sealant-XXXXXX"); trap 'rm -f "$t" "$t.block" "$t.seen"' EXIT`,
    `awk -v b=${q(begin)} -v e=${q(end)} '$0 == b { skip = 1 } !skip { print } $0 == e { skip = 0 }' "$f" > "$t"`,
    ...header,
    // 0600 when it holds a login (containerd reads it as root).
    `if grep -qxF -- ${q(begin)} "$t"; then chmod 600 "$t"; else chmod "$(stat -c %a "$f")" "$t"; fi`,
    `if cmp -s "$t" "$f"; then echo same; exit 0; fi`,
    `mv -f "$t" "$f"`,
    // CRI reads registry auth at start only.
    "if command -v systemctl > /dev/null 2>&1 && systemctl is-active containerd > /dev/null 2>&1; then systemctl restart containerd; fi",
    "echo changed",
  ].join("\n");
  return underHostLock(CONFIG_LOCK, "containerd's configuration", script);
}

function checkDataRoot(d: string): void {
  if (!d.startsWith("/") || posix.normalize(d) === "/" || d.split("/").includes("..") || /[\n\r]/.test(d))
    throw new Error(`data root "${d}": expected an absolute path other than /`);
}

function checkLogin(l: ContainerdLogin): void {
  checkDataRoot(l.dataRoot);
  for (const e of l.endpoints) if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/.test(e)) throw new Error(`registry "${e}": expected host[:port]`);
  if ((l.username === undefined) !== (l.password === undefined)) throw new Error("registry auth needs both a username and a password");
  if (l.username !== undefined && !/^[^:\s]+$/.test(l.username))
    throw new Error(`registry username "${l.username}": must not be empty or contain ":" or whitespace`);
  if (l.password !== undefined && (l.password === "" || /[\r\n\0]/.test(l.password)))
    throw new Error("registry password: must not be empty or contain line breaks");
}
