/**
 * The user's registries (`registry.registries`, the registries-file model builds use too) on one
 * host's containerd:
 *
 *   <certsDir>/<registry>/hosts.toml    mirrors, CA, skip_verify, plain HTTP (registry-hosts.ts) for every
 *                                       registry no other part of the cluster writes; a registry the
 *                                       cluster also serves gets the user's entries in the cluster's own
 *                                       file (after the cluster's). Marked `# sealant-registries: <dataRoot>`.
 *   /etc/containerd/config.toml         the logins as CRI registry auth (containerd-login.ts, part "registries")
 *   <systemd>/containerd.service.d/sealant-proxy.conf   HTTP(S)_PROXY / NO_PROXY: containerd has one proxy for
 *                                       every registry; 0600 (a proxy URL may hold a login)
 *
 * A hosts.toml that is not sealant's is left alone (said as a warning). Secrets reach the host on
 * stdin only.
 */
import { registryKey } from "../../image/credentials";
import { proxyLabel } from "../../image/registry/proxy";
import { settingsOf, type RegistryConfig } from "../../image/registry-config";
import { shellQuote as q, type Connection, type ExecOptions } from "../../ssh";
import {
  checkDataRoot,
  DEFAULT_CERTS_DIR,
  dirsMarkedBy,
  marker,
  pullThroughMarker,
  registriesMarker,
  removeDirsMarkedBy,
  writeIfChanged,
  writeUserCas,
} from "./certs-d";
import { hostRegistryConfig, type RegistriesValue } from "../spec/registries";
import { setRegistriesLogins, type EndpointLogin } from "./containerd-login";
import { configureDockerRegistries } from "./docker-registries";
import { userDirs, userEntries } from "./registry-hosts";

export const PROXY_DROP_IN = "/etc/systemd/system/containerd.service.d/sealant-proxy.conf";
/** The same for dockerd, on hosts whose runtime is Docker. */
export const DOCKER_PROXY_DROP_IN = "/etc/systemd/system/docker.service.d/sealant-proxy.conf";

/** The user's registries as the hosts get them. */
export interface HostRegistries {
  config: RegistryConfig;
  /** Never proxied, besides loopback and the "direct" registries: the cluster registry's domain and servers, the hosts. */
  noProxy: string[];
}

export interface UserRegistryOptions {
  certsDir?: string;
  signal?: AbortSignal;
  /** @default PROXY_DROP_IN */
  proxyDropIn?: string;
  /** The service the drop-in is for. @default "containerd" */
  service?: "containerd" | "docker";
}

const opts = (signal?: AbortSignal, extra: ExecOptions = {}): ExecOptions => ({ sudo: true, ...(signal ? { signal } : {}), ...extra });

/**
 * On one host: the hosts.toml files of the registries nobody else writes (stale ones of this
 * cluster removed), the logins, the proxy. Run after the cluster's own writers (they put the
 * user's entries into the files they own). Returns warnings: what containerd cannot take.
 */
export async function configureUserRegistries(conn: Connection, dataRoot: string, reg: HostRegistries, o: UserRegistryOptions = {}): Promise<string[]> {
  checkDataRoot(dataRoot);
  const certsDir = o.certsDir ?? DEFAULT_CERTS_DIR;
  const mine = registriesMarker(dataRoot);
  const claimed = new Set([marker(dataRoot), pullThroughMarker(dataRoot)]);
  const warnings: string[] = [];
  const wanted = userDirs(reg.config);
  const firstLines = await firstLinesOf(conn, certsDir, wanted, o.signal);
  const written = new Set<string>();
  for (const dir of wanted) {
    const path = `${certsDir}/${dir}`;
    const first = firstLines.get(dir);
    if (first !== undefined && claimed.has(first)) continue; // the cluster's writer holds the user's entries
    if (first !== undefined && first !== mine) {
      warnings.push(`${path}/hosts.toml is not sealant's: left as it is, so registry.registries for ${dir} is not applied on this host`);
      continue;
    }
    const e = userEntries(reg.config, dir, path);
    warnings.push(...e.warnings);
    await writeUserCas(conn, path, e.cas, o.signal);
    const text = [
      mine,
      `# How containerd reaches ${dir}, from registry.registries. Written by sealant; changes are overwritten.`,
      ...e.server,
      ...e.hosts,
    ].join("\n");
    await writeIfChanged(conn, `${path}/hosts.toml`, `${text}\n`, 0o644, o.signal);
    written.add(path);
  }
  const stale = (await dirsMarkedBy(conn, certsDir, mine, o.signal)).filter((d) => !written.has(d));
  await removeDirsMarkedBy(conn, stale, mine, o.signal);

  const { logins, skipped } = loginsOf(reg.config);
  warnings.push(...skipped);
  await setRegistriesLogins(conn, dataRoot, logins, o.signal);
  warnings.push(...(await setProxy(conn, dataRoot, reg, o)));
  return warnings;
}

