import { describe, expect, it } from "vitest";
import { planCluster } from "../../../../src/engine/cluster/plan";
import type { CurrentCluster, DesiredCluster, MasterCertificates, PlannedHost } from "../../../../src/engine/cluster/plan";

const IMG = `sha256:${"a".repeat(64)}`;
const CFG = `sha256:${"c".repeat(64)}`;
const NOW = "2026-12-05T08:00:00.000Z";
const DAY = 86_400_000;
const inDays = (d: number) => new Date(Date.parse(NOW) + d * DAY).toISOString();
const M1 = "10.231.0.11";
const M2 = "10.231.0.12";
const W = "10.231.0.13";
const hosts: PlannedHost[] = [
  { ip: M1, roles: ["master"] },
  { ip: M2, roles: ["master"] },
  { ip: W, roles: ["node"] },
];
const desired = (list = hosts, image = IMG): DesiredCluster => ({
  name: "k",
  image: `example/k@${image}`,
  imageDigest: image,
  hosts: list,
  upgrade: { maxUnavailable: 1 },
  configDigest: CFG,
  bootstrap: "first-master",
});
const SANS = ["127.0.0.1", "apiserver.cluster.local", "10.103.97.2", M1, M2, "kubernetes", "10.96.0.1"];
const master = (ip: string, leafDays: number, sans = SANS, wanted = SANS): MasterCertificates => ({
  ip,
  certificates: [
    { name: "ca", notAfter: inDays(3650), ca: true },
    { name: "apiserver", notAfter: inDays(leafDays) },
    { name: "admin.conf", notAfter: inDays(leafDays + 1) },
  ],
  apiServerSANs: sans,
  wantedSANs: wanted,
});
/** A running cluster whose masters' certificates were read at NOW. */
const current = (masters: MasterCertificates[], renewBeforeDays = 30): CurrentCluster => ({
  name: "k",
  imageDigest: IMG,
  configDigest: CFG,
  hosts: hosts.map((h) => ({ ...h, member: true, imageDigest: IMG, configDigest: CFG, done: ["hook:join"] })),
  certificates: { observedAt: NOW, renewBeforeSeconds: renewBeforeDays * 86400, masters },
});

describe("planning control-plane certificates", () => {
  it("GIVEN every certificate with more than the threshold left and the SANs as wanted THEN nothing is planned", () => {
    const plan = planCluster(desired(), current([master(M1, 300), master(M2, 300)]));
    expect(plan.phases).toEqual([]);
    expect(plan.summary).toEqual(["no changes to cluster k"]);
  });

  it("GIVEN a master whose leaf certificates have less left than renewBefore THEN a serial renewal names it, its due certificates and their expiry", () => {
    const plan = planCluster(desired(), current([master(M1, 20), master(M2, 300)]));
    expect(plan.phases).toHaveLength(1);
    const [renew] = plan.phases;
    expect(renew).toMatchObject({ name: "certificate-renewal", mode: "serial" });
    expect(renew!.steps.map((s) => s.host)).toEqual([M1]);
    expect(renew!.steps[0]!.description).toBe(`renew the control-plane certificates on ${M1} (apiserver expires 2026-12-25, admin.conf expires 2026-12-26)`);
    expect(plan.summary).toEqual([`renew the control-plane certificates on ${M1} (some expire within 30 days)`]);
  });

  it("GIVEN renewBefore above a year (a renewal made due on purpose) THEN every master is renewed, and a CA alone never is", () => {
    const plan = planCluster(desired(), current([master(M1, 364), master(M2, 364)], 400));
    expect(plan.phases[0]!.steps.map((s) => s.host)).toEqual([M1, M2]);
    const caOnly: MasterCertificates = { ...master(M1, 3000), certificates: [{ name: "ca", notAfter: inDays(10), ca: true }] };
    expect(planCluster(desired(), current([caOnly])).phases).toEqual([]);
  });

  it("GIVEN a renewal already done in an apply that stopped later THEN it is not planned again; the next renewal (other expiries) is", () => {
    const cur = current([master(M1, 20)]);
    const id = planCluster(desired(), cur).phases[0]!.steps[0]!.id;
    cur.hosts[0]!.done.push(id);
    expect(planCluster(desired(), cur).phases).toEqual([]);
    cur.certificates!.masters = [master(M1, 25)];
    expect(planCluster(desired(), cur).phases[0]!.steps[0]!.id).not.toBe(id);
  });

  it("GIVEN a master the same plan upgrades THEN it is not renewed (kubeadm's upgrade renews it)", () => {
    const plan = planCluster(desired(hosts, `sha256:${"b".repeat(64)}`), current([master(M1, 20), master(M2, 20)]));
    expect(plan.phases.map((p) => p.name)).not.toContain("certificate-renewal");
  });

  it("GIVEN SANs added to and removed from the spec THEN each master's API server certificate is made again, one at a time, before any renewal", () => {
    const wanted = [...SANS.filter((s) => s !== "old.example"), "new.example", "10.0.0.9"];
    const plan = planCluster(desired(), current([master(M1, 20, [...SANS, "old.example"], wanted), master(M2, 300, [...SANS, "old.example"], wanted)]));
    expect(plan.phases.map((p) => [p.name, p.mode])).toEqual([
      ["apiserver-sans", "serial"],
      ["certificate-renewal", "serial"],
    ]);
    expect(plan.phases[0]!.steps.map((s) => s.description)).toEqual([
      `make ${M1}'s API server certificate again: add new.example, 10.0.0.9; remove old.example`,
      `make ${M2}'s API server certificate again: add new.example, 10.0.0.9; remove old.example`,
    ]);
    expect(plan.summary[0]).toBe(`update the API server certificate's SANs on ${M1}, ${M2}`);
  });

  it("GIVEN a master being removed THEN its certificates plan nothing; the staying master's SANs drop its IP", () => {
    const staying = hosts.filter((h) => h.ip !== M2);
    const wanted = SANS.filter((s) => s !== M2);
    const plan = planCluster(desired(staying), current([master(M1, 300, SANS, wanted), master(M2, 1)]));
    const certSteps = plan.phases.filter((p) => p.name === "apiserver-sans" || p.name === "certificate-renewal").flatMap((p) => p.steps);
    expect(certSteps.map((s) => [s.host, s.description])).toEqual([[M1, `make ${M1}'s API server certificate again: remove ${M2}`]]);
  });

  it("GIVEN a master without an API server certificate THEN its SANs plan nothing", () => {
    expect(planCluster(desired(), current([master(M1, 300, []), master(M2, 300)])).phases).toEqual([]);
  });

  it("GIVEN no certificates read (a runtime without them, a new cluster) THEN the plan is the planner's alone", () => {
    const cur = current([]);
    delete cur.certificates;
    expect(planCluster(desired(), cur).phases).toEqual([]);
  });
});
