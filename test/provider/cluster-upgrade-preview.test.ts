import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../src/engine/build";
import { Session } from "../../src/engine/session";
import * as impl from "../../src/provider/impl/cluster";
import type { ClusterInputs } from "../../src/provider/impl/cluster-inputs";

/**
 * `pulumi preview` of a change several Kubernetes minors ahead: the Cluster provider's `check`
 * (as the Pulumi engine calls it; it opens no SSH) plans the one-minor steps `up` runs, from
 * real images of three minors in a real store (test/fixtures/kubernetes built per version).
 */
describe("the Cluster provider's preview of day-two changes: a multi-minor upgrade, a master replaced", () => {
  const saved = process.env.SEALANT_HOME;
  let home: string;
  const images: Record<string, string> = {};
  const versions = ["v1.29.15", "v1.30.14", "v1.31.4"];

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "sealant-upgrade-preview-"));
    process.env.SEALANT_HOME = home;
    const session = await Session.open({ home });
    try {
      for (const v of versions) {
        const built = await build(session, { context: resolve(__dirname, "../fixtures/kubernetes"), tag: `example/kube:${v}`, buildArgs: { KUBE_VERSION: v } });
        images[v] = `example/kube:${v}@${built.digest}`;
      }
    } finally {
      session.close();
    }
  }, 300_000);
  afterAll(async () => {
    if (saved === undefined) delete process.env.SEALANT_HOME;
    else process.env.SEALANT_HOME = saved;
    await rm(home, { recursive: true, force: true });
  });

  // Addresses only planned with: check opens no connection.
  const inputs = (image: string, through?: string[]): ClusterInputs => ({
    name: "multi",
    image,
    hosts: { "127.0.9.1": { roles: ["master"] }, "127.0.9.2": { roles: ["node"] } },
    ssh: { privateKeyPath: "/nonexistent/key" },
    ...(through ? { upgrade: { through } } : {}),
  });
  const short = (v: string) => images[v]!.split("@sha256:")[1]!.slice(0, 12);

  it("shows each one-minor step, in order, with the hosts it upgrades", async () => {
    const r = await impl.check(inputs(images["v1.29.15"]!), inputs(images["v1.31.4"]!, [images["v1.30.14"]!]));
    expect(r.failures).toBeUndefined();
    const lines = String(r.inputs.plan).split("\n");
    const first = lines.findIndex((l) => l.startsWith("upgrade step 1/2: Kubernetes v1.29.15 -> v1.30.14"));
    const second = lines.findIndex((l) => l.startsWith("upgrade step 2/2: Kubernetes v1.30.14 -> v1.31.4"));
    expect(first).toBe(0);
    expect(second).toBeGreaterThan(first);
    expect(lines[first]).toContain(`(${short("v1.30.14")})`);
    expect(lines.slice(first + 1, second).join("\n")).toContain(`upgrade image ${short("v1.29.15")} -> ${short("v1.30.14")} on 2 hosts`);
    expect(lines.slice(second + 1).join("\n")).toContain(`upgrade image ${short("v1.30.14")} -> ${short("v1.31.4")} on 2 hosts`);
  }, 60_000);

  it("replacing a master with unreachableOnRemove: force previews the removal before the join, and says what force does", async () => {
    const hosts = (ips: string[]) => Object.fromEntries([...ips.map((ip) => [ip, { roles: ["master"] }]), ["127.0.9.9", { roles: ["node"] }]]);
    const at = (ips: string[], force?: boolean): ClusterInputs => ({
      ...inputs(images["v1.31.4"]!),
      hosts: hosts(ips),
      ...(force ? { unreachableOnRemove: "force" } : {}),
    });
    const r = await impl.check(at(["127.0.9.1", "127.0.9.2", "127.0.9.3"]), at(["127.0.9.1", "127.0.9.2", "127.0.9.5"], true));
    const lines = String(r.inputs.plan).split("\n");
    expect(lines.indexOf("remove 127.0.9.3 (master)")).toBeGreaterThanOrEqual(0);
    expect(lines.indexOf("remove 127.0.9.3 (master)")).toBeLessThan(lines.indexOf("join 127.0.9.5 (master)"));
    expect(lines.at(-1)).toMatch(
      /^removal by force: a removed host that cannot be reached when up runs leaves without its own steps .*checked against etcd's quorum before anything runs$/,
    );
    // Without force the note is not there (an unreachable host fails the update).
    const plain = await impl.check(at(["127.0.9.1", "127.0.9.2", "127.0.9.3"]), at(["127.0.9.1", "127.0.9.2", "127.0.9.5"]));
    expect(String(plain.inputs.plan)).not.toContain("removal by force");
  }, 60_000);

  it("fails the preview, as up would, when a minor has no image; notes a through image not pulled yet", async () => {
    const missing = await impl.check(inputs(images["v1.29.15"]!), inputs(images["v1.31.4"]!));
    expect(missing.failures).toEqual([
      { property: "image", reason: expect.stringMatching(/v1\.29\.15 cannot be upgraded to v1\.31\.4 in one step.*v1\.30\.x in upgrade\.through/) },
    ]);

    const notPulled = await impl.check(inputs(images["v1.29.15"]!), inputs(images["v1.31.4"]!, ["example/kube:v1.30.99"]));
    expect(notPulled.failures).toBeUndefined();
    expect(notPulled.inputs.plan).toContain(
      "note: upgrade.through image example/kube:v1.30.99 is not in the local store: its one-minor steps are planned when `up` pulls it",
    );

    // One minor ahead: the plain plan, with or without a through list.
    const one = await impl.check(inputs(images["v1.30.14"]!), inputs(images["v1.31.4"]!, [images["v1.29.15"]!]));
    expect(String(one.inputs.plan).split("\n")[0]).toBe(`upgrade image ${short("v1.30.14")} -> ${short("v1.31.4")} on 2 hosts (2 batches)`);
  }, 60_000);
});
