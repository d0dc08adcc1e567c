/**
 * Every host's containerd pointed at the external registry (`registry.external`):
 *
 *   <certsDir>/<source domain>/hosts.toml   one per registry the image's images come from, sending
 *                                           `docker.io/library/nginx` to
 *                                           `https://<endpoint>/v2/<namespace>/docker.io/library/nginx`
 *                                           (override_path), trusting the CA file beside it
 *   <certsDir>/<endpoint>/hosts.toml        the registry itself, with its CA
 *   /etc/containerd/config.toml             a block of CRI registry auth for <endpoint>, between
 *                                           `# BEGIN/END sealant registry auth <dataRoot>` (mode 0600)
 *   <dataRoot>/registry/containerd-auth.toml   the block's username/password lines (0600)
 *   <dataRoot>/registry/containerd-auth.sh     puts the block into config.toml (no secret in it)
 *
 * hosts.toml cannot carry credentials: containerd's CRI (1.5 up, with `config_path`) takes them
 * from `[plugins.<cri>.registry.configs."<host>".auth]` of its own config, looked up by the host
 * a request goes to — the mirror's. An imported config file would not do: containerd replaces a
 * plugin's whole section with an import's, so the block lives in config.toml itself. A container
 * runtime script that rewrites config.toml (an image's scripts/containerd.sh) drops it: running
 * containerd-auth.sh after that script puts it back (the step here runs it once as well).
 * The password reaches the host on stdin only; no command line or log holds it.
 */
import { shellQuote as q, type Connection, type ExecOptions } from "../../ssh";
import { underHostLock } from "../../ssh/host-lock";
import { registryComponent } from "../../image/distribution-layout";
import { CA_FILE, checkDataRoot, DEFAULT_CERTS_DIR, marker, markedDirs, removeDirs, writeIfChanged } from "./registry";

export interface ExternalClientSetup {
  /** `domain[:port]` of the external registry. */
  endpoint: string;
  /** Path its repositories are under (Harbor project), or "". */
  namespace: string;
  /** Source registry domains the image carries (`docker.io`, `quay.io`). */
  domains: string[];
  /** PEM, when the registry's certificate is not signed by a public CA. */
  ca?: string;
  /** Secret: the pull login given to containerd's CRI. */
  username?: string;
  password?: string;
  dataRoot: string;
}

/** containerd's main config, where CRI auth must live. */
export const CONTAINERD_CONFIG = "/etc/containerd/config.toml";
const CONFIG_LOCK = "containerd-config";

const opts = (signal?: AbortSignal, extra: ExecOptions = {}): ExecOptions => ({ sudo: true, ...(signal ? { signal } : {}), ...extra });
const authBlockName = (dataRoot: string) => `sealant registry auth ${dataRoot.replace(/\/+$/, "")}`;
const files = (dataRoot: string) => {
  const dir = `${dataRoot.replace(/\/+$/, "")}/registry`;
  return { dir, body: `${dir}/containerd-auth.toml`, script: `${dir}/containerd-auth.sh` };
};

/**
 * On one host: hosts.toml (and the CA) for every source domain and the registry itself, stale
 * ones of this cluster removed, and the CRI auth block in place. Returns what happened to
 * config.toml: `changed` (containerd restarted when systemd runs it), `same`, or `absent` (no
 * config.toml yet: the block goes in when the container runtime's set-up runs the script).
 */
