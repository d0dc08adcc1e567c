/**
 * The control-plane certificates' part of a plan: read from the masters before planning
 * (CurrentCluster.certificates), they decide two kinds of step on a master —
 * - its API server certificate made again when its SANs are not the ones the spec wants (a SAN
 *   added to or removed from the spec, a master added or removed: every master's IP is in it);
 * - its certificates renewed when one of them has less than the threshold left (CAs are
 *   reported but not counted: kubeadm's renewal keeps them). A master this plan upgrades is
 *   left out: kubeadm's upgrade renews its certificates anyway.
 * Masters one at a time (each restarts its control plane), SANs before renewal (a renewal keeps
 * a certificate's SANs).
 */
import { createHash } from "node:crypto";
import { APISERVER_SANS, CERTIFICATE_RENEWAL, UPGRADE } from "./kinds";
import { isMaster } from "./roles";
import type { CurrentCluster, DesiredCluster, MasterCertificates, Plan, PlanPhase, PlanStep } from "./types";

/** `plan` with the certificate steps `current`'s observed certificates call for (the same plan when there are none). */
export function withCertificates(plan: Plan, desired: DesiredCluster, current: CurrentCluster | undefined): Plan {
  const observed = current?.certificates;
  if (!observed) return plan;
  const kept = new Set(desired.hosts.filter(isMaster).map((h) => h.ip));
  const upgraded = new Set(plan.phases.flatMap((p) => p.steps.filter((s) => s.kind === UPGRADE).map((s) => s.host)));
  const done = (ip: string, id: string) => (current.hosts.find((h) => h.ip === ip)?.done ?? []).includes(id);
  const now = Date.parse(observed.observedAt);
  const sans: PlanStep[] = [];
  const renewals: PlanStep[] = [];
  for (const m of observed.masters) {
    if (!kept.has(m.ip)) continue;
    // No API server certificate read (none on the host): nothing to compare.
    const change = m.apiServerSANs.length > 0 ? sanChange(m) : undefined;
    if (change) {
      const id = `${APISERVER_SANS}@${shortHash([...m.wantedSANs].sort().join(","))}`;
      if (!done(m.ip, id)) sans.push({ id, kind: APISERVER_SANS, host: m.ip, description: `make ${m.ip}'s API server certificate again: ${change}` });
    }
    const due = dueCertificates(m, now, observed.renewBeforeSeconds);
    if (due.length > 0 && !upgraded.has(m.ip)) {
      // Versioned by what was read: the next renewal (a year on) is a new step, not one already done.
      const id = `${CERTIFICATE_RENEWAL}@${shortHash(m.certificates.map((c) => `${c.name}=${c.notAfter}`).join(","))}`;
      const list = due.map((c) => `${c.name} expires ${c.notAfter.slice(0, 10)}`).join(", ");
      if (!done(m.ip, id))
        renewals.push({ id, kind: CERTIFICATE_RENEWAL, host: m.ip, description: `renew the control-plane certificates on ${m.ip} (${list})` });
    }
  }
  const phases: PlanPhase[] = [];
  const summary: string[] = [];
  if (sans.length > 0) {
    phases.push({ name: APISERVER_SANS, title: "Make the API server certificates again for their SANs", mode: "serial", steps: sans });
    summary.push(`update the API server certificate's SANs on ${sans.map((s) => s.host).join(", ")}`);
  }
  if (renewals.length > 0) {
    const days = Math.round(observed.renewBeforeSeconds / 86400);
    phases.push({ name: CERTIFICATE_RENEWAL, title: "Renew control-plane certificates", mode: "serial", steps: renewals });
    summary.push(`renew the control-plane certificates on ${renewals.map((s) => s.host).join(", ")} (some expire within ${days} days)`);
  }
  if (phases.length === 0) return plan;
  const unchanged = plan.phases.length === 0;
  return { ...plan, phases: [...plan.phases, ...phases], summary: [...(unchanged ? [] : plan.summary), ...summary] };
}

/** The leaf certificates of a master with less than `renewBeforeSeconds` left at `now` (ms), soonest first. */
export function dueCertificates(m: MasterCertificates, now: number, renewBeforeSeconds: number): MasterCertificates["certificates"] {
  return m.certificates
    .filter((c) => !c.ca && Date.parse(c.notAfter) - now < renewBeforeSeconds * 1000)
    .sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter));
}

/** What makes a master's API server certificate differ from the spec's, in words; undefined when it does not. */
export function sanChange(m: MasterCertificates): string | undefined {
  const have = new Set(m.apiServerSANs);
  const want = new Set(m.wantedSANs);
  const added = [...want].filter((s) => !have.has(s));
  const removed = [...have].filter((s) => !want.has(s));
  if (added.length === 0 && removed.length === 0) return undefined;
  return [added.length > 0 ? `add ${added.join(", ")}` : "", removed.length > 0 ? `remove ${removed.join(", ")}` : ""].filter(Boolean).join("; ");
}

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 8);
}
