/**
 * The kubernetes runtime's TEST DOUBLES (test/fixtures/kubernetes): kubeadm, kubectl, kubelet,
 * lvscare and systemctl stand-ins at a process boundary that cannot run on sandbox hosts (no
 * kubelet, containers, systemd or IPVS there), with a fake API server. This file proves the
 * doubles themselves, by hand and not through sealant's runtime: the fixture's files are put on
 * the hosts directly and the runtime's commands (runtime.ts) are run as it would run them.
 * Sandbox hosts 127.0.10.221-224.
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAll } from "js-yaml";
import { readFileSync } from "node:fs";
import { build } from "../../../../src/engine/build";
import { DEFAULT_VIP, initConfig, joinConfig, type KubeadmInputs, type KubeNode } from "../../../../src/engine/cluster/runtime/kubernetes/kubeadm-config";
import { parseKubeVersion } from "../../../../src/engine/cluster/runtime/kubernetes/version";
import { sshArgs } from "../../../../src/engine/sandbox";
import { openBed, type Bed } from "../../../support/bed";
import { onHost, runOnHost } from "../../../support/hosts";

const FIXTURE = resolve(__dirname, "../../../fixtures/kubernetes");
const V0 = "v1.30.8";
const KUBECONFIG = "export KUBECONFIG=/etc/kubernetes/admin.conf\n";

let bed: Bed;
let m1: string, m2: string, w1: string, w2: string;

/** Where each host gets the fixture (sent over SSH: a checkout under /tmp is not visible inside a sandbox host, whose /tmp is its own). */
const HOST_FIXTURE = "/root/kube-fixture";

/** The fixture onto a host, as a tar stream through the host's sshd. */
function sendFixture(ip: string): Promise<void> {
  return new Promise((done, fail) => {
    const tar = spawn("tar", ["-C", FIXTURE, "-c", "."], { stdio: ["ignore", "pipe", "inherit"] });
    const ssh = spawn("ssh", sshArgs(bed.sandbox, ip, `rm -rf ${HOST_FIXTURE} && mkdir -p ${HOST_FIXTURE} && tar -x -C ${HOST_FIXTURE}`), {
      stdio: ["pipe", "inherit", "inherit"],
    });
    tar.stdout.pipe(ssh.stdin);
    ssh.on("error", fail);
    ssh.on("close", (code) => (code === 0 ? done() : fail(new Error(`${ip}: sending the fixture failed (ssh exit ${code})`))));
  });
}

/** The image's root on a host for `version`: the fixture copied, then what the Kubefile's RUN does. */
function image(version: string): string {
  const dir = `/root/kube-image-${version}`;
  return `rm -rf ${dir} && cp -r ${HOST_FIXTURE} ${dir} && cd ${dir} && echo ${version} > bin/.kube-version && sed -i "s/@KUBE_VERSION@/${version}/" bin/kubeadm bin/kubectl bin/kubelet bin/lvscare && cd ${dir}`;
}
/** The runtime's init-host, by hand: container runtime, binaries, kubelet set-up, the API's name. */
const initHost = (master: boolean) => `${image(V0)}
sh scripts/containerd.sh
for b in kubeadm kubectl kubelet crictl lvscare; do if [ -f bin/$b ]; then install -m 0755 bin/$b /usr/bin/$b; fi; done
sh scripts/init-kube.sh
echo "${master ? m1 : DEFAULT_VIP} apiserver.cluster.local # sealant-kubernetes" >> /etc/hosts
${master ? "" : `lvscare care --vs ${DEFAULT_VIP}:6443 --rs ${m1}:6443 --rs ${m2}:6443 --health-path /healthz --health-schem https --run-once`}`;

function inputs(version = V0): KubeadmInputs {
  return {
    clusterName: "doubles",
    version: parseKubeVersion(version, "test"),
    masters: [m1, m2].map((ip) => ({ ip, roles: ["master"], labels: {}, taints: [] })),
    image: loadAll(readFileSync(`${FIXTURE}/etc/kubeadm.yml`, "utf8")) as Record<string, unknown>[],
    overrides: [],
  };
}
const writeOn = (path: string, text: string) => `mkdir -p $(dirname ${path}) && cat > ${path} <<'SEALANT_EOF'\n${text}\nSEALANT_EOF\n`;