/** Removes what configureUserRegistries wrote (the logins go with the cluster's block, see removeContainerdLogin). */
export async function removeUserRegistries(conn: Connection, dataRoot: string, o: UserRegistryOptions = {}): Promise<void> {
  checkDataRoot(dataRoot);
  const mine = registriesMarker(dataRoot);
  await removeDirsMarkedBy(conn, await dirsMarkedBy(conn, o.certsDir ?? DEFAULT_CERTS_DIR, mine, o.signal), mine, o.signal);
  const none: HostRegistries = { config: { mirrors: {}, hosts: {} }, noProxy: [] };
  await setProxy(conn, dataRoot, none, o);
  await setProxy(conn, dataRoot, none, { ...o, proxyDropIn: DOCKER_PROXY_DROP_IN, service: "docker" });
  await configureDockerRegistries(conn, dataRoot, none.config, o.signal ? { signal: o.signal } : {});
}

/** On a host whose runtime is Docker: what dockerd takes of the user's registries (docker-registries.ts), and the proxy for docker.service. */
export async function configureDockerUserRegistries(conn: Connection, dataRoot: string, reg: HostRegistries, signal?: AbortSignal): Promise<string[]> {
  const warnings = await configureDockerRegistries(conn, dataRoot, reg.config, signal ? { signal } : {});
  const proxy = await setProxy(conn, dataRoot, reg, { proxyDropIn: DOCKER_PROXY_DROP_IN, service: "docker", ...(signal ? { signal } : {}) });
  return [...warnings, ...proxy.map((w) => w.replace(/^containerd/, "dockerd"))];
}

/** CRI registry auth per endpoint host, and what to warn about: a token cannot be one (containerd's CRI takes a login or an identity token only), a login over plain HTTP is sent in clear. */
export function loginsOf(config: RegistryConfig): { logins: EndpointLogin[]; skipped: string[] } {
  const logins: EndpointLogin[] = [];
  const skipped: string[] = [];
  for (const [name, s] of Object.entries(config.hosts)) {
    if (s.auth === undefined || name === "*") continue;
    if (s.auth.token !== undefined) {
      skipped.push(
        `registry.registries configs["${name}"].auth.token: containerd's CRI takes a username and password, not a registry token: the hosts pull from ${name} without it`,
      );
      continue;
    }
    const plain =
      settingsOf(config, name).plainHttp === true ||
      Object.values(config.mirrors).some((ms) => ms.some((m) => m.host === registryKey(name) && m.scheme === "http"));
    if (plain)
      skipped.push(
        `registry.registries configs["${name}"]: the hosts reach ${name} over plain HTTP, so containerd sends its login there unencrypted; give it TLS (a CA) if the network is not trusted`,
      );
    // containerd sends Docker Hub's requests to registry-1.docker.io, and looks the login up by that host.
    const hosts = registryKey(name) === "docker.io" ? ["docker.io", "registry-1.docker.io"] : [name];
    for (const endpoint of hosts) logins.push({ endpoint, username: s.auth.username, password: s.auth.password });
  }
  return { logins, skipped };
}

/** containerd's one proxy (see hostProxyProblem in the spec): the URL and who named it, or undefined. */
export function proxyOf(config: RegistryConfig): { url: URL; named: string[] } | undefined {
  const named = Object.entries(config.hosts).filter(([, s]) => s.proxy !== undefined && s.proxy !== "direct");
  if (named.length === 0) return undefined;
  const urls = new Set(named.map(([, s]) => (s.proxy as URL).href));
  if (urls.size > 1) {
    const [a, b] = named.filter(([, s], i) => i === 0 || (s.proxy as URL).href !== (named[0]![1].proxy as URL).href);
    throw new Error(
      `registry.registries configs["${b![0]}"].proxy: containerd on the hosts reaches every registry through one proxy, and configs["${a![0]}"].proxy already names ${proxyLabel(a![1].proxy as URL)}`,
    );
  }
  return { url: named[0]![1].proxy as URL, named: named.map(([n]) => n) };
}

