import { describe, expect, it } from "vitest";
import { kubernetesRuntime } from "../../../../src/engine/cluster/runtime/kubernetes/runtime";
import type { RuntimeContext } from "../../../../src/engine/cluster/runtime";

/**
 * The commands of the kubernetes runtime's rolling step, as text (what they do on real nodes is
 * test/e2e/kubernetes/upgrade.test.ts): an upgrade moves the version with kubeadm upgrade, then
 * applies the spec's configuration; a reconfiguration only applies it, the documented way.
 */
const hosts = [
  { ip: "10.0.0.2", roles: ["master"] },
  { ip: "10.0.0.3", roles: ["master"] },
  { ip: "10.0.0.10", roles: ["node"] },
];
const ctx = (action: RuntimeContext["action"], runtimeVersion: string): RuntimeContext => ({
  cluster: "prod",
  action,
  hosts,
  added: [],
  removed: [],
  env: {},
  rootfs: "/var/lib/sealant/prod/rootfs",
  dataRoot: "/var/lib/sealant/prod/",
  runtimeVersion,
  settings: { kubeadm: [{ apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", apiServer: { extraArgs: { "event-ttl": "3h" } } }] },
});
const upgradeOn = (i: number, c: RuntimeContext) => kubernetesRuntime.command("upgrade", hosts[i]!, c).command;

describe("the kubernetes runtime's rolling step", () => {
  it("reconfigures without kubeadm upgrade: the first master uploads, every master regenerates its own control plane, every node re-reads its kubelet configuration", () => {
    const c = ctx("reconfigure", "v1.31.4");
    const first = upgradeOn(0, c);
    expect(first).not.toContain("kubeadm upgrade apply");
    expect(first).toContain("kubeadm init phase upload-config all --config /var/lib/sealant/prod/kubernetes/config.yaml");
    expect(first).toContain("kubeadm init phase control-plane all --config /var/lib/sealant/prod/kubernetes/config.yaml");
    // The configuration in the version's API, with the spec's argument as v1beta4 writes it.
    expect(first).toContain("apiVersion: kubeadm.k8s.io/v1beta4");
    expect(first).toMatch(/- name: event-ttl\n\s+value: 3h/);
    expect(first.indexOf("upload-config")).toBeLessThan(first.indexOf("phase control-plane"));

    const second = upgradeOn(1, c);
    expect(second).not.toContain("upload-config");
    expect(second).not.toMatch(/kubeadm upgrade (apply|node\n)/);
    expect(second).toContain("kubeadm init phase control-plane all");
    // Its own advertise address, not the first master's.
    expect(second).toMatch(/localAPIEndpoint:\n\s+advertiseAddress: 10\.0\.0\.3/);

    const worker = upgradeOn(2, c);
    expect(worker).not.toMatch(/upload-config|phase control-plane|kubeadm upgrade (apply|node\n)/);
    expect(worker).toContain("kubeadm upgrade node phase kubelet-config");
    expect(worker).toContain("systemctl restart kubelet");
  });

  it("upgrades first, then applies the configuration: upload and regeneration on the first master, kubeadm upgrade node on the others (it reads the uploaded one)", () => {
    const c = ctx("upgrade", "v1.30.14");
    const first = upgradeOn(0, c);
    expect(first.indexOf('kubeadm upgrade apply -y --ignore-preflight-errors="$ignored" v1.30.14')).toBeGreaterThan(0);
    expect(first.indexOf("kubeadm upgrade apply")).toBeLessThan(first.indexOf("upload-config all"));
    expect(first).toContain("apiVersion: kubeadm.k8s.io/v1beta3");
    expect(first).toMatch(/extraArgs:\n\s+event-ttl: 3h/);
    const second = upgradeOn(1, c);
    expect(second).toContain("kubeadm upgrade node\n");
    expect(second).not.toMatch(/upload-config|phase control-plane/);
  });

  it("checks a master's control plane on the version too, a worker's node only", () => {
    const c = ctx("upgrade", "v1.31.4");
    expect(kubernetesRuntime.command("check", hosts[0]!, c).before!.command).toContain(`control_plane_ready "$n"`);
    expect(kubernetesRuntime.command("check", hosts[0]!, c).before!.command).toContain(`*:v1.31.4" True"`);
    expect(kubernetesRuntime.command("check", hosts[2]!, c).before!.command).not.toContain("control_plane_ready");
  });
});
