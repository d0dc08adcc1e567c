import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, type ClusterEvent } from "../../../src/engine/cluster";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import type { CertificateReport } from "../../../src/engine/cluster/runtime";
import type { Sandbox } from "../../../src/engine/sandbox";
import type { Session } from "../../../src/engine/session";
import { read as refresh } from "../../../src/provider/impl/cluster";
import { inHost } from "../../support/hosts";
import { NEW, ROOT, kubectlWith, nodesOf, openRealBed, type RealBed, writeKubeconfig } from "./support";

/**
 * The control-plane certificates of a real two-master cluster (stacked etcd) and a worker:
 * every certificate kubeadm lists, per master, with its expiry in the apply's outputs, in
 * `sealant check` (text and --json, the compiled CLI) and in a refresh of the Cluster resource;
 * a renewal made due by a threshold above a year (kubeadm's leaf certificates last one), planned
 * with each certificate and its expiry, run the kubeadm way and leaving one-year certificates and
 * a kubeconfig that works; SANs added to and removed from the spec as an in-place update of every
 * master's API server certificate, which keeps every SAN it must — read back from the
 * certificates on disk and from the one each API server serves.
 */
describe("real Kubernetes: control-plane certificates", () => {
  let bed: RealBed;
  let session: Session;
  let sb: Sandbox;
  let m1: string, m2: string, w: string;
  let clusterfile: string;

  const runtimeOf = (extra: Record<string, unknown>) => ({ drainTimeout: 120, ...extra });
  const spec = (extra: Record<string, unknown> = {}): ClusterSpec =>
    parseClusterSpec({
      name: "certs",
      image: bed.app[NEW]!,
      hosts: [
        { ips: [m1, m2], roles: ["master"] },
        { ips: [w], roles: ["node"] },
      ],
      ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      runtime: runtimeOf(extra),
    });
  const LEAVES = [
    "apiserver",
    "apiserver-kubelet-client",
    "apiserver-etcd-client",
    "front-proxy-client",
    "etcd-server",
    "etcd-peer",
    "etcd-healthcheck-client",
    "admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
  ];
  const CAS = ["ca", "etcd-ca", "front-proxy-ca"];
  const namesOn = (certs: CertificateReport[], ip: string) => certs.filter((c) => c.host === ip).map((c) => c.name);
  /** The API server certificate's SANs on disk, and as the API server on `ip` serves it. */
  const sansOf = async (ip: string) => {
    const list = (text: string) =>
      text
        .split(",")
        .map((s) => s.trim().replace(/^(DNS|IP Address):/, ""))
        .filter(Boolean)
        .sort();
    const disk = await inHost(sb, ip, "openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/apiserver.crt | tail -n +2");
    const served = await inHost(sb, ip, `echo | openssl s_client -connect ${ip}:6443 2> /dev/null | openssl x509 -noout -ext subjectAltName | tail -n +2`);
    return { disk: list(disk), served: list(served) };
  };
  const hostnameOf = async (ip: string) => (await inHost(sb, ip, "hostname")).trim().toLowerCase();
  /** The SANs every master's certificate must keep, whatever the spec adds or removes. */
  const mustKeep = async (ip: string) => [ip, m1, m2, "10.103.97.2", "127.0.0.1", "apiserver.cluster.local", "10.96.0.1", "kubernetes", await hostnameOf(ip)];

  const sealant = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((done) => {
      const child = spawn(process.execPath, [join(ROOT, "dist/cli/main.js"), ...args], {
        env: { ...process.env, SEALANT_HOME: bed.home },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
    });

  beforeAll(async () => {
    bed = await openRealBed("k8scerts", 3, [NEW]);
    ({ session, sb } = bed);
    [m1, m2, w] = bed.ips as [string, string, string];
    clusterfile = join(bed.home, "Clusterfile");
    await writeFile(
      clusterfile,
      `apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: certs}
spec:
  image: ${bed.app[NEW]}
  ssh: {privateKeyPath: ${sb.ssh.pk}, knownHosts: ${sb.ssh.knownHosts}}
  hosts:
    - {ips: [${m1}, ${m2}], roles: [master]}
    - {ips: [${w}], roles: [node]}
  runtime: {drainTimeout: 120}
`,
    );
  }, 600_000);
  afterAll(async () => {
    await bed?.close();
  });

  let created: CertificateReport[];
  it("GIVEN a new cluster THEN every certificate kubeadm lists is an output per master, one-year leaves and ten-year CAs, and the SANs as kubeadm made them plan nothing", async () => {
    const r = await applyCluster({ session, spec: spec() });
    created = r.outputs.certificates!;
    // super-admin.conf is kubeadm's (1.29+) on the master that ran init only.
    expect(namesOn(created, m1).sort()).toEqual([...LEAVES, "super-admin.conf", ...CAS].sort());
    expect(namesOn(created, m2).sort()).toEqual([...LEAVES, ...CAS].sort());
    for (const c of created) {
      if (c.ca) expect(c.daysLeft).toBeGreaterThan(3640);
      else expect([364, 365]).toContain(c.daysLeft);
    }
    const again = await applyCluster({ session, spec: spec(), dryRun: true });
    expect(again.plan.phases).toEqual([]);
  }, 900_000);

  it("GIVEN the cluster THEN sealant check reports every certificate with its expiry, in text and --json", async () => {
    const text = await sealant(["check", "-f", clusterfile]);
    console.log(text.stdout);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("certificates (renewed by an apply when one has under 30 days left):");
    const apiserver = created.find((c) => c.host === m2 && c.name === "apiserver")!;
    expect(text.stdout).toMatch(new RegExp(`${m2.replace(/\./g, "\\.")}\\s+apiserver\\s+${apiserver.notAfter.slice(0, 10)} \\S+\\s+${apiserver.daysLeft}d\\n`));
    expect(text.stdout).toMatch(/etcd-ca \(CA\)/);
    const json = JSON.parse((await sealant(["check", "-f", clusterfile, "--json"])).stdout) as { healthy: boolean; certificates: CertificateReport[] };
    expect(json.healthy).toBe(true);
    expect(json.certificates.map((c) => [c.host, c.name, c.notAfter]).sort()).toEqual(created.map((c) => [c.host, c.name, c.notAfter]).sort());
  }, 300_000);

  it("GIVEN renewBefore 400d (more than a one-year certificate has) THEN the plan renews each master naming certificates and expiry; after it every leaf is renewed for a year, the CAs kept, the kubeconfig output works", async () => {
    const due = spec({ certificates: { renewBefore: "400d" } });
    const plan = (await applyCluster({ session, spec: due, dryRun: true })).plan;
    expect(plan.phases.map((p) => p.name)).toEqual(["certificate-renewal"]);
    expect(plan.phases[0]!.steps.map((s) => s.host)).toEqual([m1, m2]);
    const expiry = created.find((c) => c.host === m1 && c.name === "apiserver")!.notAfter.slice(0, 10);
    expect(plan.phases[0]!.steps[0]!.description).toContain(`apiserver expires ${expiry}`);
    expect(plan.summary).toEqual([`renew the control-plane certificates on ${m1}, ${m2} (some expire within 400 days)`]);

    const events: ClusterEvent[] = [];
    const t0 = Date.now();
    const r = await applyCluster({ session, spec: due, onEvent: (e) => events.push(e) });
    console.log(`renewal of 2 masters: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const after = r.outputs.certificates!;
    for (const c of after) {
      const before = created.find((x) => x.host === c.host && x.name === c.name)!;
      if (c.ca) expect(c.notAfter).toBe(before.notAfter);
      else {
        expect(Date.parse(c.notAfter)).toBeGreaterThan(Date.parse(before.notAfter));
        expect([364, 365]).toContain(c.daysLeft);
      }
    }
    const kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "renewed.conf"), r.outputs.kubeconfig));
    expect((await nodesOf(kubectl)).every((n) => n.ready)).toBe(true);
    // The kubeconfig's client certificate is the renewed admin.conf's.
    const adminCert = new X509Certificate(Buffer.from(/client-certificate-data: (\S+)/.exec(r.outputs.kubeconfig!)![1]!, "base64"));
    expect(new Date(adminCert.validTo).toISOString()).toBe(after.find((c) => c.host === m1 && c.name === "admin.conf")!.notAfter);
    created = after;
  }, 900_000);

  it("GIVEN SANs added to the spec THEN every master's API server certificate is made again in place with them, keeping every SAN it must; removed again THEN they go and the rest stays", async () => {
    const added = spec({ certSANs: ["api.certs.test", "10.231.99.9"] });
    const plan = (await applyCluster({ session, spec: added, dryRun: true })).plan;
    expect(plan.phases.map((p) => p.name)).toEqual(["apiserver-sans"]);
    expect(plan.phases[0]!.steps.map((s) => s.description)).toEqual(
      [m1, m2].map((ip) => `make ${ip}'s API server certificate again: add api.certs.test, 10.231.99.9`),
    );
    const t0 = Date.now();
    await applyCluster({ session, spec: added });
    console.log(`SANs added on 2 masters: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const ip of [m1, m2]) {
      const { disk, served } = await sansOf(ip);
      expect(disk).toEqual(expect.arrayContaining([...(await mustKeep(ip)), "api.certs.test", "10.231.99.9"]));
      expect(served).toEqual(disk);
    }
    expect((await applyCluster({ session, spec: added, dryRun: true })).plan.phases).toEqual([]);

    const removed = (await applyCluster({ session, spec: spec(), dryRun: true })).plan;
    expect(removed.phases[0]!.steps.map((s) => s.description)).toEqual(
      [m1, m2].map((ip) => `make ${ip}'s API server certificate again: remove api.certs.test, 10.231.99.9`),
    );
    await applyCluster({ session, spec: spec() });
    for (const ip of [m1, m2]) {
      const { disk, served } = await sansOf(ip);
      expect(disk).toEqual(expect.arrayContaining(await mustKeep(ip)));
      expect(disk).not.toContain("api.certs.test");
      expect(disk).not.toContain("10.231.99.9");
      expect(served).toEqual(disk);
    }
    // Still one-year certificates (kubeadm's), never longer.
    const end = await inHost(sb, m2, "openssl x509 -noout -enddate -in /etc/kubernetes/pki/apiserver.crt");
    expect(Math.floor((Date.parse(end.replace("notAfter=", "").trim()) - Date.now()) / 86_400_000)).toBeLessThanOrEqual(365);
  }, 900_000);

  it("GIVEN a Cluster resource's state with stale certificates WHEN refreshed THEN its certificates output is read from the masters again", async () => {
    const props = {
      name: "certs",
      image: bed.app[NEW]!,
      hosts: { [m1]: { roles: ["master"] }, [m2]: { roles: ["master"] }, [w]: { roles: ["node"] } },
      ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      runtime: runtimeOf({}),
      certificates: [{ host: m1, name: "apiserver", notAfter: "2000-01-01T00:00:00.000Z", daysLeft: -1 }],
    };
    const home = process.env["SEALANT_HOME"];
    process.env["SEALANT_HOME"] = bed.home;
    try {
      const r = await refresh("certs", props);
      const certs = r.props["certificates"] as CertificateReport[];
      expect(namesOn(certs, m1).sort()).toEqual([...LEAVES, "super-admin.conf", ...CAS].sort());
      const onDisk = await inHost(sb, m1, "openssl x509 -noout -enddate -in /etc/kubernetes/pki/apiserver.crt");
      expect(certs.find((c) => c.host === m1 && c.name === "apiserver")!.notAfter).toBe(new Date(onDisk.replace("notAfter=", "").trim()).toISOString());
    } finally {
      if (home === undefined) delete process.env["SEALANT_HOME"];
      else process.env["SEALANT_HOME"] = home;
    }
  }, 300_000);
});
