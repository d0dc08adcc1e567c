/**
 * Pull-through caches beside the cluster's registry: for each configured upstream (docker.io,
 * quay.io, a private registry with a login) one stock distribution registry in proxy mode on
 * every registry server, on its own port and with its own storage. distribution's proxy mode
 * caches exactly one upstream per instance and cannot also serve the image's read-only tree, so
 * the cluster registry stays as it is and the caches run beside it.
 *
 * Every host's containerd gets, for an upstream's domain, a hosts.toml that tries the cluster
 * registry's read-only tree first (images the cluster image carries), then the cache on each
 * server, and last either the cache again (`fallback: "none"`, so no host ever goes out) or the
 * upstream itself (`fallback: "upstream"`). containerd always appends the hosts.toml's `server`
 * as the last endpoint (the upstream when it is not set), which is why "none" names the cache.
 *
 * Files on a registry server, per cluster and upstream (`<name>` is the domain, ":" as "_"):
 *   <dataRoot>/cache/<name>/config.yml   0600: it holds the upstream's password, written from stdin
 *   <dataRoot>/cache/<name>/data/        what was fetched (kept across restarts and upgrades)
 *   <dataRoot>/run/cache-<name>.pid, cache-<name>.log
 * On every host: <certsDir>/<domain>/hosts.toml marked `# sealant-pull-through: <dataRoot>`.
 *
 * With the upstream gone, the cache answers from what it holds: manifests by digest, and tags
 * too (distribution's proxy tag service falls back to its local tag when the upstream fails).
 * distribution 2.8 expires what it cached 7 days after fetching it (a fixed TTL: with the upstream gone
 * that long, it is lost); v3 is told `ttl: 0s`, never to expire. Both exit at start when they
 * cannot reach the upstream: the cache is then started on the same storage
 * without the proxy, read-only, and the caller gets a warning.
 */
import { posix } from "node:path";
import { registryComponent } from "../../image/distribution-layout";
import { shellQuote as q, type Connection, type ExecOptions } from "../../ssh";
import { underHostLock } from "../../ssh/host-lock";
import { setContainerdLogin } from "./containerd-login";
import { pullThroughMarker, writeUserCas } from "./certs-d";
import {
  CA_FILE,
  checkDataRoot,
  configureRegistryClients,
  DEFAULT_CERTS_DIR,
  isRunning,
  stopCommand,
  writeIfChanged,
  type ClientOptions,
  type RegistrySetup,
  type RegistryTls,
} from "./registry";
import { userEntries } from "./registry-hosts";
import { configureUserRegistries } from "./user-registries";
import { checkUpstreams, type PullThroughUpstream } from "../spec/pull-through-upstream";

export { checkUpstreams, type PullThroughUpstream };

const CERTS_LOCK = "containerd-certs";
export { pullThroughMarker };

/** The upstream's name on disk and in process names. */
export function cacheName(domain: string): string {
  return domain.replace(/:/g, "_");
}

/**
 * On a registry server: one cache per upstream on hostIp, started or restarted when its config
 * changed, and caches of upstreams no longer configured stopped (their data stays until the
 * cluster is removed). The binary is the one the cluster registry runs (its config names it).
 */
