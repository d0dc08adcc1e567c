/**
 * Every host's containerd pointed at the external registry (`registry.external`):
 *
 *   <certsDir>/<source domain>/hosts.toml   one per registry the image's images come from, sending
 *                                           `docker.io/library/nginx` to
 *                                           `https://<endpoint>/v2/<namespace>/docker.io/library/nginx`
 *                                           (override_path), trusting the CA file beside it
 *   <certsDir>/<endpoint>/hosts.toml        the registry itself, with its CA
 *   /etc/containerd/config.toml             the login as CRI registry auth for <endpoint> (containerd-login.ts)
 *
 * The CA is no secret; the password reaches the host on stdin only.
 */
import type { Connection } from "../../ssh";
import { registryComponent } from "../../image/distribution-layout";
import { removeContainerdLogin, setContainerdLogin } from "./containerd-login";
import { CA_FILE, checkDataRoot, DEFAULT_CERTS_DIR, marker, markedDirs, removeDirs, writeIfChanged, writeUserCas } from "./certs-d";
import { userEntries } from "./registry-hosts";
import { configureUserRegistries, removeUserRegistries, type HostRegistries } from "./user-registries";

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

/**
 * On one host: hosts.toml (and the CA) for every source domain and the registry itself, stale
 * ones of this cluster removed, and the CRI auth block in place; then the user's registries
 * (their entries after the external registry's). Returns what happened to config.toml:
 * `changed` (containerd restarted when systemd runs it), `same`, or `absent` (no config.toml
 * yet: the block goes in when the container runtime's set-up runs the script), and what the
 * user's registries could not get.
 */
export async function configureExternalClients(
  conn: Connection,
  setup: ExternalClientSetup,
  o: { certsDir?: string; signal?: AbortSignal; registries?: HostRegistries } = {},
): Promise<{ config: "changed" | "same" | "absent"; warnings: string[] }> {
  checkSetup(setup);
  const certsDir = o.certsDir ?? DEFAULT_CERTS_DIR;
  const prefix = setup.namespace ? `/${setup.namespace}` : "";
  const wanted = new Map<string, string>();
  for (const d of setup.domains) wanted.set(d, `/v2${prefix}/${registryComponent(d)}`);
  if (!wanted.has(setup.endpoint)) wanted.set(setup.endpoint, "");
  for (const [dir, path] of wanted) {
    const ca = `${certsDir}/${dir}/${CA_FILE}`;
    if (setup.ca !== undefined) await writeIfChanged(conn, ca, setup.ca, 0o644, o.signal);
    const user = userEntries(o.registries?.config ?? { mirrors: {}, hosts: {} }, dir, `${certsDir}/${dir}`);
    await writeUserCas(conn, `${certsDir}/${dir}`, user.cas, o.signal);
    const lines = [
      marker(setup.dataRoot),
      `# Pull ${dir} images from the external registry ${setup.endpoint}. Written by sealant; changes are overwritten.`,
      // The registry's own dir names it as the server; a source domain keeps its upstream as the fallback (how the user's registries reach it).
      ...(path ? user.server : [`server = ${JSON.stringify(`https://${setup.endpoint}`)}`]),
      "",
      `[host.${JSON.stringify(`https://${setup.endpoint}${path}`)}]`,
      '  capabilities = ["pull", "resolve"]',
      ...(path ? ["  override_path = true"] : []),
      ...(setup.ca !== undefined ? [`  ca = ${JSON.stringify(ca)}`] : []),
      ...user.hosts,
    ];
    await writeIfChanged(conn, `${certsDir}/${dir}/hosts.toml`, `${lines.join("\n")}\n`, 0o644, o.signal);
  }
  const stale = (await markedDirs(conn, certsDir, setup.dataRoot, o.signal)).filter((d) => !wanted.has(d.slice(d.lastIndexOf("/") + 1)));
  await removeDirs(conn, stale, setup.dataRoot, o.signal);

  const config = await setContainerdLogin(
    conn,
    {
      endpoints: [setup.endpoint],
      ...(setup.username !== undefined && setup.password !== undefined ? { username: setup.username, password: setup.password } : {}),
      dataRoot: setup.dataRoot,
    },
    o.signal,
  );
  const warnings = o.registries ? await configureUserRegistries(conn, setup.dataRoot, o.registries, o) : [];
  return { config, warnings };
}

/**
 * On one host: the CRI auth block taken out of config.toml (containerd restarted if systemd runs
 * it), its files removed, and the hosts.toml files this cluster wrote.
 */
export async function removeExternalRegistryClients(conn: Connection, dataRoot: string, o: { certsDir?: string; signal?: AbortSignal } = {}): Promise<void> {
  checkDataRoot(dataRoot);
  await removeUserRegistries(conn, dataRoot, o);
  await removeContainerdLogin(conn, dataRoot, o.signal);
  await removeDirs(conn, await markedDirs(conn, o.certsDir ?? DEFAULT_CERTS_DIR, dataRoot, o.signal), dataRoot, o.signal);
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
