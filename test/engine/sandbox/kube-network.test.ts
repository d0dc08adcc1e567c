/** Naming and address rules of Kubernetes-mode sandbox networks (pure; the real network is in kube-sandbox.test.ts). */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { sandboxUp } from "../../../src/engine/sandbox";
import { checkSubnet, hostNetns, macFor, netFor, nodeIp } from "../../../src/engine/sandbox/network";

describe("Kubernetes-mode sandbox network", () => {
  it("GIVEN a sandbox's /24 WHEN its network is named THEN hub .1, machine .254, hosts .(10+N), and a veth named after the subnet", () => {
    const net = netFor("k8s", "10.231.7.0/24");
    expect(net).toEqual({ subnet: "10.231.7.0/24", hubNetns: "sealant-k8s-hub", hubIp: "10.231.7.1", rootVeth: "sealant-0ae707", rootIp: "10.231.7.254" });
    expect(net.rootVeth.length).toBeLessThanOrEqual(15); // IFNAMSIZ
    expect([nodeIp(net, 1), nodeIp(net, 243)]).toEqual(["10.231.7.11", "10.231.7.253"]);
    expect(hostNetns("k8s", 3)).toBe("sealant-k8s-host3");
    // a host keeps its MAC across restarts (locally administered, unicast)
    expect(macFor("10.231.7.11")).toBe("02:53:0a:e7:07:0b");
  });

  it("GIVEN subnets WHEN checked THEN only private /24s are accepted, with the reason", () => {
    expect(checkSubnet("192.168.50.0/24")).toBe("192.168.50.0/24");
    for (const bad of ["10.231.7.0/16", "10.231.7.5/24", "8.8.8.0/24", "10.300.1.0/24", "nonsense"])
      expect(() => checkSubnet(bad), bad).toThrow(/expected a private \/24/);
  });

  it("GIVEN a process that is not root WHEN Kubernetes hosts are asked for THEN it fails at once saying root is needed, creating nothing", async () => {
    const spy = vi.spyOn(process, "getuid").mockReturnValue(1000);
    const dir = join(tmpdir(), `sealant-kube-never-${process.pid}`);
    try {
      await expect(sandboxUp(1, { name: "kube-never", dir, kubernetes: true })).rejects.toThrow(/^sandbox hosts need root \(running as uid 1000;/);
      expect(existsSync(dir)).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });

  it("GIVEN a subnet that is not a private /24 WHEN up is asked for it THEN it is refused before anything is created", async () => {
    await expect(
      sandboxUp(1, { name: "kube-never", dir: join(tmpdir(), `sealant-kube-never-${process.pid}`), kubernetes: { subnet: "8.8.8.0/24" } }),
    ).rejects.toThrow(/subnet "8\.8\.8\.0\/24": expected a private \/24/);
  });
});
