import { loadAll } from "js-yaml";
import type { PlannedHost } from "../../plan/types";
import type { RuntimeContext, RuntimeHost } from "../types";
import { DEFAULT_VIP, kubeadmDocProblems, type KubeadmInputs, type KubeNode } from "./kubeadm-config";
import { parseKubeVersion } from "./version";
import { isMaster } from "../../plan/roles";
import { checkExpandedSize } from "../../../util/yaml-bounds";
import { cidrProblem, hostnameProblem, subjectAltNameProblem } from "../../spec/validators";
import { kubeadmNetwork } from "./network";
import { certificateSettingsProblems } from "./certs-settings";

/** What the kubernetes runtime reads from the spec's `runtime` settings and the image. */
/** Seconds a drain may take before the step fails. @default 300 (spec: runtime.drainTimeout) */
export const DEFAULT_DRAIN_TIMEOUT_S = 300;

/** The image's Kubernetes version, from its runtime label: checked (it lands in commands), with its leading "v". */
export function versionOf(ctx: RuntimeContext): string {
  const v = ctx.runtimeVersion;
  if (!v)
    throw new Error(
      "the image declares no Kubernetes version: label it cluster.alpha.sealer.io/cluster-runtime-version=vX.Y.Z (or io.sealant.runtime.version)",
    );
  return parseKubeVersion(v, "the image's Kubernetes version").text;
}

function docsOf(text: string | undefined, where: string): Record<string, unknown>[] {
  if (text === undefined) return [];
  let parsed: unknown[];
  try {
    parsed = loadAll(text);
  } catch (err) {
    throw new Error(`${where} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  checkExpandedSize(parsed, where);
  const docs = parsed.filter((d): d is Record<string, unknown> => d !== null && typeof d === "object" && !Array.isArray(d));
  const problems = kubeadmDocProblems(docs, where);
  if (problems.length > 0) throw new Error(problems.join("\n"));
  return docs;
}

/** What the kubeadm configuration is generated from. */
export function kubeadmInputs(ctx: RuntimeContext, known: RuntimeHost[] = []): KubeadmInputs {
  const settings = ctx.settings ?? {};
  // The hosts' own labels and taints where the caller has them (the host a command is for).
  const nodes = (hosts: PlannedHost[]): KubeNode[] =>
    hosts.map((h) => {
      const k = known.find((x) => x.ip === h.ip);
      return { ip: h.ip, roles: h.roles, labels: k?.labels ?? {}, taints: k?.taints ?? [] };
    });
  const overrides = settings["kubeadm"];
  return {
    clusterName: ctx.cluster,
    version: parseKubeVersion(versionOf(ctx), "the image's Kubernetes version"),
    masters: nodes(ctx.hosts.filter(isMaster)),
    ...(typeof settings["vip"] === "string" ? { vip: settings["vip"] } : {}),
    ...(Array.isArray(settings["certSANs"]) ? { extraSANs: settings["certSANs"] as string[] } : {}),
    image: docsOf(ctx.imageFiles?.get("etc/kubeadm.yml"), "the image's etc/kubeadm.yml"),
    overrides: Array.isArray(overrides) ? (overrides as Record<string, unknown>[]) : [],
  };
}

export function firstMasterOf(ctx: RuntimeContext): PlannedHost {
  const m = ctx.hosts.find(isMaster);
  if (!m) throw new Error("a Kubernetes cluster needs a master");
  return m;
}

export function vipOf(ctx: RuntimeContext): string {
  return typeof ctx.settings?.["vip"] === "string" ? (ctx.settings["vip"] as string) : DEFAULT_VIP;
}

export function drainTimeout(ctx: RuntimeContext): number {
  const t = ctx.settings?.["drainTimeout"];
  return typeof t === "number" && t > 0 ? t : DEFAULT_DRAIN_TIMEOUT_S;
}

const SETTINGS = ["kubeadm", "drainTimeout", "vip", "certSANs", "certificates"] as const;

/** The spec's `runtime` settings this runtime reads, checked before anything changes. */
export function settingsProblems(settings: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const k of Object.keys(settings)) {
    if (!(SETTINGS as readonly string[]).includes(k)) problems.push(`runtime.${k}: not a setting of the kubernetes runtime (it reads ${SETTINGS.join(", ")})`);
  }
  const { kubeadm, drainTimeout, vip, certSANs } = settings;
  if (kubeadm !== undefined) {
    if (!Array.isArray(kubeadm) || kubeadm.some((d) => d === null || typeof d !== "object" || Array.isArray(d)))
      problems.push("runtime.kubeadm: must be a list of kubeadm documents (mappings with apiVersion and kind)");
    else problems.push(...kubeadmDocProblems(kubeadm as Record<string, unknown>[], "runtime.kubeadm"), ...networkProblems(kubeadm));
  }
  if (drainTimeout !== undefined && !(typeof drainTimeout === "number" && Number.isInteger(drainTimeout) && drainTimeout > 0)) {
    problems.push(`runtime.drainTimeout: ${JSON.stringify(drainTimeout)} is not a number of seconds (a whole number above 0, e.g. 300)`);
  }
  if (vip !== undefined && !(typeof vip === "string" && /^(\d{1,3})(\.\d{1,3}){3}$/.test(vip) && vip.split(".").every((o) => Number(o) <= 255))) {
    problems.push(`runtime.vip: ${JSON.stringify(vip)} is not an IPv4 address (the workers' virtual IP for the API, e.g. ${DEFAULT_VIP})`);
  }
  if (settings["certificates"] !== undefined) problems.push(...certificateSettingsProblems(settings["certificates"]));
  if (certSANs !== undefined && !(Array.isArray(certSANs) && certSANs.every((s) => typeof s === "string" && s !== "")))
    problems.push("runtime.certSANs: must be a list of host names or IPs");
  else if (certSANs !== undefined)
    (certSANs as string[]).forEach((san, i) => {
      const problem = subjectAltNameProblem(san);
      if (problem !== undefined) problems.push(`runtime.certSANs[${i}]: ${problem}`);
    });
  return problems;
}

/** The cluster's ranges and DNS domain as the kubeadm documents set them: what kubeadm would refuse only on the first master. */
function networkProblems(kubeadmDocs: unknown): string[] {
  const net = kubeadmNetwork(kubeadmDocs);
  const problems: string[] = [];
  for (const key of ["podSubnet", "serviceSubnet"] as const) {
    const v = net[key];
    if (v === undefined) continue;
    // Dual stack: one IPv4 and one IPv6 range, comma-separated.
    const bad =
      typeof v !== "string"
        ? `${JSON.stringify(v)} is not a string`
        : v
            .split(",")
            .map((r) => cidrProblem(r.trim()))
            .find(Boolean);
    if (bad !== undefined) problems.push(`runtime.kubeadm: ClusterConfiguration networking.${key}: ${bad}`);
  }
  const dns = net.dnsDomain;
  const badDns = dns === undefined ? undefined : typeof dns !== "string" ? `${JSON.stringify(dns)} is not a string` : hostnameProblem(dns);
  if (badDns !== undefined) problems.push(`runtime.kubeadm: ClusterConfiguration networking.dnsDomain: ${badDns}`);
  return problems;
}
