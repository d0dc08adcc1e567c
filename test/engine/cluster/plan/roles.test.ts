import { describe, expect, it } from "vitest";
import { isMaster } from "../../../../src/engine/cluster/plan";

describe("the master role", () => {
  it("GIVEN hosts with sealer's and Kubernetes' names for the control plane WHEN asked THEN both are masters, workers and other roles are not", () => {
    expect(isMaster({ roles: ["master"] })).toBe(true);
    expect(isMaster({ roles: ["control-plane"] })).toBe(true);
    expect(isMaster({ roles: ["registry", "master"] })).toBe(true);
    expect(isMaster({ roles: ["node"] })).toBe(false);
    expect(isMaster({ roles: ["db"] })).toBe(false);
    expect(isMaster({ roles: [] })).toBe(false);
  });
});
