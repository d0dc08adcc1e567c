import { describe, expect, it } from "vitest";
import { kubernetesRuntime } from "../../../../src/engine/cluster/runtime/kubernetes/runtime";
import type { RuntimeContext } from "../../../../src/engine/cluster/runtime";

/**
 * An image's scripts/containerd.sh rewrites containerd's config.toml, which drops the external
 * registry's login sealant put there (see host/external-registry-clients.ts): the Kubernetes
 * runtime runs sealant's script right after it, at set-up and at upgrade, before anything pulls.
 * (The script itself is run on a real host in test/engine/cluster/e2e/external-registry.test.ts.)
 */
const hosts = [
  { ip: "10.0.0.2", roles: ["master"] },
  { ip: "10.0.0.10", roles: ["node"] },
];
const ctx: RuntimeContext = {
  cluster: "prod",
  action: "create",
  hosts,
  added: [],
  removed: [],
  env: {},
  rootfs: "/var/lib/sealant/prod/rootfs",
  dataRoot: "/var/lib/sealant/prod/",
  runtimeVersion: "v1.30.8",
  registry: "harbor.example.com:8443",
  settings: {},
};

describe("the external registry's login and the image's container runtime script", () => {
  it.each(["init-host", "upgrade"] as const)("GIVEN %s WHEN generated THEN sealant's login script runs right after the container runtime script", (step) => {
    const lines = kubernetesRuntime.command(step, hosts[1]!, { ...ctx, action: step === "upgrade" ? "upgrade" : "create" }).command.split("\n");
    const runtime = lines.findIndex((l) => l.includes("sh scripts/containerd.sh"));
    expect(runtime).toBeGreaterThanOrEqual(0);
    expect(lines[runtime + 1]).toBe(
      "if [ -f /var/lib/sealant/prod/registry/containerd-auth.sh ]; then sh /var/lib/sealant/prod/registry/containerd-auth.sh > /dev/null; fi",
    );
  });
});
