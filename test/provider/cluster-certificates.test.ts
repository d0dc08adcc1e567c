import { describe, expect, it } from "vitest";
import { diff } from "../../src/provider/impl/cluster";
import type { ClusterInputs } from "../../src/provider/impl/cluster-inputs";

const inputs = (runtime: Record<string, unknown> = {}): ClusterInputs => ({
  name: "k",
  image: "example/k:v1.31.4",
  hosts: { "10.0.0.2": { roles: ["master"] } },
  ssh: { user: "root" },
  runtime,
});
const inDays = (d: number) => new Date(Date.now() + d * 86_400_000).toISOString();
/** A state as an apply or `pulumi refresh` left it: the inputs and the certificates read. */
const state = (certificates: { name: string; notAfter: string; ca?: boolean }[], runtime: Record<string, unknown> = {}) => ({
  ...inputs(runtime),
  certificates: certificates.map((c) => ({ host: "10.0.0.2", daysLeft: 0, ...c })),
});

describe("the Cluster resource's diff and the certificates a refresh read", () => {
  it("GIVEN unchanged inputs and every leaf certificate with more than 30 days left THEN no change", async () => {
    const d = await diff("k", state([{ name: "apiserver", notAfter: inDays(300) }]), inputs());
    expect(d.changes).toBe(false);
  });

  it("GIVEN unchanged inputs and a leaf certificate under the threshold THEN an update (it renews them); a CA near its end alone does not", async () => {
    expect((await diff("k", state([{ name: "admin.conf", notAfter: inDays(10) }]), inputs())).changes).toBe(true);
    expect((await diff("k", state([{ name: "ca", notAfter: inDays(10), ca: true }]), inputs())).changes).toBe(false);
  });

  it("GIVEN renewBefore 400d and one-year certificates THEN an update, and nothing is replaced", async () => {
    const runtime = { certificates: { renewBefore: "400d" } };
    const d = await diff("k", state([{ name: "apiserver", notAfter: inDays(364) }], runtime), inputs(runtime));
    expect(d).toMatchObject({ changes: true, replaces: [] });
  });
});
