import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApplyError, applyCluster, resetCluster } from "../../../../src/engine/cluster";
import type { ClusterSpec } from "../../../../src/engine/cluster/spec";
import { openBed, type Bed } from "../../../support/bed";
import { onHost, runOnHost } from "../../../support/hosts";
import { buildTinyImage, clusterWithPlugins, failure, PLUGIN_FIXTURES } from "../../../support/plugins";

/**
 * A plugin module that cannot be found, exports no plugin or the wrong shape, is TypeScript
 * Node cannot run, throws, outlives its timeout or is cancelled: each is one error naming the Plugin
 * document and its module (and the phase and host once it runs), on a sandbox host
 * (127.0.10.50, the cluster's only master) that is left as it was.
 */
const FIRST = 50;

describe("plugin modules that go wrong", () => {
  let bed: Bed;
  let image: string;
  let ip: string;

  beforeAll(async () => {
    bed = await openBed(1, FIRST);
    ip = bed.ips[0]!;
    image = await buildTinyImage(bed, "example/tiny:plugin-errors");
  }, 120_000);
  afterAll(async () => {
    await bed?.close();
  });

  const spec = (name: string, plugin: Record<string, unknown>) => clusterWithPlugins(bed, name, image, [{ type: "MODULE", ...plugin }], [ip]);
  const apply = (s: ClusterSpec) => applyCluster({ session: bed.session, spec: s, pluginBase: PLUGIN_FIXTURES, onEvent: (e) => bed.events.push(e) });
  /** The host's sleep processes, once none is left or after 5 s (a kill reaches the host asynchronously). */
  const sleepsLeft = async () => {
    let left = "";
    for (let i = 0; i < 25; i++) {
      left = (await runOnHost(bed.sandbox, ip, "pgrep -a -x sleep || true")).stdout;
      if (left === "") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return left;
  };
  const nothingOnHost = () => onHost(bed.sandbox, ip, "ls -A /var/lib/sealant 2>/dev/null; true");

  it.each([
    {
      what: "a path to no file",
      plugin: { name: "missing", module: "./missing.ts" },
      says: [`plugin missing (module ./missing.ts): module not found: no file ${join(PLUGIN_FIXTURES, "missing.ts")}`],
    },
    {
      what: "a package not installed",
      plugin: { name: "cmdb", module: "@acme/sealant-cmdb" },
      says: ["plugin cmdb (module @acme/sealant-cmdb): module not found: no package @acme/sealant-cmdb in node_modules", "npm install @acme/sealant-cmdb"],
    },
    {
      what: "a module that exports no plugin",
      plugin: { name: "no-plugin", module: "./no-plugin.ts" },
      says: ["plugin no-plugin (module ./no-plugin.ts): the module exports no plugin (it exports greeting, register)", "definePlugin"],
    },
    {
      what: "a plugin of the wrong shape (a misspelt phase, no idempotent)",
      plugin: { name: "bad-shape", module: "./bad-shape.ts" },
      says: ["plugin bad-shape (module ./bad-shape.ts): the exported plugin has the wrong shape", "phases", "idempotent must be true or false"],
    },
    {
      what: "TypeScript that needs compiling (an enum)",
      plugin: { name: "enum", module: "./enum.ts" },
      says: ["plugin enum (module ./enum.ts): module", "failed to load", "enum is not supported in strip-only mode"],
    },
    {
      what: "a document asking for a phase the plugin does not run at",
      plugin: { name: "throws", module: "./throws.ts", action: "pre-init-host" },
      says: [
        "plugin throws (module ./throws.ts): the document asks for phase pre-init-host, which the plugin throws does not run at (it runs at post-install)",
      ],
    },
  ])("GIVEN $what WHEN applied THEN it fails before anything runs, naming the plugin and its module", async ({ plugin, says }) => {
    const err = await failure(apply(spec("plugins-load", plugin)));
    for (const text of says) expect(err.message).toContain(text);
    expect(err.message).not.toMatch(/\n\s+at /);
    expect(await nothingOnHost()).toBe("");
  });

  it("GIVEN a plugin whose run throws WHEN applied THEN the apply fails with its message, the plugin, phase and host, and no stack", async () => {
    const s = spec("plugins-throws", { name: "throws", module: "./throws.ts" });
    try {
      const err = await failure(apply(s));
      expect(err).toBeInstanceOf(ApplyError);
      expect(err.message).toContain(`plugin throws (module ./throws.ts) at post-install on ${ip}: `);
      expect(err.message).toContain("the CMDB answered 503 Service Unavailable");
      expect(err.message).not.toMatch(/\n\s+at /);
    } finally {
      await resetCluster({ session: bed.session, spec: s, pluginBase: PLUGIN_FIXTURES });
    }
    expect(await nothingOnHost()).toBe("");
  }, 60_000);

  it("GIVEN a plugin running `sleep 30` with a 2 s timeout WHEN applied THEN it fails in seconds saying it timed out, and the sleep is killed on the host", async () => {
    const s = spec("plugins-timeout", { name: "sleeper", module: "./sleeper.ts", timeout: "2s" });
    try {
      const started = Date.now();
      const applying = failure(apply(s));
      // While it runs, the sleep is there on the host.
      await new Promise((r) => setTimeout(r, 1200));
      expect((await runOnHost(bed.sandbox, ip, "pgrep -x sleep || true")).stdout).not.toBe("");
      const err = await applying;
      const took = Date.now() - started;
      expect(err).toBeInstanceOf(ApplyError);
      expect(err.message).toContain(`plugin sleeper (module ./sleeper.ts) at post-install on ${ip}`);
      expect(err.message).toMatch(/timed out/);
      expect(took).toBeLessThan(20_000);
      expect(await sleepsLeft()).toBe("");
      console.log(`the timeout, as the user reads it (after ${took} ms):\n${err.message}`);
    } finally {
      await resetCluster({ session: bed.session, spec: s, pluginBase: PLUGIN_FIXTURES });
    }
    expect(await nothingOnHost()).toBe("");
  }, 60_000);

  it("GIVEN a plugin running `sleep 30` WHEN the apply is cancelled THEN the apply stops at once and the sleep is killed on the host", async () => {
    const s = spec("plugins-cancel", { name: "sleeper", module: "./sleeper.ts", timeout: "5m" });
    const cancel = new AbortController();
    try {
      const started = Date.now();
      let cancelledAt = 0;
      let runningAtCancel = "";
      const err = await failure(
        applyCluster({
          session: bed.session,
          spec: s,
          pluginBase: PLUGIN_FIXTURES,
          signal: cancel.signal,
          onEvent: (e) => {
            if (e.type === "step" && e.status === "start" && e.id.startsWith("plugin:sleeper")) {
              // Once the sleep runs on the host (seen there), the user presses Ctrl-C.
              setTimeout(() => {
                void runOnHost(bed.sandbox, ip, "pgrep -x sleep || true").then((r) => {
                  runningAtCancel = r.stdout;
                  cancelledAt = Date.now();
                  cancel.abort();
                });
              }, 1000);
            }
          },
        }),
      );
      expect(cancelledAt).toBeGreaterThan(0);
      expect(runningAtCancel).not.toBe("");
      expect(Date.now() - cancelledAt).toBeLessThan(10_000);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(err.message).toMatch(/cancel|interrupt|abort/i);
      console.log(`the cancelled apply, as the user reads it:\n${err.message}`);
      expect(await sleepsLeft()).toBe("");
    } finally {
      await resetCluster({ session: bed.session, spec: s, pluginBase: PLUGIN_FIXTURES });
    }
    expect(await nothingOnHost()).toBe("");
  }, 60_000);
});
