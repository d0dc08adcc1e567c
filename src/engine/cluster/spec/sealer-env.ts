/**
 * The variables sealer itself gives every host's env (templates rendered with it, scripts and
 * plugins run with it), with sealer's names and values (pkg/clusterfile/decoder.go
 * checkAndFillCluster, pkg/infradriver/ssh_infradriver.go, common/common.go):
 *
 *   RegistryDomain, RegistryPort, RegistryURL     the registry the hosts pull from: the cluster's
 *                                                 own, or with registry.external the external one
 *   LocalRegistryDomain, ...Port, ...URL          the cluster's own registry (absent with external)
 *   ExternalRegistryDomain, ...Port, ...URL       registry.external (absent without)
 *   KubeSvcIP, DNSSvcIP                           the 1st and 10th address of the first SvcCIDR range
 *   ContainerRuntime                              containerRuntime.type, when the Clusterfile sets it
 *   HostIPFamily                                  6, when the hosts are IPv6
 *   HostIP                                        the host's own IP, unless its env sets HostIP
 *
 * sealer drops a Clusterfile's own `spec.env` entries of the derived names and appends its own, so
 * they override the cluster env; a host group's env still overrides them, as it overrides all.
 * An external registry without a port gives `ExternalRegistryPort=0` and `RegistryPort=` (empty),
 * and URLs of the domain alone — sealer formats them so.
 */
import { isIP } from "node:net";
import type { Env } from "./env";
import type { ClusterSpec } from "./schema";

/** The cluster-wide part (everything but HostIP), from the spec. */
export function sealerClusterEnv(spec: Pick<ClusterSpec, "registry" | "env" | "runtime" | "hosts">): Env {
  const out: Env = {};
  const ext = spec.registry.external;
  const url = (domain: string, port: number | undefined) =>
    port === undefined || port === 0 ? domain : `${domain.includes(":") ? `[${domain}]` : domain}:${port}`;
  let chosen: { domain: string; port: number | undefined };
  if (ext) {
    chosen = { domain: ext.domain, port: ext.port };
    Object.assign(out, { ExternalRegistryDomain: ext.domain, ExternalRegistryPort: String(ext.port ?? 0), ExternalRegistryURL: url(ext.domain, ext.port) });
  } else {
    chosen = { domain: spec.registry.domain, port: spec.registry.port };
    Object.assign(out, {
      LocalRegistryDomain: spec.registry.domain,
      LocalRegistryPort: String(spec.registry.port),
      LocalRegistryURL: url(spec.registry.domain, spec.registry.port),
    });
  }
  Object.assign(out, {
    RegistryDomain: chosen.domain,
    RegistryPort: chosen.port === undefined || chosen.port === 0 ? "" : String(chosen.port),
    RegistryURL: url(chosen.domain, chosen.port),
  });
  const svc = serviceIps(spec.env["SvcCIDR"]);
  if (svc) Object.assign(out, svc);
  const runtimeType = containerRuntimeType(spec.runtime);
  if (runtimeType) out["ContainerRuntime"] = runtimeType;
  const firstIp = spec.hosts[0]?.ips[0];
  if (firstIp !== undefined && isIP(firstIp) === 6) out["HostIPFamily"] = "6";
  return out;
}

/** KubeSvcIP and DNSSvcIP: the 1st and 10th address of the first comma-separated range (sealer's GetIndexIP), if it is one. */
function serviceIps(svcCidr: string | undefined): { KubeSvcIP: string; DNSSvcIP: string } | undefined {
  if (!svcCidr) return undefined;
  const [addr, bitsText] = (svcCidr.split(",")[0] ?? "").trim().split("/");
  const family = isIP(addr ?? "");
  if (family === 0 || bitsText === undefined || !/^\d{1,3}$/.test(bitsText)) return undefined;
  const width = family === 4 ? 32 : 128;
  const bits = Number(bitsText);
  if (bits > width || 1n << BigInt(width - bits) < 11n) return undefined;
  const base = (toBig(addr!, family) >> BigInt(width - bits)) << BigInt(width - bits);
  return { KubeSvcIP: fromBig(base + 1n, family), DNSSvcIP: fromBig(base + 10n, family) };
}

function toBig(ip: string, family: number): bigint {
  if (family === 4) return ip.split(".").reduce((n, o) => (n << 8n) + BigInt(Number(o)), 0n);
  const [head = "", tail = ""] = ip.includes("::") ? ip.split("::") : [ip, ""];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16)), 0n);
}

function fromBig(n: bigint, family: number): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join(".");
  const groups = Array.from({ length: 8 }, (_, i) => ((n >> BigInt((7 - i) * 16)) & 0xffffn).toString(16));
  // The shortest form (RFC 5952): the longest run of two or more zero groups becomes "::".
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(":");
  return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.len).join(":")}`;
}

function containerRuntimeType(runtime: unknown): string | undefined {
  const cr = runtime !== null && typeof runtime === "object" ? (runtime as Record<string, unknown>)["containerRuntime"] : undefined;
  const type = cr !== null && typeof cr === "object" ? (cr as Record<string, unknown>)["type"] : undefined;
  return typeof type === "string" && type !== "" ? type : undefined;
}
