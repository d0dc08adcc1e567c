import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { homedir, hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { dump, loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RuntimeContext } from "../../../../src/engine/cluster/runtime";
import { kubernetesCertificates, parseCertificates, READ_CERTIFICATES } from "../../../../src/engine/cluster/runtime/kubernetes/certs";
import { settingsProblems } from "../../../../src/engine/cluster/runtime/kubernetes/settings";
import { configDigest, parseClusterSpec } from "../../../../src/engine/cluster/spec";

const exec = promisify(execFile);
const sh = async (script: string, cwd?: string) => (await exec("sh", ["-c", script], { ...(cwd ? { cwd } : {}), maxBuffer: 16 << 20 })).stdout;

/** The real kubeadm scripts/kubeadm.sh builds from source (setup runs it). */
function kubeadmBinary(): string {
  const bin = process.env["SEALANT_KUBEADM"] ?? join(process.env["SEALANT_CACHE"] ?? join(homedir(), ".cache/sealant"), "kubeadm-current/bin/kubeadm");
  if (!existsSync(bin)) throw new Error(`the real kubeadm is not built at ${bin}: run bash scripts/kubeadm.sh (scripts/setup.sh does)`);
  return bin;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sealant-certs-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A directory laid out like /etc/kubernetes: a CA, an API server certificate with SANs, an admin.conf, made by openssl. */
async function kubernetesDir(): Promise<string> {
  const k = join(dir, "etc-kubernetes");
  await mkdir(join(k, "pki"), { recursive: true });
  await sh(
    `set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=kubernetes 2> /dev/null
openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2> /dev/null
printf 'subjectAltName=DNS:host1,DNS:kubernetes,IP:10.96.0.1,IP:10.0.0.2\\n' > ext
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -extfile ext -out apiserver.crt 2> /dev/null
openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj /CN=kubernetes-admin 2> /dev/null
openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 200 -out admin.crt 2> /dev/null`,
    join(k, "pki"),
  );
  const admin = (await readFile(join(k, "pki/admin.crt"))).toString("base64");
  await writeFile(
    join(k, "admin.conf"),
    `apiVersion: v1\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: ${admin}\n    client-key-data: c2VjcmV0\n`,
  );
  return k;
}

const enddate = async (pem: string) => new Date((await sh(`openssl x509 -noout -enddate -in ${pem}`)).replace("notAfter=", "").trim()).toISOString();

describe("reading a master's certificates", () => {
  it("GIVEN a CA, an API server certificate and an admin.conf made by openssl THEN each is read with its expiry, the CA marked, the SANs listed, missing ones left out", async () => {
    const k = await kubernetesDir();
    // The script as a master runs it, pointed at this directory instead of /etc/kubernetes.
    const out = await sh(READ_CERTIFICATES.replaceAll("/etc/kubernetes", k));
    const { certificates, apiServerSANs } = parseCertificates(out);
    expect(certificates).toEqual([
      { name: "ca", notAfter: await enddate(join(k, "pki/ca.crt")), ca: true },
      { name: "apiserver", notAfter: await enddate(join(k, "pki/apiserver.crt")) },
      { name: "admin.conf", notAfter: await enddate(join(k, "pki/admin.crt")) },
    ]);
    expect(apiServerSANs).toEqual(["host1", "kubernetes", "10.96.0.1", "10.0.0.2"]);
  });

  it("GIVEN an expiry openssl printed that is not a date THEN one error names the certificate and what was printed", () => {
    expect(() => parseCertificates("cert\tapiserver\tsoon\n")).toThrow('the expiry of certificate apiserver could not be read (openssl printed "soon")');
  });
});

describe("the API server certificate's SANs the spec wants", () => {
  const ctx = (settings: Record<string, unknown>): RuntimeContext => ({
    cluster: "prod",
    action: "create",
    hosts: [
      { ip: "10.0.0.2", roles: ["master"] },
      { ip: "10.0.0.3", roles: ["master"] },
      { ip: "10.0.0.9", roles: ["node"] },
    ],
    added: [],
    removed: [],
    env: {},
    rootfs: "/var/lib/sealant/prod/rootfs",
    dataRoot: "/var/lib/sealant/prod",
    runtimeVersion: "v1.31.4",
    settings,
    imageFiles: new Map([["etc/kubeadm.yml", "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\napiServer: {certSANs: [image.example]}\n"]]),
  });

  it("GIVEN the spec's SANs, a custom service range and DNS domain THEN they are exactly what the real kubeadm puts into the certificate", async () => {
    const settings = {
      certSANs: ["api.example.com", "192.0.2.7"],
      kubeadm: [
        { apiVersion: "kubeadm.k8s.io/v1beta4", kind: "ClusterConfiguration", networking: { serviceSubnet: "10.100.0.0/16", dnsDomain: "corp.local" } },
      ],
    };
    const host = { ip: "10.0.0.3", roles: ["master"] };
    const wanted = kubernetesCertificates.wantedSANs(host, hostname(), ctx(settings));
    // The real kubeadm makes the certificate from the configuration the SAN update step writes for this master.
    const step = kubernetesCertificates.updateSANs(host, ctx(settings)).command;
    const config = /<<(SEALANT_EOF_\w+)\n([\s\S]*?)\n\1\n/.exec(step)![2]!;
    const certs = join(dir, "kubeadm-pki");
    // Into a directory of the test's (kubeadm takes it from the configuration only).
    const docs = loadAll(config) as Record<string, unknown>[];
    for (const d of docs) if (d["kind"] === "ClusterConfiguration") d["certificatesDir"] = certs;
    await writeFile(join(dir, "apiserver-sans.yaml"), docs.map((d) => dump(d)).join("---\n"));
    for (const phase of ["ca", "apiserver"]) await exec(kubeadmBinary(), ["init", "phase", "certs", phase, "--config", join(dir, "apiserver-sans.yaml")]);
    const made = parseCertificates(
      await sh(
        `printf 'cert\\tx\\tJan 1 00:00:00 2030 GMT\\n'; openssl x509 -noout -ext subjectAltName -in ${certs}/apiserver.crt | tail -n +2 | tr ',' '\\n' | sed 's/^ *//;s/^/san\t/'`,
      ),
    );
    expect([...made.apiServerSANs].sort()).toEqual([...wanted].sort());
    expect(wanted).toEqual(
      expect.arrayContaining([
        "10.100.0.1",
        "kubernetes.default.svc.corp.local",
        "10.0.0.2",
        "10.0.0.3",
        "10.103.97.2",
        "127.0.0.1",
        "apiserver.cluster.local",
        "image.example",
        "api.example.com",
        "192.0.2.7",
      ]),
    );
  });
});

describe("runtime.certificates", () => {
  it("GIVEN renewBefore as days or hours THEN it is the threshold; not set THEN 30 days", () => {
    const base = { cluster: "c", action: "create", hosts: [], added: [], removed: [], env: {}, rootfs: "/r", dataRoot: "/d" } as RuntimeContext;
    expect(kubernetesCertificates.renewBeforeSeconds({ ...base, settings: { certificates: { renewBefore: "400d" } } })).toBe(400 * 86400);
    expect(kubernetesCertificates.renewBeforeSeconds({ ...base, settings: { certificates: { renewBefore: "72h" } } })).toBe(72 * 3600);
    expect(kubernetesCertificates.renewBeforeSeconds(base)).toBe(30 * 86400);
  });

  it("GIVEN a bad threshold or an unknown field THEN each problem names the field, the value and what is allowed", () => {
    expect(settingsProblems({ certificates: { renewBefore: "a month", renew: true } })).toEqual([
      'runtime.certificates.renewBefore: "a month" is not a duration (days or hours, e.g. "30d" or "720h")',
      "runtime.certificates.renew: not a setting (it reads renewBefore)",
    ]);
    expect(settingsProblems({ certificates: "30d" })).toEqual(["runtime.certificates: must be a mapping (e.g. {renewBefore: 30d})"]);
  });

  it("GIVEN the SANs or the threshold changed THEN the configuration digest is the same (certificate steps, not a roll through every host); another runtime setting changes it", () => {
    const spec = (runtime: Record<string, unknown>) =>
      parseClusterSpec({ name: "c", image: "example/k:v1", hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }], ssh: { password: "x" }, runtime });
    const before = configDigest(spec({ drainTimeout: 60 }));
    expect(configDigest(spec({ drainTimeout: 60, certSANs: ["a.example"], certificates: { renewBefore: "60d" } }))).toBe(before);
    expect(configDigest(spec({ drainTimeout: 61 }))).not.toBe(before);
  });
});
