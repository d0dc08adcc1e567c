import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeadmNetwork } from "../../src/engine/cluster/runtime/kubernetes/network";
import * as impl from "../../src/provider/impl/cluster";
import type { ClusterInputs } from "../../src/provider/impl/cluster-inputs";
import { UNKNOWN } from "../../src/provider/impl/unknown";

/** The Cluster provider's own inputs (beyond the cluster spec) and its network-range rule, without hosts. */

const base: ClusterInputs = {
  name: "c",
  image: `example/etcd:1@sha256:${"a".repeat(64)}`,
  hosts: { "10.0.0.1": { roles: ["master"] } },
  ssh: { password: "pw" },
};

describe("the Cluster provider's own inputs", () => {
  // check looks the image up in the local store: an empty one here.
  const saved = process.env.SEALANT_HOME;
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "sealant-home-"));
    process.env.SEALANT_HOME = home;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.SEALANT_HOME;
    else process.env.SEALANT_HOME = saved;
    await rm(home, { recursive: true, force: true });
  });

  it("check names a bad unreachableOnDelete / unreachableOnRemove with what is allowed; good and unknown values pass", async () => {
    const bad = await impl.check(undefined, { ...base, unreachableOnDelete: "maybe", unreachableOnRemove: 3 } as never);
    expect(bad.failures).toEqual([
      { property: "unreachableOnDelete", reason: 'Cluster inputs: unreachableOnDelete: "maybe" is not allowed (expected one of "skip", "fail")' },
      { property: "unreachableOnRemove", reason: 'Cluster inputs: unreachableOnRemove: number 3 is not allowed (expected one of "fail", "force")' },
    ]);
    expect((await impl.check(undefined, { ...base, unreachableOnDelete: "fail", unreachableOnRemove: "force" })).failures).toBeUndefined();
    expect((await impl.check(undefined, { ...base, unreachableOnDelete: UNKNOWN as never })).failures).toBeUndefined();
  });
});

describe("kubeadmNetwork", () => {
  it("reads the ClusterConfiguration's ranges, a later document winning; nothing else counts", () => {
    expect(kubeadmNetwork(undefined)).toEqual({});
    expect(kubeadmNetwork([{ kind: "InitConfiguration", networking: { podSubnet: "x" } }])).toEqual({});
    const docs = [
      { kind: "ClusterConfiguration", networking: { podSubnet: "10.244.0.0/16", dnsDomain: "a.local" } },
      { kind: "ClusterConfiguration", networking: { podSubnet: "100.64.0.0/10", serviceSubnet: "10.96.0.0/22" } },
    ];
    expect(kubeadmNetwork(docs)).toEqual({ podSubnet: "100.64.0.0/10", serviceSubnet: "10.96.0.0/22", dnsDomain: "a.local" });
  });
});
