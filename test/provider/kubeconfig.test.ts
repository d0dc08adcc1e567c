import { describe, expect, it } from "vitest";
import { create, diff, update } from "../../src/provider/impl/kubeconfig";
import { UNKNOWN } from "../../src/provider/impl/unknown";

/*
 * The ClusterKubeconfig provider's decisions, as the engine asks for them: `diff` with the old
 * outputs and the new inputs (the cluster's kubeconfig the unknown sentinel in a preview while the
 * cluster changes). A "no change" there is a same step, which keeps the kubeconfig from the state.
 */
const KUBECONFIG =
  "apiVersion: v1\nclusters:\n  - cluster: {server: 'https://10.231.0.11:6443'}\n    name: kubernetes\nusers:\n  - name: admin\n    user: {client-key-data: c2VjcmV0}\n";
const olds = { kubeconfig: KUBECONFIG, server: "https://10.231.0.11:6443", clusterIdentifier: "sealant:prod", __provider: "closure" };

describe("ClusterKubeconfig's diff", () => {
  it("a preview while the cluster scales (kubeconfig unknown, same server and identity): no change, so the state's kubeconfig stays", async () => {
    expect(await diff("id", olds, { ...olds, kubeconfig: UNKNOWN })).toEqual({ changes: false, replaces: [] });
  });

  it("a preview that moves the server or the identity: a change (an update, never a replacement of its own)", async () => {
    expect(await diff("id", olds, { ...olds, kubeconfig: UNKNOWN, server: "https://10.231.0.12:6443" })).toEqual({ changes: true, replaces: [] });
    expect(await diff("id", olds, { ...olds, kubeconfig: UNKNOWN, clusterIdentifier: "sealant:other" })).toEqual({ changes: true, replaces: [] });
  });

  it("the update, the cluster's kubeconfig known: the same text is no change, a renewed client certificate is an update", async () => {
    expect(await diff("id", olds, { ...olds })).toEqual({ changes: false, replaces: [] });
    const renewed = KUBECONFIG.replace("c2VjcmV0", "bmV3");
    expect(await diff("id", olds, { ...olds, kubeconfig: renewed })).toEqual({ changes: true, replaces: [] });
    expect((await update("id", olds, { ...olds, kubeconfig: renewed })).outs["kubeconfig"]).toBe(renewed);
  });
});

describe("ClusterKubeconfig's create", () => {
  it("keeps the kubeconfig, the server and the identity", async () => {
    const { __provider: _p, ...inputs } = olds;
    expect(await create(inputs)).toEqual({ id: "sealant:prod", outs: inputs });
  });

  it("a cluster that offers no kubeconfig (a hooks image): one error saying why, naming the cluster", async () => {
    await expect(create({ ...olds, kubeconfig: "" })).rejects.toThrow(
      /^the cluster offers no kubeconfig \(its runtime writes none: only the kubernetes runtime.*\), so there is no Kubernetes provider for sealant:prod$/,
    );
  });
});