export async function configureExternalClients(
  conn: Connection,
  setup: ExternalClientSetup,
  o: { certsDir?: string; signal?: AbortSignal } = {},
): Promise<"changed" | "same" | "absent"> {
  checkSetup(setup);
  const certsDir = o.certsDir ?? DEFAULT_CERTS_DIR;
  const prefix = setup.namespace ? `/${setup.namespace}` : "";
  const wanted = new Map<string, string>();
  for (const d of setup.domains) wanted.set(d, `/v2${prefix}/${registryComponent(d)}`);
  if (!wanted.has(setup.endpoint)) wanted.set(setup.endpoint, "");
  for (const [dir, path] of wanted) {
    const ca = `${certsDir}/${dir}/${CA_FILE}`;
    if (setup.ca !== undefined) await writeIfChanged(conn, ca, setup.ca, 0o644, o.signal);
    const lines = [
      marker(setup.dataRoot),
      `# Pull ${dir} images from the external registry ${setup.endpoint}. Written by sealant; changes are overwritten.`,
      // The registry's own dir names it as the server; a source domain keeps its upstream as the fallback.
      ...(path ? [] : [`server = ${JSON.stringify(`https://${setup.endpoint}`)}`]),
      "",
      `[host.${JSON.stringify(`https://${setup.endpoint}${path}`)}]`,
      '  capabilities = ["pull", "resolve"]',
      ...(path ? ["  override_path = true"] : []),
      ...(setup.ca !== undefined ? [`  ca = ${JSON.stringify(ca)}`] : []),
    ];
    await writeIfChanged(conn, `${certsDir}/${dir}/hosts.toml`, `${lines.join("\n")}\n`, 0o644, o.signal);
  }
  const stale = (await markedDirs(conn, certsDir, setup.dataRoot, o.signal)).filter((d) => !wanted.has(d.slice(d.lastIndexOf("/") + 1)));
  await removeDirs(conn, stale, setup.dataRoot, o.signal);

  const f = files(setup.dataRoot);
  const body =
    setup.username !== undefined && setup.password !== undefined
      ? `  username = ${JSON.stringify(setup.username)}\n  password = ${JSON.stringify(setup.password)}\n`
      : "";
  const secrets = setup.password !== undefined ? [setup.password] : [];
  // The body on stdin into a 0600 file (umask first: it is never readable by others, not even briefly).
  await conn.run(
    `set -e; mkdir -p ${q(f.dir)}; umask 077; t=$(mktemp ${q(`${f.body}.XXXXXX`)}); cat > "$t"; mv -f "$t" ${q(f.body)}`,
    opts(o.signal, { stdin: body, secrets }),
  );
  await conn.run(`set -e; umask 077; cat > ${q(`${f.script}.tmp`)}; chmod 700 ${q(`${f.script}.tmp`)}; mv -f ${q(`${f.script}.tmp`)} ${q(f.script)}`, {
    ...opts(o.signal),
    stdin: authScript(setup.endpoint, setup.dataRoot),
  });
  const r = await conn.run(`sh ${q(f.script)}`, opts(o.signal, { secrets }));
  const out = r.stdout.trim().split("\n").pop() ?? "";
  return out === "changed" || out === "absent" ? out : "same";
}

/**
 * On one host: the CRI auth block taken out of config.toml (containerd restarted if systemd runs
 * it), its files removed, and the hosts.toml files this cluster wrote.
 */
export async function removeExternalRegistryClients(conn: Connection, dataRoot: string, o: { certsDir?: string; signal?: AbortSignal } = {}): Promise<void> {
  checkDataRoot(dataRoot);
  const f = files(dataRoot);
  await conn.run(`sh -c ${q(editConfig(authBlockName(dataRoot), undefined))}; rm -f ${q(f.body)} ${q(f.script)}`, opts(o.signal));
  await removeDirs(conn, await markedDirs(conn, o.certsDir ?? DEFAULT_CERTS_DIR, dataRoot, o.signal), dataRoot, o.signal);
}

/**
 * The host-side script: the block for `endpoint` (header for the config's version: 3 is
 * containerd 2's `io.containerd.cri.v1.images`, 2 is `io.containerd.grpc.v1.cri`, 1 `cri`), from
 * the body file, into config.toml. Prints `absent`, `same` or `changed`.
 */
export function authScript(endpoint: string, dataRoot: string): string {
  return `#!/bin/sh
# Written by sealant: puts this cluster's registry login for ${endpoint} into containerd's CRI
# configuration (run again after anything rewrites ${CONTAINERD_CONFIG}). Holds no secret itself.
${editConfig(authBlockName(dataRoot), { endpoint, body: files(dataRoot).body })}
`;
}

/** A shell script that replaces (or, without `add`, removes) the named block of config.toml, under the host's lock. */
function editConfig(name: string, add: { endpoint: string; body: string } | undefined): string {
  const begin = `# BEGIN ${name}`;
  const end = `# END ${name}`;
  const header = add
    ? [
        `case "$(sed -n 's/^[[:space:]]*version[[:space:]]*=[[:space:]]*\\([0-9]\\).*/\\1/p' "$f" | head -n 1)" in`,
        `  3) p='plugins."io.containerd.cri.v1.images"' ;;`,
        `  2) p='plugins."io.containerd.grpc.v1.cri"' ;;`,
        `  *) p='plugins.cri' ;;`,
        "esac",
        `h="[$p.registry.configs.\\"${add.endpoint}\\".auth]"`,
        // Someone else's table for this host: TOML refuses a table twice, and containerd would not start.
        `if grep -qF -- "$h" "$t"; then echo ${q(`${CONTAINERD_CONFIG} already has its own registry configs for ${add.endpoint}: remove them (sealant writes this host's login)`)} >&2; exit 1; fi`,
        `if [ -s ${q(add.body)} ]; then { echo ${q(begin)}; echo "$h"; cat ${q(add.body)}; echo ${q(end)}; } >> "$t"; fi`,
      ]
    : [];
  const script = [
    "set -e",
    `f=${q(CONTAINERD_CONFIG)}`,
    `if [ ! -f "$f" ]; then echo absent; exit 0; fi`,
    `t=$(mktemp "$f.sealant-XXXXXX"); trap 'rm -f "$t"' EXIT`,
    `awk -v b=${q(begin)} -v e=${q(end)} '$0 == b { skip = 1 } !skip { print } $0 == e { skip = 0 }' "$f" > "$t"`,
    ...header,
    // 0600: the file may hold a password now (containerd reads it as root).
    `chmod 600 "$t"`,
    `if cmp -s "$t" "$f"; then echo same; exit 0; fi`,
    `mv -f "$t" "$f"`,
    // CRI reads registry auth at start only.
    "if command -v systemctl > /dev/null 2>&1 && systemctl is-active containerd > /dev/null 2>&1; then systemctl restart containerd; fi",
    "echo changed",
  ].join("\n");
  return underHostLock(CONFIG_LOCK, "containerd's configuration", script);
}

function checkSetup(s: ExternalClientSetup): void {
  checkDataRoot(s.dataRoot);
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/.test(s.endpoint)) throw new Error(`external registry "${s.endpoint}": expected host[:port]`);
  if (s.namespace && !/^[a-z0-9]+([._/-][a-z0-9]+)*$/.test(s.namespace))
    throw new Error(`external registry namespace "${s.namespace}": expected a repository path`);
  s.domains.forEach((d) => registryComponent(d));
  if ((s.username === undefined) !== (s.password === undefined)) throw new Error("registry auth needs both a username and a password");
  if (s.username !== undefined && !/^[^:\s]+$/.test(s.username))
    throw new Error(`registry username "${s.username}": must not be empty or contain ":" or whitespace`);
  if (s.password !== undefined && (s.password === "" || /[\r\n\0]/.test(s.password)))
    throw new Error("registry password: must not be empty or contain line breaks");
}
