/**
 * The cluster's local registry: a stock CNCF distribution registry serving the image's
 * `registry/` tree read-only on the registry hosts, and every host's containerd told (certs.d
 * `hosts.toml` with `override_path`) to pull each source registry's images from it, so pods keep
 * their original names (`docker.io/library/nginx:1.25` is fetched as
 * `<server>/v2/docker.io/library/nginx/manifests/1.25`; see registryComponent).
 *
 * Files on a host, per cluster (so two clusters never share them):
 *   <dataRoot>/registry/config.yml      generated registry config
 *   <dataRoot>/registry/htpasswd        bcrypt, 0600 (when username and password are set)
 *   <dataRoot>/registry/certs/          ca.crt, registry.crt, registry.key (0600); ca.key stays on the first server
 *   <dataRoot>/run/registry.pid, registry.log
 *   /etc/hosts                          a block between `# BEGIN/END sealant registry <dataRoot>`
 *   <certsDir>/<host[:port]>/           hosts.toml + sealant-registry-ca.crt, marked with `# sealant-cluster: <dataRoot>`
 *
 * Secrets (the password, the server key) reach hosts only on a command's stdin, never in a
 * command line, so they show up in no process list, error or log.
 */
import { isIP } from "node:net";
import { posix } from "node:path";
import { registryComponent } from "../../image/distribution-layout";
import { parseReference } from "../../image/reference";
import { shellQuote as q, type Connection, type ExecOptions } from "../../ssh";
import { CA_FILE, checkDataRoot, DEFAULT_CERTS_DIR, marker, markedDirs, removeDirs, writeIfChanged, writeUserCas } from "./certs-d";
import { removeContainerdLogin, setContainerdLogin } from "./containerd-login";
import { setHostsBlock } from "./etc-hosts";
import { userEntries } from "./registry-hosts";
import { configureUserRegistries, removeUserRegistries, type HostRegistries } from "./user-registries";

export { CA_FILE, checkDataRoot, DEFAULT_CERTS_DIR, marker, markedDirs, removeDirs, writeIfChanged };

export interface RegistrySetup {
  /** The registry's name on the hosts (spec.registry.domain), e.g. `sea.hub`. */
  domain: string;
  port: number;
  /** IPs of the hosts that serve the registry, in order (clients try them in this order). */
  servers: string[];
  /** Source registry domains the image carries (`docker.io`, `127.0.0.1:5001`); see registryDomains. */
  domains: string[];
  /** Secret. htpasswd auth when both are set. */
  username?: string;
  password?: string;
  /** Serve HTTPS with a certificate sealant makes (see prepareRegistryTls). */
  tls: boolean;
  /** More names/IPs for the certificate, besides the domain and the server IPs. */
  subjectAltNames?: string[];
  /** The cluster's data root on hosts, e.g. `/var/lib/sealant/demo`. */
  dataRoot: string;
}

export interface RegistryTls {
  caCert: string;
  cert: string;
  /** Secret: the server certificate's private key. */
  key: string;
}

export interface ClientOptions {
  /** containerd's registry config dir (CRI `config_path`, `ctr --hosts-dir`). @default "/etc/containerd/certs.d" */
  certsDir?: string;
  signal?: AbortSignal;
  /** The user's registries (`registry.registries`): their entries follow the cluster's, and the rest is written by user-registries.ts. */
  registries?: HostRegistries;
}

/** The source registry of each image reference (`nginx:1` -> `docker.io`), deduplicated and sorted. */
export function registryDomains(images: string[]): string[] {
  return [...new Set(images.map((i) => parseReference(i).registry))].sort();
}

/**
 * Once per apply, on the first server: makes the CA and the server certificate (SANs: domain,
 * every server IP, subjectAltNames) under the data root, or reuses them while they still verify
 * and cover the same names; returns them for the other servers and the clients.
 */
