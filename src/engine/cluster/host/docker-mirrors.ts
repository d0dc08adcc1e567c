/**
 * What dockerd gets from the cluster's registry, for images whose runtime is Docker (sealer's
 * `scripts/docker.sh` layout). containerd is told per source registry (certs.d hosts.toml, see
 * registry.ts); dockerd cannot be:
 *
 * - `registry-mirrors` in /etc/docker/daemon.json applies to docker.io images ONLY. Every other
 *   source registry (quay.io, registry.k8s.io, ghcr.io, a private one) is pulled from itself
 *   whatever the daemon.json says; on a host that cannot reach it the pull fails. Stock dockerd
 *   has no per-registry mirrors (sealer's own fork added a `mirror-registries` field for this).
 * - A mirror URL may not have a path (dockerd refuses "path, query, or fragment at end of the
 *   URI"), and dockerd asks a mirror for `/v2/library/nginx/...`, while the cluster's registry
 *   keeps docker.io images under `docker.io/library/nginx`. So the mirror is a second registry
 *   process beside the cluster's, on `port + 1`, serving a view of the same tree whose
 *   repositories are the docker.io ones (two symlinks: blobs, repositories/docker.io), read-only.
 * - dockerd sends no credentials to a mirror: with `registry.username` set the view would answer
 *   401 and dockerd would go to docker.io; sealant then writes no mirror and says so.
 *
 * Files on a host:
 *   /etc/docker/daemon.json                              registry-mirrors (ours first, the user's kept),
 *                                                        insecure-registries when the registry is plain HTTP;
 *                                                        every other key left as the user wrote it
 *   /etc/docker/certs.d/<domain>:<port>/sealant-registry-ca.crt   the cluster CA (the view's port too)
 *   <dataRoot>/registry/docker-hub/                      the view's tree, config.yml (registry hosts)
 *   <dataRoot>/run/registry-docker-hub.pid, .log
 */
import { posix } from "node:path";
import { shellQuote as q, type Connection, type ExecOptions } from "../../ssh";
import { underHostLock } from "../../ssh/host-lock";
import type { RegistrySetup, RegistryTls } from "./registry";

export const DOCKER_HUB = "docker.io";
export const DOCKER_DAEMON_JSON = "/etc/docker/daemon.json";
export const DOCKER_CERTS_DIR = "/etc/docker/certs.d";
const CA_NAME = "sealant-registry-ca.crt";
const DAEMON_LOCK = "docker-daemon-json";

/** What dockerd can and cannot take from the cluster's registry. */
export interface DockerMirrorPlan {
  /** What registry-mirrors names (`https://sea.hub:5001`); absent when dockerd gets no mirror. */
  mirror?: string;
  /** `host:port` of the cluster's registry and its docker.io view: trusted through certs.d (TLS) or insecure-registries (plain HTTP). */
  endpoints: string[];
  /** Source registries whose images dockerd pulls from the registry itself, never the cluster's. */
  upstreamOnly: string[];
  /** Said once per apply: what the hosts will not get from the cluster's registry, and why. */
  warnings: string[];
}

/** `viewPort`: where the docker.io view listens. @default setup.port + 1 */
export function dockerMirrorPlan(setup: Pick<RegistrySetup, "domain" | "port" | "domains" | "tls" | "username">, viewPort = setup.port + 1): DockerMirrorPlan {
  if (!Number.isInteger(viewPort) || viewPort < 1 || viewPort > 65535 || viewPort === setup.port) {
    throw new Error(`docker.io view port ${viewPort}: expected 1-65535, other than the registry's ${setup.port}`);
  }
  const scheme = setup.tls ? "https" : "http";
  const hub = setup.domains.includes(DOCKER_HUB);
  const upstreamOnly = setup.domains.filter((d) => d !== DOCKER_HUB);
  const warnings: string[] = [];
  if (upstreamOnly.length > 0) {
    warnings.push(
      `dockerd mirrors docker.io only: the image's images from ${upstreamOnly.join(", ")} are pulled by Docker hosts from those registries themselves, not from the cluster registry (a host that cannot reach them fails the pull); use a containerd image, or name them ${setup.domain}:${setup.port}/<registry>/<path>`,
    );
  }
  const auth = setup.username !== undefined;
  if (hub && auth) {
    warnings.push(
      `registry.username is set and dockerd sends no credentials to a mirror: Docker hosts pull the image's docker.io images from docker.io, not from the cluster registry`,
    );
  }
  const mirror = hub && !auth ? `${scheme}://${setup.domain}:${viewPort}` : undefined;
  return {
    ...(mirror ? { mirror } : {}),
    endpoints: [`${setup.domain}:${setup.port}`, ...(mirror ? [`${setup.domain}:${viewPort}`] : [])],
    upstreamOnly,
    warnings,
  };
}