export async function startPullThroughCaches(
  conn: Connection,
  hostIp: string,
  registry: RegistrySetup,
  tls: RegistryTls | undefined,
  upstreams: readonly PullThroughUpstream[],
  signal?: AbortSignal,
): Promise<string[]> {
  checkDataRoot(registry.dataRoot);
  checkUpstreams(upstreams, registry.port);
  const root = registry.dataRoot.replace(/\/+$/, "");
  const binary = (
    await conn.run(
      `for b in "$(sed -n 's/^# Written by sealant; served by \\(.*\\)\\. Changes here are overwritten\\.$/\\1/p' ${q(`${root}/registry/config.yml`)} 2>/dev/null)" "$(command -v docker-registry)" "$(command -v registry)"; do if [ -n "$b" ] && [ -x "$b" ]; then echo "$b"; exit 0; fi; done; echo "no registry binary for the pull-through caches" >&2; exit 1`,
      opts(signal),
    )
  ).stdout.trim();
  const warnings: string[] = [];
  for (const u of upstreams) {
    const p = paths(root, u.domain);
    const scheme = registry.tls ? "https" : "http";
    const probe = `curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${registry.tls ? `--cacert ${q(`${root}/registry/certs/ca.crt`)} ` : ""}${q(`${scheme}://${hostPort(hostIp, u.port)}/v2/`)}`;
    const config = (offline: boolean) => cacheConfig(binary, p, hostPort(hostIp, u.port), u, registry, root, offline);
    if (u.username !== undefined) {
      const basic = await basicOnly(conn, u.url, signal);
      if (basic)
        warnings.push(
          `${hostIp}: ${u.url} asks for a Basic login, and distribution's pull-through cache logs in only where the upstream hands out tokens (Bearer, as Docker Hub, quay.io and Harbor do): the cache of ${u.domain} fetches without the login, so its private images will not be found`,
        );
    }
    const changed = await writeIfChanged(conn, p.config, config(false), 0o600, signal);
    if (!changed && (await conn.exec(`${isRunning(p)} && case "$(${probe})" in 200|401) exit 0;; *) exit 1;; esac`, opts(signal))).code === 0) continue;
    if (registry.tls && !tls) throw new Error("registry TLS is on but no certificate was given: call prepareRegistryTls first");
    const started = await startCache(conn, p, binary, probe, signal);
    if (started === "answering") continue;
    // distribution asks the upstream for its login realm when it starts and exits when it cannot
    // reach it: the cache then serves what it holds, read-only, until an apply finds the upstream back.
    await writeIfChanged(conn, p.config, config(true), 0o600, signal);
    const offline = await startCache(conn, p, binary, probe, signal);
    if (offline !== "answering") throw new Error(`the pull-through cache of ${u.domain} did not start on ${hostIp}; its log:\n${offline}`);
    warnings.push(
      `${hostIp}: the pull-through cache of ${u.domain} could not reach ${u.url} (${reason(started)}): it serves what it has cached, read-only; apply again once the upstream is back to fetch new images`,
    );
  }
  const wanted = new Set(upstreams.map((u) => cacheName(u.domain)));
  const listed = (await conn.run(`ls -1 ${q(`${root}/cache`)} 2>/dev/null || true`, opts(signal))).stdout.split("\n").filter(Boolean);
  for (const name of listed.filter((n) => !wanted.has(n))) await conn.run(stopCommand(paths(root, name)), opts(signal));
  return warnings;
}

/** Starts a cache and waits until it answers: "answering", or the tail of its log when it exited or did not answer in 15 s. */
async function startCache(conn: Connection, p: CachePaths, binary: string, probe: string, signal?: AbortSignal): Promise<string> {
  await conn.run(stopCommand(p), opts(signal));
  await conn.run(
    `mkdir -p ${q(p.data)} && setsid -f sh -c 'echo $$ > "$1"; exec "$2" serve "$3"' sealant-cache ${q(p.pid)} ${q(binary)} ${q(p.config)} >> ${q(p.log)} 2>&1 < /dev/null`,
    opts(signal),
  );
  const r = await conn.exec(
    [
      "i=0",
      "while [ $i -lt 150 ]; do",
      `  case "$(${probe})" in 200|401) echo answering; exit 0;; esac`,
      `  p=$(cat ${q(p.pid)} 2>/dev/null || true)`,
      `  if [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null; then tail -n 20 ${q(p.log)}; exit 0; fi`,
      "  i=$((i+1)); sleep 0.1",
      "done",
      `echo "no answer within 15 s"; tail -n 20 ${q(p.log)}`,
    ].join("\n"),
    opts(signal),
  );
  return r.stdout.trim() || r.stderr.trim();
}

/**
 * Whether the upstream challenges with Basic only: distribution's proxy hands its login to a
 * Bearer realm and to nothing else. Asked from the server, without credentials; the answer's
 * header is all that is read, so an upstream with a CA of its own is not verified here (-k).
 */
async function basicOnly(conn: Connection, url: string, signal?: AbortSignal): Promise<boolean> {
  const r = await conn.exec(`curl -sk -o /dev/null -D - --max-time 5 ${q(`${url.replace(/\/+$/, "")}/v2/`)}`, opts(signal));
  const schemes = r.stdout
    .split(/\r?\n/)
    .filter((l) => /^www-authenticate:/i.test(l))
    .map((l) =>
      l
        .replace(/^www-authenticate:\s*/i, "")
        .split(/\s/)[0]!
        .toLowerCase(),
    );
  return schemes.includes("basic") && !schemes.includes("bearer");
}

/** The line of a cache's log that says why it stopped (distribution panics with the upstream's dial error). */
function reason(log: string): string {
  return (log.split("\n").find((l) => l.startsWith("panic: ")) ?? log.split("\n")[0] ?? "").replace(/^panic: /, "").slice(0, 300);
}

/**
 * On every host: containerd pulls each upstream's domain from the cluster registry's tree, then
 * from the caches on the servers in order, then (fallback) from nothing else or the upstream.
 * Run after the cluster registry's own client configuration: for a domain the image also
 * carries, this file replaces the registry's (it lists the same tree first).
 */