/** The runtime's join `before` command (on the first master): token, CA hash, certificate key. */
async function secrets(controlPlane: boolean): Promise<{ SEALANT_KUBE_TOKEN: string; SEALANT_KUBE_CA_HASH: string; SEALANT_KUBE_CERT_KEY: string }> {
  const out = await onHost(
    bed.sandbox,
    m1,
    `${KUBECONFIG}set -eu
token=$(kubeadm token create --ttl 2h)
hash=sha256:$(openssl x509 -pubkey -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der 2>/dev/null | sha256sum | cut -d' ' -f1)
key=${controlPlane ? "$(kubeadm init phase upload-certs --upload-certs | tail -n 1)" : '""'}
printf '{"SEALANT_KUBE_TOKEN":"%s","SEALANT_KUBE_CA_HASH":"%s","SEALANT_KUBE_CERT_KEY":"%s"}\\n' "$token" "$hash" "$key"`,
  );
  return JSON.parse(out);
}
function joinFile(node: KubeNode, s: Record<string, string>): string {
  return joinConfig(inputs(), node).replace(/\$\{(SEALANT_[A-Z_]+)\}/g, (_, k: string) => s[k] ?? "");
}
const join = (ip: string, text: string) => runOnHost(bed.sandbox, ip, `${writeOn("/root/join.yaml", text)}kubeadm join --config /root/join.yaml`);
async function nodes(ip = m1): Promise<string[][]> {
  const out = await onHost(bed.sandbox, ip, `${KUBECONFIG}kubectl get nodes -o wide --no-headers`);
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => l.trim().split(/\s+/));
}
const nodeOf = async (ip: string) => (await nodes()).find((r) => r[5] === ip);

beforeAll(async () => {
  bed = await openBed(4, 221);
  [m1, m2, w1, w2] = bed.ips as [string, string, string, string];
  for (const ip of bed.ips) {
    // A host sees this machine's files under its own writes: start from an empty call log.
    await onHost(bed.sandbox, ip, "rm -f /var/log/sealant-kube-doubles.jsonl");
    await sendFixture(ip);
    await onHost(bed.sandbox, ip, initHost(ip === m1 || ip === m2));
  }
}, 120_000);
afterAll(async () => {
  await bed?.close();
});