/**
 * daemon.json with the plan's mirror first in registry-mirrors (the user's own mirrors kept
 * after it) and, for a plain-HTTP registry, its endpoints in insecure-registries; every other key
 * as it was. `previousMirror`: one this cluster wrote before (a changed port), taken out.
 */
export function mergeDaemonJson(existing: string | undefined, plan: DockerMirrorPlan, o: { tls: boolean; where: string; previousMirror?: string }): string {
  let conf: Record<string, unknown> = {};
  if (existing !== undefined && existing.trim() !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(existing);
    } catch (err) {
      // Position only: V8's message quotes the text around the fault.
      const at = /position (\d+)/.exec((err as Error).message)?.[1];
      throw new Error(`${o.where} is not valid JSON${at ? ` (at position ${at})` : ""}: fix it or remove it, then apply again`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`${o.where}: expected a JSON object`);
    conf = parsed as Record<string, unknown>;
  }
  const list = (key: string): string[] => {
    const v = conf[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new Error(`${o.where}: "${key}" must be a list of strings`);
    return v as string[];
  };
  const drop = new Set([plan.mirror, o.previousMirror].filter((x): x is string => x !== undefined).map((m) => m.replace(/\/$/, "")));
  const mirrors = [...(plan.mirror ? [plan.mirror] : []), ...list("registry-mirrors").filter((m) => !drop.has(m.replace(/\/$/, "")))];
  const out: Record<string, unknown> = { ...conf };
  if (mirrors.length > 0) out["registry-mirrors"] = mirrors;
  else delete out["registry-mirrors"];
  if (!o.tls) out["insecure-registries"] = [...new Set([...list("insecure-registries"), ...plan.endpoints])];
  return `${JSON.stringify(out, null, 2)}\n`;
}

export interface DockerClientOptions {
  signal?: AbortSignal;
  /** @default "/etc/docker/daemon.json" */
  daemonJson?: string;
  /** @default "/etc/docker/certs.d" */
  certsDir?: string;
  /** The mirror this cluster wrote before, to be replaced (see mergeDaemonJson). */
  previousMirror?: string;
}

/**
 * Whether an image's hosts run Docker: sealer's `containerRuntime.type` when the Clusterfile sets
 * it, else the image's own scripts — containerd.sh first, as the Kubernetes runtime runs them
 * (`scripts`: the file names under the image's `scripts/`).
 */
export function runsDocker(scripts: readonly string[], containerRuntimeType?: string): boolean {
  if (containerRuntimeType !== undefined && containerRuntimeType !== "") return containerRuntimeType.toLowerCase() === "docker";
  return !scripts.includes("containerd.sh") && scripts.includes("docker.sh");
}

/**
 * On a host whose runtime is Docker (see runsDocker; the caller decides, since /etc/docker also
 * holds docker-registry's config and a docker client can be installed without dockerd): the
 * cluster CA in certs.d for the registry and its docker.io view, and daemon.json merged (see
 * mergeDaemonJson), written only when it changes, through a temp file, under a host lock and
 * only if nobody changed it since it was read; dockerd, when it runs, is told to reload
 * (registry-mirrors and insecure-registries are reloadable). True when daemon.json changed.
 */
export async function configureDockerClient(
  conn: Connection,
  setup: RegistrySetup,
  tls: RegistryTls | undefined,
  o: DockerClientOptions = {},
): Promise<boolean> {
  const daemonJson = o.daemonJson ?? DOCKER_DAEMON_JSON;
  const certsDir = o.certsDir ?? DOCKER_CERTS_DIR;
  const run = (cmd: string, extra: ExecOptions = {}) => conn.run(cmd, { sudo: true, timeoutMs: 60_000, ...(o.signal ? { signal: o.signal } : {}), ...extra });
  if (setup.tls && !tls) throw new Error("registry TLS is on but no CA certificate was given: call prepareRegistryTls first");
  const plan = dockerMirrorPlan(setup);

  for (const endpoint of setup.tls ? plan.endpoints : []) {
    await writeUnderLock(`${certsDir}/${endpoint}/${CA_NAME}`, tls!.caCert, undefined, run);
  }
  for (let attempt = 0; ; attempt++) {
    const read = await run(`if [ -f ${q(daemonJson)} ]; then sha256sum < ${q(daemonJson)} | cut -c1-64; cat ${q(daemonJson)}; else echo none; fi`);
    const [sum, ...rest] = read.stdout.split("\n");
    const existing = sum === "none" ? undefined : rest.join("\n");
    const wanted = mergeDaemonJson(existing, plan, {
      tls: setup.tls,
      where: `${daemonJson} on ${conn.host}`,
      ...(o.previousMirror ? { previousMirror: o.previousMirror } : {}),
    });
    if (existing !== undefined && existing === wanted) return false;
    const outcome = await writeUnderLock(daemonJson, wanted, sum === "none" ? "none" : sum!, run);
    if (outcome === "written") break;
    if (attempt >= 4) throw new Error(`${daemonJson} on ${conn.host} kept changing while sealant merged its registry mirror into it`);
  }
  await run(
    "if command -v systemctl > /dev/null 2>&1 && systemctl is-active -q docker 2>/dev/null; then systemctl reload docker; elif p=$(pidof dockerd); then kill -HUP $p; fi; true",
  );
  return true;
}

/** Writes `path` through a temp file under the host lock; with `expect` (a sha256, or "none"), only if the file still is that. */
async function writeUnderLock(
  path: string,
  content: string,
  expect: string | undefined,
  run: (cmd: string, extra?: ExecOptions) => Promise<{ stdout: string }>,
): Promise<"written" | "changed-meanwhile"> {
  const f = q(path);
  const now = `if [ -f ${f} ]; then sha256sum < ${f} | cut -c1-64; else echo none; fi`;
  const script = [
    `set -e; mkdir -p ${q(posix.dirname(path))}`,
    expect !== undefined ? `[ "$(${now})" = ${q(expect)} ] || { echo changed-meanwhile; exit 0; }` : "",
    `t=$(mktemp ${q(`${path}.sealant-`)}XXXXXX); trap 'rm -f "$t"' EXIT`,
    `cat > "$t"; chmod 644 "$t"; mv -f "$t" ${f}; echo written`,
  ]
    .filter(Boolean)
    .join("\n");
  const r = await run(`sh -c ${q(underHostLock(DAEMON_LOCK, "Docker's registry configuration", script))}`, { stdin: content });
  return r.stdout.trim() === "changed-meanwhile" ? "changed-meanwhile" : "written";
}

/** Where a cluster's docker.io view lives on a registry host. */
export function dockerHubViewPaths(dataRoot: string) {
  if (!dataRoot.startsWith("/") || posix.normalize(dataRoot) === "/" || dataRoot.split("/").includes("..") || /[\n\r]/.test(dataRoot)) {
    throw new Error(`data root "${dataRoot}": expected an absolute path other than /`);
  }
  const root = dataRoot.replace(/\/+$/, "");
  const dir = `${root}/registry/docker-hub`;
  return {
    dir,
    config: `${dir}/config.yml`,
    pid: `${root}/run/registry-docker-hub.pid`,
    log: `${root}/run/registry-docker-hub.log`,
    certs: `${root}/registry/certs`,
  };
}

/**
 * On a registry host: serves the docker.io part of `<rootfs>/registry` as a registry of its own
 * on hostIp:viewPort (what dockerd's registry-mirrors can use), read-only, with the cluster
 * registry's certificate (written there by startRegistry). The tree is two symlinks through the
 * cluster's `rootfs` link, so an upgraded image is served after a restart. Waits until `/v2/`
 * answers. Does nothing (false) when the plan has no mirror.
 */
export async function startDockerHubView(
  conn: Connection,
  hostIp: string,
  rootfs: string,
  setup: RegistrySetup,
  o: { signal?: AbortSignal } = {},
): Promise<boolean> {
  const plan = dockerMirrorPlan(setup);
  if (!plan.mirror) return false;
  const port = Number(new URL(plan.mirror).port);
  const p = dockerHubViewPaths(setup.dataRoot);
  const run = (cmd: string, extra: ExecOptions = {}) => conn.run(cmd, { sudo: true, timeoutMs: 60_000, ...(o.signal ? { signal: o.signal } : {}), ...extra });
  const v2 = `${rootfs.replace(/\/+$/, "")}/registry/docker/registry/v2`;
  const addr = hostIp.includes(":") ? `[${hostIp}]:${port}` : `${hostIp}:${port}`;
  const s = JSON.stringify;
  const config = [
    "# Written by sealant: the docker.io images of the cluster's registry, for dockerd's registry-mirrors. Changes here are overwritten.",
    "version: 0.1",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${s(p.dir)}`,
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "    readonly:",
    "      enabled: true",
    "http:",
    `  addr: ${s(addr)}`,
    ...(setup.tls ? ["  tls:", `    certificate: ${s(`${p.certs}/registry.crt`)}`, `    key: ${s(`${p.certs}/registry.key`)}`] : []),
    "",
  ].join("\n");
  const url = `${setup.tls ? "https" : "http"}://${addr}/v2/`;
  const curl = `curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${setup.tls ? `--cacert ${q(`${p.certs}/ca.crt`)} ` : ""}${q(url)}`;
  const running = viewRunning(p);
  await run(
    [
      "set -e",
      `[ -d ${q(`${v2}/repositories/${DOCKER_HUB}`)} ] || { echo ${q(`${v2}/repositories/${DOCKER_HUB} does not exist: the image carries no docker.io images`)} >&2; exit 1; }`,
      `b=$(for c in ${q(`${rootfs}/bin/registry`)} ${q(`${rootfs}/bin/docker-registry`)}; do if [ -x "$c" ]; then echo "$c"; break; fi; done)`,
      `[ -n "$b" ] || b=$(command -v docker-registry || command -v registry) || { echo "no registry binary for the docker.io view" >&2; exit 1; }`,
      `mkdir -p ${q(`${p.dir}/docker/registry/v2`)} ${q(posix.dirname(p.pid))}`,
      `ln -sfn ${q(`${v2}/blobs`)} ${q(`${p.dir}/docker/registry/v2/blobs`)}`,
      `ln -sfn ${q(`${v2}/repositories/${DOCKER_HUB}`)} ${q(`${p.dir}/docker/registry/v2/repositories`)}`,
      // The certificate's checksum in the config: a renewed certificate restarts the view, which reads it only at start.
      `t=$(mktemp ${q(`${p.config}.sealant-`)}XXXXXX); { cat; if [ -f ${q(`${p.certs}/registry.crt`)} ]; then echo "# certificate sha256 $(sha256sum < ${q(`${p.certs}/registry.crt`)} | cut -c1-64)"; fi; } > "$t"; chmod 644 "$t"`,
      `if ${running} && cmp -s "$t" ${q(p.config)} && [ "$(${curl})" = 200 ]; then rm -f "$t"; exit 0; fi`,
      `mv -f "$t" ${q(p.config)}`,
      `if ${running}; then kill "$pid"; i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -9 "$pid" 2>/dev/null || true; fi`,
      `setsid -f sh -c 'echo $$ > "$1"; exec "$2" serve "$3"' sealant-registry-docker-hub ${q(p.pid)} "$b" ${q(p.config)} >> ${q(p.log)} 2>&1 < /dev/null`,
      "i=0",
      `while [ $i -lt 150 ]; do [ "$(${curl})" = 200 ] && exit 0; i=$((i+1)); sleep 0.1; done`,
      `echo ${q(`the docker.io view did not answer ${url} within 15 s; its log:`)} >&2; tail -n 20 ${q(p.log)} >&2; exit 1`,
    ].join("\n"),
    { stdin: config },
  );
  return true;
}

/** Stops the view and removes its files (the daemon.json entries stay until configureDockerClient runs without them). */
export async function stopDockerHubView(conn: Connection, dataRoot: string, signal?: AbortSignal): Promise<void> {
  const p = dockerHubViewPaths(dataRoot);
  await conn.run(`if ${viewRunning(p)}; then kill "$pid"; fi; rm -rf ${q(p.dir)} ${q(p.pid)} ${q(p.log)}; true`, {
    sudo: true,
    timeoutMs: 30_000,
    ...(signal ? { signal } : {}),
  });
}

/** A shell condition: the pid file names a live process serving the view's config (a reused pid is not ours); sets $pid. */
function viewRunning(p: ReturnType<typeof dockerHubViewPaths>): string {
  return `pid=$(cat ${q(p.pid)} 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\\0' ' ' < /proc/"$pid"/cmdline | grep -qF -- ${q(p.config)}`;
}

/**
 * Takes out what configureDockerClient wrote: this cluster's mirror and insecure-registries
 * entries from daemon.json (every other key and the user's own entries stay) and its CA files.
 */
export async function removeDockerClient(conn: Connection, setup: RegistrySetup, o: DockerClientOptions = {}): Promise<void> {
  const daemonJson = o.daemonJson ?? DOCKER_DAEMON_JSON;
  const certsDir = o.certsDir ?? DOCKER_CERTS_DIR;
  const run = (cmd: string, extra: ExecOptions = {}) => conn.run(cmd, { sudo: true, timeoutMs: 60_000, ...(o.signal ? { signal: o.signal } : {}), ...extra });
  const plan = dockerMirrorPlan({ ...setup, domains: [DOCKER_HUB], username: undefined });
  const ours = plan.endpoints.map((e) => `${certsDir}/${e}`);
  await run(
    sudoScript(
      ours.map((d) => `rm -f ${q(`${d}/${CA_NAME}`)}; rmdir ${q(d)} 2>/dev/null || true`),
      "Docker's registry configuration",
    ),
  );
  for (let attempt = 0; ; attempt++) {
    const read = await run(`if [ -f ${q(daemonJson)} ]; then sha256sum < ${q(daemonJson)} | cut -c1-64; cat ${q(daemonJson)}; else echo none; fi`);
    const [sum, ...rest] = read.stdout.split("\n");
    if (sum === "none") return;
    const existing = rest.join("\n");
    let before: unknown;
    try {
      before = JSON.parse(existing);
    } catch {
      return; // not JSON: nothing sealant wrote can be in it (configureDockerClient refuses such a file)
    }
    const conf = JSON.parse(
      mergeDaemonJson(
        existing,
        { endpoints: [], upstreamOnly: [], warnings: [] },
        { tls: true, where: `${daemonJson} on ${conn.host}`, previousMirror: plan.mirror! },
      ),
    ) as Record<string, unknown>;
    const insecure = ((conf["insecure-registries"] as string[] | undefined) ?? []).filter((e) => !plan.endpoints.includes(e));
    if (insecure.length > 0) conf["insecure-registries"] = insecure;
    else delete conf["insecure-registries"];
    if (JSON.stringify(conf) === JSON.stringify(before)) return; // nothing of ours: the user's file stays byte for byte
    const wanted = `${JSON.stringify(conf, null, 2)}\n`;
    if ((await writeUnderLock(daemonJson, wanted, sum!, run)) === "written") return;
    if (attempt >= 4) throw new Error(`${daemonJson} on ${conn.host} kept changing while sealant took its registry mirror out`);
  }
}

const sudoScript = (lines: string[], what: string) => `sh -c ${q(underHostLock(DAEMON_LOCK, what, lines.join("\n")))}`;

/** Whether the image on this host (its rootfs, distributed) runs Docker: see runsDocker. */
export async function hostRunsDocker(conn: Connection, rootfs: string, containerRuntimeType?: string, signal?: AbortSignal): Promise<boolean> {
  const r = await conn.run(`ls -1 ${q(`${rootfs.replace(/\/+$/, "")}/scripts`)} 2>/dev/null || true`, {
    sudo: true,
    timeoutMs: 30_000,
    ...(signal ? { signal } : {}),
  });
  return runsDocker(r.stdout.split("\n").filter(Boolean), containerRuntimeType);
}

/** sealer's `containerRuntime.type`, as the spec keeps it under `runtime` (see spec/sealer.ts). */
export function containerRuntimeTypeOf(runtime: unknown): string | undefined {
  const cr = runtime !== null && typeof runtime === "object" ? (runtime as Record<string, unknown>)["containerRuntime"] : undefined;
  const type = cr !== null && typeof cr === "object" ? (cr as Record<string, unknown>)["type"] : undefined;
  return typeof type === "string" ? type : undefined;
}

/** The mirrors step's part: dockerd configured when the image on this host runs Docker; returns what to warn about (nothing otherwise). */
export async function dockerMirrorsFor(
  conn: Connection,
  rootfs: string,
  setup: RegistrySetup,
  tls: RegistryTls | undefined,
  runtime: unknown,
  signal?: AbortSignal,
): Promise<string[]> {
  if (!(await hostRunsDocker(conn, rootfs, containerRuntimeTypeOf(runtime), signal))) return [];
  await configureDockerClient(conn, setup, tls, signal ? { signal } : {});
  return dockerMirrorPlan(setup).warnings;
}

/** The registry step's part: the docker.io view beside the cluster's registry when the image runs Docker. */
export async function dockerHubViewFor(
  conn: Connection,
  hostIp: string,
  rootfs: string,
  setup: RegistrySetup,
  runtime: unknown,
  signal?: AbortSignal,
): Promise<void> {
  if (await hostRunsDocker(conn, rootfs, containerRuntimeTypeOf(runtime), signal))
    await startDockerHubView(conn, hostIp, rootfs, setup, signal ? { signal } : {});
}

/** The cleanup step's part: the view stopped and dockerd's configuration taken back (a no-op on hosts that never had them). */
export async function removeDockerFor(conn: Connection, setup: RegistrySetup, signal?: AbortSignal): Promise<void> {
  await stopDockerHubView(conn, setup.dataRoot, signal);
  await removeDockerClient(conn, setup, signal ? { signal } : {});
}
