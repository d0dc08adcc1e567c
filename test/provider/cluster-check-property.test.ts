/**
 * The Cluster provider's check on arbitrary inputs (fast-check, fixed seed, bounded time): every
 * bad input is a list of failures naming the field, never a thrown TypeError, and no failure
 * shows a password.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as impl from "../../src/provider/impl/cluster";
import type { ClusterInputs } from "../../src/provider/impl/cluster-inputs";

const PROPERTY = { seed: 20261205, numRuns: 300, interruptAfterTimeLimit: 4000, markInterruptAsFailure: false } as const;
const SECRET = "S3CR3T-pw-";

describe("the Cluster provider's check, on arbitrary inputs (fast-check)", () => {
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

  it("GIVEN values that would inject lines on the hosts WHEN checked THEN each is a failure naming its field, the value escaped", async () => {
    const inputs = {
      name: "c",
      image: "example/app:1",
      hosts: { "10.0.0.1": { roles: ["master"], labels: { tier: "a\nb" } } },
      ssh: { password: `${SECRET}x` },
      registry: { domain: "sea.hub\n10.6.6.6 evil.example" },
      hostAliases: [{ ip: "10.0.0.9", hostnames: ["db\n10.6.6.6 x"] }],
    } as unknown as ClusterInputs;
    const reasons = ((await impl.check(undefined, inputs)).failures ?? []).map((f) => f.reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringContaining('Cluster inputs: registry.domain: "sea.hub\\n10.6.6.6 evil.example" is not a host name'),
        expect.stringContaining('Cluster inputs: hostAliases[0].hostnames[0]: "db\\n10.6.6.6 x" is not a host name'),
        expect.stringContaining('labels.tier: "a\\nb" is not a valid label value'),
      ]),
    );
    for (const r of reasons) expect(r).not.toMatch(/[\n]/);
  });

  it("GIVEN hosts maps and registries holding anything WHEN checked THEN failures (or none), never a thrown error, never the password", async () => {
    const value = fc.oneof(fc.anything({ maxDepth: 2 }), fc.record({ roles: fc.anything({ maxDepth: 1 }) }), fc.constant({ roles: ["master"] }));
    const key = fc.oneof(fc.ipV4(), fc.string({ maxLength: 8 }), fc.constantFrom("__proto__", "constructor", "10.0.0.1\n"));
    await fc.assert(
      fc.asyncProperty(fc.dictionary(key, value, { maxKeys: 3 }), fc.anything({ maxDepth: 1 }), fc.string({ maxLength: 6 }), async (hosts, registry, pw) => {
        const inputs = { name: "c", image: "example/app:1", hosts, registry, ssh: { password: `${SECRET}${pw}` } } as unknown as ClusterInputs;
        const r = await impl.check(undefined, inputs);
        for (const f of r.failures ?? []) {
          expect(f.reason).not.toContain(SECRET);
          expect(f.reason).not.toMatch(/[\n\r\u2028\u2029]/);
        }
      }),
      PROPERTY,
    );
  });
});