export async function prepareRegistryTls(conn: Connection, setup: RegistrySetup, signal?: AbortSignal): Promise<RegistryTls> {
  check(setup);
  const dir = paths(setup.dataRoot).certs;
  const sans = [setup.domain, ...setup.servers, ...(setup.subjectAltNames ?? [])].filter((v, i, all) => all.indexOf(v) === i);
  for (const s of sans) if (!/^[A-Za-z0-9.:*-]+$/.test(s)) throw new Error(`registry certificate name "${s}": expected a host name or an IP address`);
  const ext = [
    `subjectAltName=${sans.map((s) => (isIP(s) ? `IP:${s}` : `DNS:${s}`)).join(",")}`,
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
  ].join("\n");
  const ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  // A new CA invalidates the old server cert (openssl verify fails), so both get remade.
  await conn.run(
    [
      "set -e",
      `command -v openssl >/dev/null || { echo "openssl is needed on ${setup.servers[0]} to make the registry certificate" >&2; exit 1; }`,
      `mkdir -p ${q(dir)}`,
      `cd ${q(dir)}`,
      "umask 077",
      `if [ ! -s ca.key ] || [ ! -s ca.crt ]; then openssl req -x509 ${ec} -keyout ca.key -out ca.crt -days 3650 -subj '/CN=sealant registry CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; fi`,
      `printf '%s\\n' ${q(ext)} > registry.ext.new`,
      "if [ -s registry.key ] && [ -s registry.crt ] && cmp -s registry.ext.new registry.ext && openssl verify -CAfile ca.crt registry.crt >/dev/null 2>&1; then rm -f registry.ext.new; else",
      `  openssl req -new ${ec} -keyout registry.key -out registry.csr -subj '/CN=sealant registry'`,
      "  openssl x509 -req -in registry.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile registry.ext.new -out registry.crt",
      "  mv -f registry.ext.new registry.ext; rm -f registry.csr",
      "fi",
      "chmod 644 ca.crt registry.crt",
    ].join("\n"),
    opts(signal),
  );
  const read = async (f: string) => (await conn.run(`cat ${q(`${dir}/${f}`)}`, opts(signal))).stdout;
  return { caCert: await read("ca.crt"), cert: await read("registry.crt"), key: await read("registry.key") };
}

/**
 * On a registry host: serves `<rootfs>/registry` on hostIp:port, detached, and waits until `/v2/`
 * answers. Idempotent: a running registry whose config, htpasswd and certificate are unchanged
 * and which answers is left alone; otherwise it is restarted.
 */