export async function configurePullThroughClients(
  conn: Connection,
  hostIp: string,
  registry: RegistrySetup,
  tls: RegistryTls | undefined,
  upstreams: readonly PullThroughUpstream[],
  o: ClientOptions = {},
): Promise<string[]> {
  checkDataRoot(registry.dataRoot);
  checkUpstreams(upstreams, registry.port);
  if (registry.tls && !tls) throw new Error("registry TLS is on but no CA certificate was given: call prepareRegistryTls first");
  const certsDir = o.certsDir ?? DEFAULT_CERTS_DIR;
  const scheme = registry.tls ? "https" : "http";
  for (const u of upstreams) {
    const dir = `${certsDir}/${u.domain}`;
    const ca = `${dir}/${CA_FILE}`;
    if (tls) await writeIfChanged(conn, ca, tls.caCert, 0o644, o.signal);
    const caLine = tls ? [`  ca = ${JSON.stringify(ca)}`] : [];
    const caches = registry.servers.map((s) => `${scheme}://${hostPort(s, u.port)}`);
    // The user's own mirrors for this registry (registry.registries) are tried after the caches.
    const user = userEntries(o.registries?.config ?? { mirrors: {}, hosts: {} }, u.domain, dir);
    await writeUserCas(conn, dir, user.cas, o.signal);
    const lines = [
      pullThroughMarker(registry.dataRoot),
      `# Pull ${u.domain} images from the cluster's registry, then from its pull-through cache. Written by sealant; changes are overwritten.`,
      // The last endpoint containerd tries: the cache again ("none") or the upstream.
      `server = ${JSON.stringify(u.fallback === "none" ? caches[caches.length - 1]! : upstreamServer(u))}`,
      ...(u.fallback === "none" ? caLine.map((l) => l.trim()) : []),
    ];
    for (const s of registry.servers) {
      const tree = `${scheme}://${hostPort(s, registry.port)}/v2/${registryComponent(u.domain)}`;
      lines.push("", `[host.${JSON.stringify(tree)}]`, '  capabilities = ["pull", "resolve"]', "  override_path = true", ...caLine);
    }
    for (const c of caches) lines.push("", `[host.${JSON.stringify(c)}]`, '  capabilities = ["pull", "resolve"]', ...caLine);
    lines.push(...user.hosts);
    await writeIfChanged(conn, `${dir}/hosts.toml`, `${lines.join("\n")}\n`, 0o644, o.signal);
  }
  // Upstreams no longer configured: their files go (the cluster registry's step rewrites its own domains).
  const wanted = new Set(upstreams.map((u) => u.domain));
  const r = await conn.run(`grep -lxF -- ${q(pullThroughMarker(registry.dataRoot))} ${q(certsDir)}/*/hosts.toml 2>/dev/null || true`, opts(o.signal));
  const stale = r.stdout
    .split("\n")
    .filter(Boolean)
    .map((f) => posix.dirname(f))
    .filter((d) => !wanted.has(posix.basename(d)));
  await removeMarked(conn, stale, registry.dataRoot, o.signal);
  // Upstreams taken out: the cluster registry's own files (a domain the image carries) and login come back.
  if (stale.length > 0) await configureRegistryClients(conn, hostIp, registry, tls, o);
  if (upstreams.length > 0) await cachesLogin(conn, registry, upstreams, o.signal);
  return o.registries ? configureUserRegistries(conn, registry.dataRoot, o.registries, o) : [];
}

/** The caches share the cluster registry's htpasswd: containerd's CRI gets its login for them too. */
async function cachesLogin(conn: Connection, registry: RegistrySetup, upstreams: readonly PullThroughUpstream[], signal?: AbortSignal): Promise<void> {
  // The caches share the cluster registry's htpasswd: containerd's CRI gets its login for them too
  // (the registry's block in config.toml, rewritten with the caches' endpoints added).
  const endpoints = [
    ...registry.servers.map((s) => hostPort(s, registry.port)),
    `${registry.domain}:${registry.port}`,
    ...upstreams.flatMap((u) => registry.servers.map((s) => hostPort(s, u.port))),
  ];
  const login = registry.username !== undefined && registry.password !== undefined ? { username: registry.username, password: registry.password } : {};
  await setContainerdLogin(conn, { endpoints, ...login, dataRoot: registry.dataRoot }, signal);
}