describe("kubernetes test doubles", { timeout: 60_000 }, () => {
  it("the fixture builds: LABEL expands the ARG into the runtime version", async () => {
    const r = await build(bed.session, { context: FIXTURE, tag: "doubles.test/kube:v1.31.4", buildArgs: { KUBE_VERSION: "v1.31.4" } });
    expect(r.metadata.labels).toMatchObject({
      "cluster.alpha.sealer.io/cluster-runtime-type": "kubernetes",
      "cluster.alpha.sealer.io/cluster-runtime-version": "v1.31.4",
    });
  });

  it("init-host's tools answer with the image's version; lvscare records the VIP's real servers", async () => {
    expect(await onHost(bed.sandbox, w1, "kubeadm version -o short && kubelet --version")).toBe(`${V0}\nKubernetes ${V0}`);
    expect(JSON.parse(await onHost(bed.sandbox, w1, "cat /var/lib/sealant-kube-doubles/vip.json"))).toEqual({
      [`${DEFAULT_VIP}:6443`]: [`${m1}:6443`, `${m2}:6443`],
    });
    expect((await runOnHost(bed.sandbox, w1, `lvscare care --vs ${DEFAULT_VIP}:6443 --rs ${m1}:6443`)).stderr).toMatch(/supports only --run-once/);
    const bad = await runOnHost(bed.sandbox, w1, "kubelet --node-ip 1.2.3.4");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/only `kubelet --version`/);
  });

  it("kubeadm init checks the file with the real kubeadm, writes the cluster's files and starts the API", async () => {
    const broken = await runOnHost(
      bed.sandbox,
      m1,
      `${writeOn("/root/bad.yaml", initConfig(inputs()).replace("podSubnet: 10.244.0.0/16", "podSubnet: not-a-cidr"))}kubeadm init --config /root/bad.yaml --upload-certs`,
    );
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/not-a-cidr/);
    const r = await runOnHost(
      bed.sandbox,
      m1,
      `${writeOn("/var/lib/sealant/kubernetes/init.yaml", initConfig(inputs()))}kubeadm init --config /var/lib/sealant/kubernetes/init.yaml --upload-certs`,
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("Your Kubernetes control-plane has initialized successfully!");
    expect(
      await onHost(bed.sandbox, m1, "ls /etc/kubernetes /etc/kubernetes/manifests && openssl x509 -noout -subject -in /etc/kubernetes/pki/ca.crt"),
    ).toMatch(/admin\.conf[\s\S]*kubelet\.conf[\s\S]*etcd\.yaml\s+kube-apiserver\.yaml[\s\S]*CN ?= ?kubernetes/);
    expect(await nodes()).toEqual([
      [
        "host221",
        "Ready",
        "control-plane",
        expect.stringMatching(/^\d+s$/),
        V0,
        m1,
        "<none>",
        "Sealant",
        "Test",
        "Double",
        expect.any(String),
        "containerd://1.7.0-double",
      ],
    ]);
    // kubectl finds admin.conf on its own, as after the runtime's `cp admin.conf /root/.kube/config`
    expect(await onHost(bed.sandbox, m1, "kubectl get node host221 --no-headers")).toMatch(new RegExp(`^host221\\s+Ready\\s+control-plane\\s+\\S+\\s+${V0}$`));
    const again = await runOnHost(bed.sandbox, m1, "kubeadm init --config /var/lib/sealant/kubernetes/init.yaml --upload-certs");
    expect(again.stderr).toMatch(/\[preflight\] Some fatal errors occurred[\s\S]*already exists/);
    const log = (await onHost(bed.sandbox, m1, "cat /var/log/sealant-kube-doubles.jsonl"))
      .split("\n")
      .map((l) => JSON.parse(l) as { tool: string; host: string; ok: boolean });
    expect(log.filter((l) => l.tool === "kubeadm").map((l) => l.ok)).toEqual([false, true, false]);
    expect(log.map((l) => l.host).filter((h) => h !== "host221")).toEqual([]);
  });

  it("a join with a token the API never issued fails clearly and registers nothing", async () => {
    const s = await secrets(true);
    expect(s.SEALANT_KUBE_TOKEN).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(s.SEALANT_KUBE_CERT_KEY).toMatch(/^[0-9a-f]{64}$/);
    const r = await join(m2, joinFile({ ip: m2, roles: ["master"], labels: {}, taints: [] }, { ...s, SEALANT_KUBE_TOKEN: "abcdef.0123456789abcdef" }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not find a JWS signature in the cluster-info ConfigMap for token ID "abcdef"/);
    const badHash = await join(m2, joinFile({ ip: m2, roles: ["master"], labels: {}, taints: [] }, { ...s, SEALANT_KUBE_CA_HASH: `sha256:${"0".repeat(64)}` }));
    expect(badHash.stderr).toMatch(/none of the public keys "sha256:[0-9a-f]{64}" are pinned/);
    const badKey = await join(m2, joinFile({ ip: m2, roles: ["master"], labels: {}, taints: [] }, { ...s, SEALANT_KUBE_CERT_KEY: "f".repeat(64) }));
    expect(badKey.stderr).toMatch(/error downloading certs/);
    expect(await nodes()).toHaveLength(1);
  });

  it("a control plane joins, runs its own API replica, and kubectl works there", async () => {
    const s = await secrets(true);
    await onHost(bed.sandbox, m2, "kubeadm reset -f > /dev/null 2>&1 || true");
    const r = await join(m2, joinFile({ ip: m2, roles: ["master"], labels: {}, taints: [] }, s));
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/new control plane instance was created/);
    // the runtime then points the API's name at the host itself
    await onHost(
      bed.sandbox,
      m2,
      `sed -i 's/^.* apiserver.cluster.local # sealant-kubernetes$/${m2} apiserver.cluster.local # sealant-kubernetes/' /etc/hosts`,
    );
    expect((await nodes(m2)).map((n) => [n[0], n[2], n[5]])).toEqual([
      ["host221", "control-plane", m1],
      ["host222", "control-plane", m2],
    ]);
    const pods = await onHost(bed.sandbox, m1, `${KUBECONFIG}kubectl get pods -n kube-system --no-headers`);
    expect(pods).toMatch(/^kube-apiserver-host222\s+1\/1\s+Running/m);
  });

  it("a worker joins through the VIP (lvscare's first answering real server); 3 Ready nodes", async () => {
    const s = await secrets(false);
    const r = await join(w1, joinFile({ ip: w1, roles: ["node"], labels: {}, taints: [] }, s));
    expect(r.stderr).toBe("");
    expect(await onHost(bed.sandbox, w1, "ls /etc/kubernetes")).toBe("kubelet.conf\npki");
    expect((await nodes()).map((n) => [n[0], n[1], n[2], n[4], n[5]])).toEqual([
      ["host221", "Ready", "control-plane", V0, m1],
      ["host222", "Ready", "control-plane", V0, m2],
      ["host223", "Ready", "<none>", V0, w1],
    ]);
    const again = await join(w1, joinFile({ ip: w1, roles: ["node"], labels: {}, taints: [] }, await secrets(false)));
    expect(again.stderr).toMatch(/kubelet\.conf already exists/);
  });

  it("a second worker joins", async () => {
    expect((await join(w2, joinFile({ ip: w2, roles: ["node"], labels: {}, taints: [] }, await secrets(false)))).code).toBe(0);
    expect((await nodeOf(w2))?.[1]).toBe("Ready");
  });

  it("label, taint, cordon, drain, uncordon", async () => {
    const k = (c: string) => onHost(bed.sandbox, m1, `${KUBECONFIG}${c}`);
    await k(`kubectl label node host223 'node-role.kubernetes.io/worker=' 'zone=a' --overwrite`);
    const conflict = await runOnHost(bed.sandbox, m1, `${KUBECONFIG}kubectl label node host223 zone=b`);
    expect(conflict.stderr).toBe("error: 'zone' already has a value (a), and --overwrite is false");
    await k("kubectl taint node host223 dedicated=infra:NoSchedule");
    const json = JSON.parse(await k("kubectl get node host223 -o json")) as { labels: Record<string, string>; taints: string[] };
    expect(json.labels).toEqual({ "node-role.kubernetes.io/worker": "", zone: "a" });
    expect(json.taints).toEqual(["dedicated=infra:NoSchedule"]);
    expect((await nodeOf(w1))?.[2]).toBe("worker");
    await k("kubectl cordon host223");
    expect((await nodeOf(w1))?.[1]).toBe("Ready,SchedulingDisabled");
    expect(await k("kubectl drain host223 --ignore-daemonsets --delete-emptydir-data --timeout=300s")).toMatch(/drained$/);
    await k("kubectl uncordon host223");
    expect((await nodeOf(w1))?.[1]).toBe("Ready");
    const missing = await runOnHost(bed.sandbox, m1, `${KUBECONFIG}kubectl delete node nope`);
    expect(missing.stderr).toBe('Error from server (NotFound): nodes "nope" not found');
  });

  it("upgrade: a skipped minor is refused; apply, node, kubelet restart; a downgrade is refused", async () => {
    const use = (ip: string, v: string, bins = "kubeadm") =>
      onHost(bed.sandbox, ip, `${image(v)} && for b in ${bins}; do install -m 0755 bin/$b /usr/bin/$b; done`);
    await use(m1, "v1.32.0");
    const skip = await runOnHost(bed.sandbox, m1, "kubeadm upgrade apply -y v1.32.0");
    expect(skip.code).toBe(1);
    expect(skip.stderr).toMatch(/^\[upgrade\/version\] FATAL: [\s\S]*too high; kubeadm can upgrade only 1 minor version at a time/);
    expect((await runOnHost(bed.sandbox, m1, "kubeadm upgrade apply -y v1.31.4")).stderr).toMatch(/is not kubeadm's version "v1\.32\.0"/);
    expect((await runOnHost(bed.sandbox, m2, "kubeadm upgrade apply -y v1.30.9")).stderr).toMatch(/is not kubeadm's version/);
    expect((await runOnHost(bed.sandbox, w1, "kubeadm upgrade node")).code).toBe(0); // still v1.30.8 everywhere

    await use(m1, "v1.31.4");
    expect((await runOnHost(bed.sandbox, w1, "kubeadm upgrade apply -y v1.30.8")).stderr).toMatch(/no API server runs on this host/);
    expect(await onHost(bed.sandbox, m1, "kubeadm upgrade apply -y v1.31.4")).toMatch(/SUCCESS! Your cluster was upgraded to "v1.31.4"/);
    const old = await runOnHost(bed.sandbox, m2, "kubeadm upgrade node");
    expect(old.stderr).toMatch(/the control plane is on v1\.31\.4, this kubeadm is v1\.30\.8/);
    for (const ip of [m1, m2, w1]) {
      await use(ip, "v1.31.4", "kubeadm kubelet kubectl");
      if (ip !== m1) await onHost(bed.sandbox, ip, "kubeadm upgrade node");
      await onHost(bed.sandbox, ip, "systemctl daemon-reload && systemctl restart kubelet");
    }
    expect((await nodes()).map((n) => n[4])).toEqual(["v1.31.4", "v1.31.4", "v1.31.4", V0]);
    await use(m1, V0);
    expect((await runOnHost(bed.sandbox, m1, `kubeadm upgrade apply -y ${V0}`)).stderr).toMatch(/Downgrades are not supported/);
    await use(m1, "v1.31.4");
  });

  it("leave and reset: a worker and the first master go; the rest of the cluster carries on through m2", async () => {
    await onHost(bed.sandbox, w2, "kubeadm reset -f");
    await onHost(bed.sandbox, m1, `${KUBECONFIG}kubectl delete node host224`);
    expect(await nodeOf(w2)).toBeUndefined();

    const r = await onHost(bed.sandbox, m1, "kubeadm reset -f");
    expect(r).toContain("Removed member host221 from etcd");
    expect(await onHost(bed.sandbox, m1, "test ! -e /etc/kubernetes && test ! -e /run/sealant-kube-api.pid && echo gone")).toBe("gone");
    // m2 (its own replica) still answers, etcd without m1; the worker reaches m2 through the VIP
    await onHost(bed.sandbox, m2, `${KUBECONFIG}kubectl delete node host221`);
    await onHost(bed.sandbox, w1, "systemctl stop kubelet");
    expect((await nodes(m2)).map((n) => [n[0], n[1]])).toEqual([
      ["host222", "Ready"],
      ["host223", "NotReady"],
    ]);
    const st = await onHost(
      bed.sandbox,
      m2,
      `node -e 'fetch("http://${m2}:6443/state",{headers:{authorization:"Bearer "+require("fs").readFileSync("/etc/kubernetes/admin.conf","utf8").match(/token: (\\S+)/)[1]}}).then(r=>r.json()).then(s=>console.log(JSON.stringify(s.etcdMembers)))'`,
    );
    expect(JSON.parse(st)).toEqual([{ name: "host222", ip: m2 }]);

    for (const ip of [w1, m2]) expect(await onHost(bed.sandbox, ip, "kubeadm reset -f > /dev/null && ls /etc/kubernetes 2>&1 || true")).toMatch(/No such file/);
    const down = await runOnHost(bed.sandbox, w1, "kubectl --kubeconfig /nope get nodes");
    expect(down.stderr).toBe("stat /nope: no such file or directory");
  });
});