export async function startRegistry(
  conn: Connection,
  hostIp: string,
  rootfs: string,
  setup: RegistrySetup,
  tls: RegistryTls | undefined,
  signal?: AbortSignal,
): Promise<void> {
  check(setup);
  checkIp(hostIp);
  if (setup.tls && !tls) throw new Error("registry TLS is on but no certificate was given: call prepareRegistryTls first");
  const p = paths(setup.dataRoot);
  // Resolve the rootfs (a symlink to the current image's): an upgrade then changes the config and restarts the registry.
  const found = await conn.run(
    [
      `r=$(readlink -f ${q(rootfs)}) && [ -d "$r/registry" ] || { echo ${q(`${rootfs}/registry does not exist: the cluster image carries no container images to serve`)} >&2; exit 1; }`,
      'echo "$r"',
      'for b in "$r/bin/registry" "$r/bin/docker-registry"; do if [ -f "$b" ] && [ -x "$b" ]; then echo "$b"; exit 0; fi; done',
      `command -v docker-registry || command -v registry || { echo "no registry binary: the image has no bin/registry or bin/docker-registry, and neither docker-registry nor registry is on the host's PATH" >&2; exit 1; }`,
    ].join("\n"),
    opts(signal),
  );
  const [root, binary] = found.stdout.trim().split("\n") as [string, string];

  const auth = setup.username !== undefined && setup.password !== undefined;
  let changed = await writeIfChanged(
    conn,
    p.config,
    registryConfig({
      binary,
      root: `${root}/registry`,
      addr: hostPort(hostIp, setup.port),
      tls: setup.tls ? p : undefined,
      htpasswd: auth ? p.htpasswd : undefined,
    }),
    0o644,
    signal,
  );
  if (auth) changed = (await ensureHtpasswd(conn, p.htpasswd, setup.username!, setup.password!, signal)) || changed;
  else await conn.run(`rm -f ${q(p.htpasswd)}`, opts(signal));
  if (setup.tls && tls) {
    changed = (await writeIfChanged(conn, `${p.certs}/ca.crt`, tls.caCert, 0o644, signal)) || changed;
    changed = (await writeIfChanged(conn, `${p.certs}/registry.crt`, tls.cert, 0o644, signal)) || changed;
    changed = (await writeIfChanged(conn, `${p.certs}/registry.key`, tls.key, 0o600, signal)) || changed;
  }
  const url = `${setup.tls ? "https" : "http"}://${hostPort(hostIp, setup.port)}/v2/`;
  const probe = `curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${setup.tls ? `--cacert ${q(`${p.certs}/ca.crt`)} ` : ""}${q(url)}`;
  if (!changed && (await conn.exec(`${isRunning(p)} && case "$(${probe})" in 200|401) exit 0;; *) exit 1;; esac`, opts(signal))).code === 0) return;

  await conn.run(stopCommand(p), opts(signal));
  // setsid -f: fully detached, or the ssh command would wait for it; the shell writes its own pid, then becomes the registry.
  await conn.run(
    `mkdir -p ${q(posix.dirname(p.pid))} && setsid -f sh -c 'echo $$ > "$1"; exec "$2" serve "$3"' sealant-registry ${q(p.pid)} ${q(binary)} ${q(p.config)} >> ${q(p.log)} 2>&1 < /dev/null`,
    opts(signal),
  );
  await conn.run(
    [
      `command -v curl >/dev/null || { echo "curl is needed on registry hosts to check the registry" >&2; exit 1; }`,
      "i=0",
      "while [ $i -lt 150 ]; do",
      `  case "$(${probe})" in 200|401) exit 0;; esac`,
      `  p=$(cat ${q(p.pid)} 2>/dev/null || true)`,
      `  if [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null; then echo "the registry exited; its log:" >&2; tail -n 20 ${q(p.log)} >&2; exit 1; fi`,
      "  i=$((i+1)); sleep 0.1",
      "done",
      `echo "the registry did not answer ${url} within 15 s; its log:" >&2; tail -n 20 ${q(p.log)} >&2; exit 1`,
    ].join("\n"),
    opts(signal),
  );
}

/**
 * On every host: `/etc/hosts` maps the domain to this host when it is a server (else to the first
 * server), and containerd pulls every source domain, and `<domain>:<port>` itself, from the
 * servers in order (it falls back to the next on failure, then to the source registry).
 *
 * Auth: hosts.toml cannot carry credentials, so with a username and password containerd's CRI
 * gets them as registry auth for every server (see containerd-login.ts); without, any such
 * login this cluster gave it is taken out. (`ctr` takes `--user`.)
 */
