/**
 * The user's registries (`registry.registries`) on hosts whose runtime is Docker: what dockerd
 * can take, and what it cannot, said.
 *
 * - `registry-mirrors` in daemon.json serves docker.io only: docker.io's mirrors go there (after
 *   the cluster's own, see docker-mirrors.ts); other registries' mirrors cannot be given.
 * - `insecure-registries`: registries and mirror endpoints reached over plain HTTP or without
 *   verifying their certificate.
 * - `/etc/docker/certs.d/<host>/sealant-ca.crt`: each registry's or endpoint's CA (dockerd trusts
 *   every `*.crt` there).
 * - Logins: dockerd takes none from its configuration (only `docker login`, or the kubelet's
 *   image pull secrets), and sends none to a mirror: said.
 * - The proxy: a systemd drop-in for docker.service, as for containerd (user-registries.ts).
 *
 * What sealant added to daemon.json is recorded in `<dataRoot>/registry/docker-registries.json`,
 * so a later run (or removal) takes exactly that out and leaves the user's own entries.
 */
import { posix } from "node:path";
import { registryKey } from "../../image/credentials";
import { mirrorsOf, settingsOf, type RegistryConfig } from "../../image/registry-config";
import { shellQuote as q, type Connection, type ExecOptions } from "../../ssh";
import { underHostLock } from "../../ssh/host-lock";
import { checkDataRoot } from "./certs-d";

/** The lock docker-mirrors.ts takes for daemon.json: both edit it. */
const DAEMON_LOCK = "docker-daemon-json";
const CA_NAME = "sealant-ca.crt";

export interface DockerRegistriesPlan {
  /** docker.io's mirrors, for registry-mirrors. */
  mirrors: string[];
  /** host[:port]s for insecure-registries. */
  insecure: string[];
  /** host[:port] → CA (PEM) for /etc/docker/certs.d. */
  cas: Record<string, string>;
  warnings: string[];
}

/** What dockerd gets of the model, and what it cannot take. */
export function dockerRegistriesPlan(config: RegistryConfig): DockerRegistriesPlan {
  const plan: DockerRegistriesPlan = { mirrors: [], insecure: [], cas: {}, warnings: [] };
  const hosts = new Set<string>();
  for (const m of mirrorsOf(config, "docker.io")) {
    const plain = m.scheme === "http" || settingsOf(config, m.host).plainHttp === true;
    plan.mirrors.push(`${plain ? "http" : "https"}://${m.host}`);
    hosts.add(m.host);
  }
  const others = Object.keys(config.mirrors).filter((r) => r !== "*" && registryKey(r) !== "docker.io");
  if (others.length > 0)
    plan.warnings.push(
      `dockerd mirrors docker.io only: registry.registries mirrors of ${others.join(", ")} are not applied on Docker hosts, which pull those images from the registries themselves`,
    );
  for (const name of Object.keys(config.hosts)) if (name !== "*") hosts.add(name);
  for (const host of [...hosts].sort()) {
    const s = settingsOf(config, host);
    const plain = s.plainHttp === true || plan.mirrors.includes(`http://${host}`);
    if (plain || s.insecureSkipVerify) plan.insecure.push(host);
    else if (s.ca !== undefined) plan.cas[host] = s.ca.endsWith("\n") ? s.ca : `${s.ca}\n`;
  }
  const logins = Object.entries(config.hosts).filter(([n, s]) => n !== "*" && s.auth !== undefined);
  if (logins.length > 0)
    plan.warnings.push(
      `dockerd takes no registry login from its configuration (and sends none to a mirror): the logins for ${logins.map(([n]) => n).join(", ")} in registry.registries are not given to Docker hosts; use image pull secrets`,
    );
  if (config.hosts["*"]?.ca !== undefined || config.hosts["*"]?.plainHttp)
    plan.warnings.push('dockerd takes a CA or plain HTTP per registry only: configs["*"] tls/plain_http are not applied on Docker hosts');
  return plan;
}

interface Record_ {
  mirrors: string[];
  insecure: string[];
  cas: string[];
}

export interface DockerRegistriesOptions {
  signal?: AbortSignal;
  /** @default "/etc/docker/daemon.json" */
  daemonJson?: string;
  /** @default "/etc/docker/certs.d" */
  certsDir?: string;
}

/**
 * On a Docker host: daemon.json's registry-mirrors (docker.io's, after any already there) and
 * insecure-registries with the model's entries, what an earlier run added and the model dropped
 * taken out, the CAs in certs.d; dockerd told to reload when daemon.json changed. Returns the
 * plan's warnings. An empty model takes everything out.
 */