/** Stops this cluster's caches on a host, deletes what they cached, and removes the hosts.toml files it wrote. */
export async function removePullThrough(conn: Connection, dataRoot: string, o: ClientOptions = {}): Promise<void> {
  checkDataRoot(dataRoot);
  const root = dataRoot.replace(/\/+$/, "");
  const listed = (await conn.run(`ls -1 ${q(`${root}/cache`)} 2>/dev/null || true`, opts(o.signal))).stdout.split("\n").filter(Boolean);
  for (const name of listed) await conn.run(stopCommand(paths(root, name)), opts(o.signal));
  const certsDir = o.certsDir ?? DEFAULT_CERTS_DIR;
  const r = await conn.run(`grep -lxF -- ${q(pullThroughMarker(dataRoot))} ${q(certsDir)}/*/hosts.toml 2>/dev/null || true`, opts(o.signal));
  await removeMarked(
    conn,
    r.stdout
      .split("\n")
      .filter(Boolean)
      .map((f) => posix.dirname(f)),
    dataRoot,
    o.signal,
  );
  await conn.run(`rm -rf ${q(`${root}/cache`)} && rm -f ${q(`${root}/run`)}/cache-*.pid ${q(`${root}/run`)}/cache-*.log`, opts(o.signal));
}

// ---- helpers ----

interface CachePaths {
  dir: string;
  config: string;
  data: string;
  pid: string;
  log: string;
}

function paths(root: string, domainOrName: string): CachePaths {
  const name = cacheName(domainOrName);
  const dir = `${root}/cache/${name}`;
  return { dir, config: `${dir}/config.yml`, data: `${dir}/data`, pid: `${root}/run/cache-${name}.pid`, log: `${root}/run/cache-${name}.log` };
}

const opts = (signal?: AbortSignal, extra: ExecOptions = {}): ExecOptions => ({ sudo: true, ...(signal ? { signal } : {}), ...extra });
const hostPort = (ip: string, port: number) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

/** containerd's own default endpoint for a domain (docker.io is served by registry-1.docker.io). */
function upstreamServer(u: PullThroughUpstream): string {
  return u.domain === "docker.io" ? "https://registry-1.docker.io" : `https://${u.domain}`;
}

/** The cache's config; `offline`: the same storage served read-only, with no upstream. */
function cacheConfig(binary: string, p: CachePaths, addr: string, u: PullThroughUpstream, registry: RegistrySetup, root: string, offline: boolean): string {
  const s = JSON.stringify; // JSON strings are YAML strings
  const certs = `${root}/registry/certs`;
  return (
    [
      `# Written by sealant; served by ${binary}. Changes here are overwritten. Holds the upstream's login: keep it 0600.`,
      "version: 0.1",
      "log:",
      "  level: info",
      "  accesslog:",
      "    disabled: false",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${s(p.data)}`,
      ...(offline ? ["  maintenance:", "    uploadpurging:", "      enabled: false", "    readonly:", "      enabled: true"] : []),
      "  cache:",
      "    blobdescriptor: inmemory",
      "http:",
      `  addr: ${s(addr)}`,
      ...(registry.tls ? ["  tls:", `    certificate: ${s(`${certs}/registry.crt`)}`, `    key: ${s(`${certs}/registry.key`)}`] : []),
      // The cluster registry's login guards the caches too: they hold what the upstream's login let them fetch.
      ...(registry.username !== undefined ? ["auth:", "  htpasswd:", "    realm: sealant-registry", `    path: ${s(`${root}/registry/htpasswd`)}`] : []),
      ...(offline
        ? [`# Offline: ${u.url} could not be reached when the cache started.`]
        : [
            "proxy:",
            `  remoteurl: ${s(u.url.replace(/\/+$/, ""))}`,
            // distribution v3: keep what was fetched for good (the default drops it after 7 days); 2.8 ignores the key and keeps its fixed 7 days.
            "  ttl: 0s",
            ...(u.username !== undefined ? [`  username: ${s(u.username)}`, `  password: ${s(u.password)}`] : []),
          ]),
    ].join("\n") + "\n"
  );
}

async function removeMarked(conn: Connection, dirs: string[], dataRoot: string, signal?: AbortSignal): Promise<void> {
  if (dirs.length === 0) return;
  // Checked again under the lock: only files this cluster's pull-through wrote, the dir only when empty.
  const cmds = dirs.map(
    (d) =>
      `if grep -qxF -- ${q(pullThroughMarker(dataRoot))} ${q(`${d}/hosts.toml`)} 2>/dev/null; then rm -f ${q(`${d}/hosts.toml`)} ${q(d)}/sealant-*.crt; rmdir ${q(d)} 2>/dev/null || true; fi`,
  );
  await conn.run(`sh -c ${q(underHostLock(CERTS_LOCK, "containerd's registry configuration", cmds.join("\n")))}`, opts(signal));
}