export async function configureRegistryClients(
  conn: Connection,
  hostIp: string,
  setup: RegistrySetup,
  tls: RegistryTls | undefined,
  o: ClientOptions = {},
): Promise<string[]> {
  check(setup);
  checkIp(hostIp);
  if (setup.tls && !tls) throw new Error("registry TLS is on but no CA certificate was given: call prepareRegistryTls first");
  const certsDir = o.certsDir ?? DEFAULT_CERTS_DIR;
  const mapped = setup.servers.includes(hostIp) ? hostIp : setup.servers[0]!;
  await setHostsBlock(conn, `sealant registry ${setup.dataRoot}`, [`${mapped} ${setup.domain}`], o.signal);

  const scheme = setup.tls ? "https" : "http";
  const caCert = setup.tls ? tls?.caCert : undefined;
  // containerd (Linux) names the dir after the registry host as written, port included ("127.0.0.1:5001").
  const wanted = new Map<string, string>();
  for (const d of setup.domains) wanted.set(d, `/v2/${registryComponent(d)}`);
  const own = `${setup.domain}:${setup.port}`;
  if (!wanted.has(own)) wanted.set(own, "");
  for (const [dir, path] of wanted) {
    const ca = `${certsDir}/${dir}/${CA_FILE}`;
    if (caCert !== undefined) await writeIfChanged(conn, ca, caCert, 0o644, o.signal);
    // The user's own mirrors for this registry (registry.registries) follow the cluster's servers.
    const user = userEntries(o.registries?.config ?? { mirrors: {}, hosts: {} }, dir, `${certsDir}/${dir}`);
    await writeUserCas(conn, `${certsDir}/${dir}`, user.cas, o.signal);
    const lines = [
      marker(setup.dataRoot),
      `# Pull ${dir} images from the cluster's registry, servers in order. Written by sealant; changes are overwritten.`,
      ...user.server,
    ];
    for (const s of setup.servers) {
      lines.push("", `[host.${JSON.stringify(`${scheme}://${hostPort(s, setup.port)}${path}`)}]`, '  capabilities = ["pull", "resolve"]');
      if (path) lines.push("  override_path = true");
      if (caCert !== undefined) lines.push(`  ca = ${JSON.stringify(ca)}`);
    }
    lines.push(...user.hosts);
    await writeIfChanged(conn, `${certsDir}/${dir}/hosts.toml`, `${lines.join("\n")}\n`, 0o644, o.signal);
  }
  // Domains the image no longer carries: drop what this cluster wrote for them earlier.
  const stale = (await markedDirs(conn, certsDir, setup.dataRoot, o.signal)).filter((d) => !wanted.has(posix.basename(d)));
  await removeDirs(conn, stale, setup.dataRoot, o.signal);
  const endpoints = [...setup.servers.map((s) => hostPort(s, setup.port)), own];
  const login = setup.username !== undefined && setup.password !== undefined ? { username: setup.username, password: setup.password } : {};
  await setContainerdLogin(conn, { endpoints, ...login, dataRoot: setup.dataRoot }, o.signal);
  return o.registries ? configureUserRegistries(conn, setup.dataRoot, o.registries, o) : [];
}

/** Stops the registry on a host and removes everything this cluster's registry phase wrote there. */
export async function removeRegistry(conn: Connection, setup: Pick<RegistrySetup, "dataRoot">, o: ClientOptions = {}): Promise<void> {
  checkDataRoot(setup.dataRoot);
  const p = paths(setup.dataRoot);
  await conn.run(stopCommand(p), opts(o.signal));
  await removeUserRegistries(conn, setup.dataRoot, o);
  await removeContainerdLogin(conn, setup.dataRoot, o.signal);
  await setHostsBlock(conn, `sealant registry ${setup.dataRoot}`, [], o.signal);
  await removeDirs(conn, await markedDirs(conn, o.certsDir ?? DEFAULT_CERTS_DIR, setup.dataRoot, o.signal), setup.dataRoot, o.signal);
  await conn.run(`rm -rf ${q(p.dir)} && rm -f ${q(p.log)}`, opts(o.signal));
}

// ---- helpers ----

interface Paths {
  dir: string;
  config: string;
  htpasswd: string;
  certs: string;
  pid: string;
  log: string;
}

function paths(dataRoot: string): Paths {
  const root = dataRoot.replace(/\/+$/, "");
  const dir = `${root}/registry`;
  return {
    dir,
    config: `${dir}/config.yml`,
    htpasswd: `${dir}/htpasswd`,
    certs: `${dir}/certs`,
    pid: `${root}/run/registry.pid`,
    log: `${root}/run/registry.log`,
  };
}

const opts = (signal?: AbortSignal, extra: ExecOptions = {}): ExecOptions => ({ sudo: true, ...(signal ? { signal } : {}), ...extra });
const hostPort = (ip: string, port: number) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

function check(s: RegistrySetup): void {
  checkDataRoot(s.dataRoot);
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(s.domain)) throw new Error(`registry domain "${s.domain}": expected a host name such as sea.hub`);
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) throw new Error(`registry port ${s.port}: expected 1-65535`);
  if (s.servers.length === 0) throw new Error("registry: no servers given");
  s.servers.forEach(checkIp);
  s.domains.forEach((d) => registryComponent(d)); // throws for what cannot be stored (IPv6 literals)
  if ((s.username === undefined) !== (s.password === undefined)) throw new Error("registry auth needs both a username and a password");
  if (s.username !== undefined && !/^[^:\s]+$/.test(s.username))
    throw new Error(`registry username "${s.username}": must not be empty or contain ":" or whitespace`);
  if (s.password !== undefined && (s.password === "" || /[\r\n]/.test(s.password)))
    throw new Error("registry password: must not be empty or contain line breaks");
}

