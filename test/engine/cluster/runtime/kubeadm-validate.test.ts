import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initConfig, joinConfig, type KubeadmInputs, type KubeNode } from "../../../../src/engine/cluster/runtime/kubernetes/kubeadm-config";
import { parseKubeVersion } from "../../../../src/engine/cluster/runtime/kubernetes/version";

const exec = promisify(execFile);

/** The real kubeadm scripts/kubeadm.sh builds from source (setup runs it). */
function kubeadmBinary(): string {
  const bin = process.env["SEALANT_KUBEADM"] ?? join(process.env["SEALANT_CACHE"] ?? join(homedir(), ".cache/sealant"), "kubeadm-current/bin/kubeadm");
  if (!existsSync(bin)) throw new Error(`the real kubeadm is not built at ${bin}: run bash scripts/kubeadm.sh (scripts/setup.sh does)`);
  return bin;
}

// Not loopback addresses: kubeadm reads a loopback advertiseAddress as "the global IP on lo",
// which these machines do not have (sandbox hosts' configs are validated with these instead).
const node = (ip: string, roles: string[], taints: string[] = []): KubeNode => ({ ip, roles, labels: {}, taints });
const masters = [node("10.0.0.2", ["master"]), node("10.0.0.3", ["master"])];
const inputs = (version: string, over: Partial<KubeadmInputs> = {}): KubeadmInputs => ({
  clusterName: "prod",
  version: parseKubeVersion(version, "test"),
  masters,
  image: [
    {
      apiVersion: "kubeadm.k8s.io/v1beta3",
      kind: "ClusterConfiguration",
      networking: { podSubnet: "10.244.0.0/16" },
      apiServer: { certSANs: ["image.example"] },
    },
    { apiVersion: "kubelet.config.k8s.io/v1beta1", kind: "KubeletConfiguration", maxPods: 120 },
  ],
  overrides: [{ apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", apiServer: { extraArgs: { "audit-log-maxage": "30" } } }],
  ...over,
});
/** What the shell puts in for the join secrets on the host. */
const withSecrets = (text: string) =>
  text
    .replace("${SEALANT_KUBE_TOKEN}", "abcdef.0123456789abcdef")
    .replace("${SEALANT_KUBE_CA_HASH}", `sha256:${"a".repeat(64)}`)
    .replace("${SEALANT_KUBE_CERT_KEY}", "b".repeat(64));

describe("sealant's kubeadm configuration, checked by the real kubeadm (scripts/kubeadm.sh)", () => {
  let kubeadm: string;
  let dir: string;
  beforeAll(async () => {
    kubeadm = kubeadmBinary();
    dir = await mkdtemp(join(tmpdir(), "sealant-kubeadm-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const validate = async (name: string, text: string) => {
    const file = join(dir, name);
    await writeFile(file, text);
    return exec(kubeadm, ["config", "validate", "--config", file]);
  };

  for (const version of ["v1.30.8", "v1.31.4"]) {
    it(`${version}: init, control-plane join and worker join configurations validate`, async () => {
      await expect(validate(`init-${version}.yaml`, initConfig(inputs(version)))).resolves.toMatchObject({ stdout: expect.stringContaining("ok") });
      await expect(validate(`join-master-${version}.yaml`, withSecrets(joinConfig(inputs(version), masters[1]!)))).resolves.toBeDefined();
      await expect(
        validate(`join-worker-${version}.yaml`, withSecrets(joinConfig(inputs(version), node("10.0.0.10", ["node"], ["dedicated=db:NoSchedule"])))),
      ).resolves.toBeDefined();
    });
  }

  it("a user's typo in the spec's kubeadm documents is caught by kubeadm, naming the field", async () => {
    const bad = initConfig(
      inputs("v1.31.4", { overrides: [{ apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", networking: { podSubnetz: "10.1.0.0/16" } }] }),
    );
    const err = (await validate("bad.yaml", bad).then(
      () => undefined,
      (e: unknown) => e,
    )) as { stderr: string } | undefined;
    expect(err?.stderr).toMatch(/unknown field "networking.podSubnetz"/);
  });

  it("kubeadm init --dry-run runs the v1.31.4 init configuration through every phase (preflight skipped: no host changes)", async () => {
    const file = join(dir, "dry-run.yaml");
    await writeFile(file, initConfig(inputs("v1.31.4")));
    const { stdout } = await exec(kubeadm, ["init", "--dry-run", "--skip-phases=preflight", "--config", file], {
      env: { ...process.env, KUBEADM_INIT_DRYRUN_DIR: dir },
      maxBuffer: 64 << 20,
    });
    expect(stdout).toContain("Your Kubernetes control-plane has initialized successfully!");
    expect(stdout).toContain("apiserver.cluster.local:6443");
    expect(stdout).toContain("registry.k8s.io/kube-apiserver:v1.31.4"); // the upstream name, pulled through the cluster registry
  }, 120_000);
});
