import { hasRole, isMaster } from "./roles";
import type { DesiredCluster, Plan, PlannedHost } from "./types";

/** The plan as people read it: the summary, then each phase with its steps. */
export function formatPlan(plan: Plan): string {
  const lines = [`Plan for cluster ${plan.cluster}:`, ...plan.summary.map((s) => `  ${s}`), ...(plan.warnings ?? []).map((w) => `  warning: ${w}`)];
  plan.phases.forEach((p, i) => {
    lines.push(`${i + 1}. ${p.title}${p.mode === "serial" && p.steps.length > 1 ? " (one host at a time)" : ""}`);
    for (const s of p.steps) lines.push(`     ${s.description}`);
  });
  return lines.join("\n");
}

/** `127.0.10.4, 127.0.10.5 (master)`, roles grouped so a 1,000-host change stays one line each. */
export function describeHosts(hosts: PlannedHost[]): string {
  const byRole = new Map<string, string[]>();
  for (const h of hosts) {
    const role = h.roles.join("+") || "no role";
    byRole.set(role, [...(byRole.get(role) ?? []), h.ip]);
  }
  return [...byRole].map(([role, ips]) => `${ipList(ips)} (${role})`).join("; ");
}

/** The summary's line for hosts without a role among `hosts` (see roles.ts hasRole), if any. */
export function rolelessNote(hosts: PlannedHost[]): string[] {
  const ips = hosts.filter((h) => !hasRole(h)).map((h) => h.ip);
  return ips.length > 0 ? [`set up ${ipList(ips)} without joining them: hosts with no role are prepared, never joined (as sealer does)`] : [];
}

const ipList = (ips: string[]) => (ips.length > 6 ? `${ips.slice(0, 5).join(", ")} and ${ips.length - 5} more` : ips.join(", "));

/** What a host's step of a rolling upgrade (`imageChanged`) or reconfiguration does, in the runtime's words when it has them. */
export function rollStepWords(desired: DesiredCluster, host: PlannedHost, imageChanged: boolean): string {
  const words = imageChanged ? desired.rollSteps?.upgrade : desired.rollSteps?.reconfigure;
  if (!words) return `upgrade ${host.ip}`;
  const first = desired.hosts.find((h) => isMaster(h));
  return (host === first ? words.firstMaster : isMaster(host) ? words.master : words.other).replaceAll("{ip}", host.ip);
}