function checkIp(ip: string): void {
  if (!isIP(ip)) throw new Error(`"${ip}" is not an IP address`);
}

function registryConfig(c: { binary: string; root: string; addr: string; tls?: Paths | undefined; htpasswd?: string | undefined }): string {
  const s = JSON.stringify; // JSON strings are YAML strings
  return (
    [
      `# Written by sealant; served by ${c.binary}. Changes here are overwritten.`,
      "version: 0.1",
      "log:",
      "  level: info",
      "  accesslog:",
      "    disabled: false",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${s(c.root)}`,
      "  maintenance:",
      // Never write into the image's files: no pushes, no purging of upload dirs.
      "    uploadpurging:",
      "      enabled: false",
      "    readonly:",
      "      enabled: true",
      "  cache:",
      "    blobdescriptor: inmemory",
      "http:",
      `  addr: ${s(c.addr)}`,
      ...(c.tls ? ["  tls:", `    certificate: ${s(`${c.tls.certs}/registry.crt`)}`, `    key: ${s(`${c.tls.certs}/registry.key`)}`] : []),
      ...(c.htpasswd ? ["auth:", "  htpasswd:", "    realm: sealant-registry", `    path: ${s(c.htpasswd)}`] : []),
    ].join("\n") + "\n"
  );
}

/** Keeps an htpasswd file that already accepts the password (bcrypt salts differ per run); true when it was (re)made. */
async function ensureHtpasswd(conn: Connection, file: string, user: string, password: string, signal?: AbortSignal): Promise<boolean> {
  const stdin = `${password}\n`;
  const verify = await conn.exec(`htpasswd -vi ${q(file)} ${q(user)}`, opts(signal, { stdin, secrets: [password] }));
  if (verify.code === 0) return false;
  await conn.run(
    `set -e; command -v htpasswd >/dev/null || { echo "htpasswd (apache2-utils) is needed on registry hosts for registry auth" >&2; exit 1; }; mkdir -p ${q(posix.dirname(file))}; umask 077; htpasswd -iBc ${q(`${file}.sealant-tmp`)} ${q(user)}; mv -f ${q(`${file}.sealant-tmp`)} ${q(file)}`,
    opts(signal, { stdin, secrets: [password] }),
  );
  return true;
}

/** A shell condition: the pid file names a live process started with this config (the cluster registry's, a cache's). */
export function isRunning(p: { pid: string; config: string }): string {
  return `p=$(cat ${q(p.pid)} 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && tr '\\0' ' ' < /proc/"$p"/cmdline | grep -qF -- ${q(p.config)}`;
}

/** Stops that process (TERM, then KILL after 5 s) and drops its pid file. */
export function stopCommand(p: { pid: string; config: string }): string {
  return [
    `if ${isRunning(p)}; then`,
    '  kill "$p"; i=0',
    '  while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done',
    '  kill -9 "$p" 2>/dev/null || true',
    "fi",
    `rm -f ${q(p.pid)}`,
  ].join("\n");
}