export async function configureDockerRegistries(
  conn: Connection,
  dataRoot: string,
  config: RegistryConfig,
  o: DockerRegistriesOptions = {},
): Promise<string[]> {
  checkDataRoot(dataRoot);
  const plan = dockerRegistriesPlan(config);
  const daemonJson = o.daemonJson ?? "/etc/docker/daemon.json";
  const certsDir = o.certsDir ?? "/etc/docker/certs.d";
  const record = `${dataRoot.replace(/\/+$/, "")}/registry/docker-registries.json`;
  const run = (cmd: string, extra: ExecOptions = {}) => conn.run(cmd, { sudo: true, timeoutMs: 60_000, ...(o.signal ? { signal: o.signal } : {}), ...extra });
  const read = await run(`cat ${q(record)} 2>/dev/null || echo '{}'; echo; echo '#'; cat ${q(daemonJson)} 2>/dev/null || true`);
  const [recordText, daemonText] = read.stdout.split("\n#\n") as [string, string | undefined];
  const previous = parseRecord(recordText);
  const nothing = (r: { mirrors: string[]; insecure: string[] }, cas: number) => r.mirrors.length + r.insecure.length + cas === 0;
  if (nothing(plan, Object.keys(plan.cas).length) && nothing(previous, previous.cas.length)) return plan.warnings;
  const conf = parseDaemonJson(daemonText ?? "", `${daemonJson} on ${conn.host}`);
  const merged = { ...conf };
  const list = (key: string, prev: string[], add: string[]) => {
    const had = Array.isArray(conf[key]) ? (conf[key] as unknown[]).filter((v): v is string => typeof v === "string") : [];
    const kept = had.filter((v) => !prev.includes(v) || add.includes(v));
    const out = [...kept, ...add.filter((v) => !kept.includes(v))];
    if (out.length > 0) merged[key] = out;
    else delete merged[key];
  };
  list("registry-mirrors", previous.mirrors, plan.mirrors);
  list("insecure-registries", previous.insecure, plan.insecure);
  const wanted = `${JSON.stringify(merged, null, 2)}\n`;
  const changed = JSON.stringify(merged) !== JSON.stringify(conf);

  const caHosts = Object.keys(plan.cas);
  const script = [
    "set -e",
    ...previous.cas
      .filter((h) => !caHosts.includes(h))
      .map((h) => `rm -f ${q(`${certsDir}/${h}/${CA_NAME}`)}; rmdir ${q(`${certsDir}/${h}`)} 2>/dev/null || true`),
    ...caHosts.map((h) => `mkdir -p ${q(`${certsDir}/${h}`)}`),
    ...(changed
      ? [
          `mkdir -p ${q(posix.dirname(daemonJson))}`,
          `t=$(mktemp ${q(`${daemonJson}.sealant-`)}XXXXXX)`,
          `cat > "$t"`,
          `chmod 644 "$t"`,
          `mv -f "$t" ${q(daemonJson)}`,
        ]
      : []),
  ].join("\n");
  await run(`sh -c ${q(underHostLock(DAEMON_LOCK, "Docker's registry configuration", script))}`, { stdin: changed ? wanted : "" });
  for (const h of caHosts) await run(`umask 022; cat > ${q(`${certsDir}/${h}/${CA_NAME}`)}`, { stdin: plan.cas[h]! });
  const next: Record_ = { mirrors: plan.mirrors, insecure: plan.insecure, cas: caHosts };
  if (nothing(next, next.cas.length)) await run(`rm -f ${q(record)}`);
  else await run(`mkdir -p ${q(posix.dirname(record))} && cat > ${q(record)}`, { stdin: JSON.stringify(next) });
  if (changed)
    await run(
      "if command -v systemctl > /dev/null 2>&1 && systemctl is-active -q docker 2>/dev/null; then systemctl reload docker; elif p=$(pidof dockerd); then kill -HUP $p; fi; true",
    );
  return plan.warnings;
}

function parseRecord(text: string): Record_ {
  try {
    const r = JSON.parse(text.trim() || "{}") as Partial<Record_>;
    return { mirrors: r.mirrors ?? [], insecure: r.insecure ?? [], cas: r.cas ?? [] };
  } catch {
    return { mirrors: [], insecure: [], cas: [] };
  }
}

function parseDaemonJson(text: string, where: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${where} is not valid JSON: fix it or remove it, then apply again`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`${where}: expected a JSON object`);
  return parsed as Record<string, unknown>;
}