/** The drop-in's text, or undefined without a proxy. `%` doubled: systemd reads it as a specifier. */
export function proxyDropIn(dataRoot: string, reg: HostRegistries): { text: string; warning?: string } | undefined {
  const proxy = proxyOf(reg.config);
  if (!proxy) return undefined;
  const direct = Object.entries(reg.config.hosts)
    .filter(([n, s]) => s.proxy === "direct" && n !== "*")
    .map(([n]) => n);
  const noProxy = [...new Set(["localhost", "127.0.0.1", "::1", ...reg.noProxy, ...direct])].join(",");
  const url = proxy.url.href.replace(/\/$/, "");
  const env = (k: string, v: string) => `Environment=${JSON.stringify(`${k}=${v}`.replace(/%/g, "%%"))}`;
  const text = [
    registriesMarker(dataRoot),
    "# containerd's proxy for its registries (registry.registries). Written by sealant; changes are overwritten.",
    "[Service]",
    env("HTTP_PROXY", url),
    env("HTTPS_PROXY", url),
    env("NO_PROXY", noProxy),
    "",
  ].join("\n");
  const everyRegistry = proxy.named.includes("*");
  return {
    text,
    ...(everyRegistry
      ? {}
      : {
          warning: `containerd takes one proxy for every registry: ${proxyLabel(proxy.url)} (configs["${proxy.named.join('"], configs["')}"].proxy) is used for every registry the hosts pull from but ${noProxy}`,
        }),
  };
}

/** Writes (or removes) this cluster's drop-in; systemd reloads and containerd restarts only when it changed and systemd runs them. */
async function setProxy(conn: Connection, dataRoot: string, reg: HostRegistries, o: UserRegistryOptions): Promise<string[]> {
  const file = o.proxyDropIn ?? PROXY_DROP_IN;
  const wanted = proxyDropIn(dataRoot, reg);
  const mine = registriesMarker(dataRoot);
  const first = (await conn.run(`head -n 1 ${q(file)} 2>/dev/null || true`, opts(o.signal))).stdout.trim();
  if (first !== "" && first !== mine) {
    if (!wanted) return [];
    throw new Error(
      `${file} on ${conn.host} was not written by this cluster (${first}): ${o.service ?? "containerd"} takes one proxy; remove that file or this cluster's proxy`,
    );
  }
  let changed = false;
  if (wanted) changed = await writeIfChanged(conn, file, wanted.text, 0o600, o.signal);
  else if (first === mine) {
    await conn.run(`rm -f ${q(file)}`, opts(o.signal));
    changed = true;
  }
  if (changed) {
    await conn.run(
      `if command -v systemctl > /dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl daemon-reload; if systemctl is-active -q ${o.service ?? "containerd"}; then systemctl restart ${o.service ?? "containerd"}; fi; fi`,
      opts(o.signal),
    );
  }
  return wanted?.warning ? [wanted.warning] : [];
}

async function firstLinesOf(conn: Connection, certsDir: string, dirs: string[], signal?: AbortSignal): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (dirs.length === 0) return out;
  const r = await conn.run(
    `for d in ${dirs.map(q).join(" ")}; do f=${q(certsDir)}/"$d"/hosts.toml; if [ -f "$f" ]; then printf '%s\\t' "$d"; head -n 1 "$f"; echo; fi; done`,
    opts(signal),
  );
  for (const line of r.stdout.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return out;
}

/**
 * The user's registries of a spec as every host gets them; NO_PROXY: the cluster's registry
 * (domain and servers) or the external one, and the hosts.
 */
export async function hostRegistriesOf(
  registries: RegistriesValue | undefined,
  hostIps: readonly string[],
  cluster: { domain: string; port: number; servers: readonly string[] } | { endpoint: string } | undefined,
): Promise<HostRegistries> {
  const near =
    cluster === undefined ? [] : "endpoint" in cluster ? [cluster.endpoint, cluster.endpoint.replace(/:\d+$/, "")] : [cluster.domain, ...cluster.servers];
  return { config: await hostRegistryConfig(registries), noProxy: [...new Set([...near, ...hostIps])] };
}
