import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { sandboxDown, sandboxGet, sandboxUp } from "../../../src/engine/sandbox";
import { mountsMentioning, pidNamespace, processesIn } from "./support";
import { onHost } from "../../support/hosts";

// The compiled CLI a user runs (npm run build first); SEALANT_TEST_CLI points elsewhere if needed.
const CLI = process.env.SEALANT_TEST_CLI ?? resolve(__dirname, "../../../dist/cli/main.js");
// This file's hosts: 127.0.10.121-122 (hosts.test.ts uses 101-105).
const NAME = "cli-test";
let home: string;
let dir: string;

function sealant(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SEALANT_HOME: home }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "sealant-sandbox-cli-"));
  dir = join(home, "sandbox", NAME);
});

afterAll(async () => {
  await sandboxDown(dir).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

describe("sealant sandbox", () => {
  it("GIVEN `sandbox up 2 --json` WHEN the CLI has exited THEN both hosts keep answering ssh, and the JSON says how to reach them", async () => {
    const r = await sealant(["sandbox", "up", "2", "--name", NAME, "--first-index", "121", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.hosts).toEqual([
      { ip: "127.0.10.121", hostname: "host121", running: true },
      { ip: "127.0.10.122", hostname: "host122", running: true },
    ]);
    expect(out.ssh).toEqual({ user: "root", pk: join(dir, "id_ed25519"), passwd: expect.stringMatching(/^[\w-]{16,}$/), knownHosts: join(dir, "known_hosts") });

    const sb = (await sandboxGet(dir))!;
    expect(await Promise.all(sb.hosts.map((h) => onHost(sb, h, "hostname")))).toEqual(["host121", "host122"]);
  });

  it("GIVEN the running sandbox WHEN listed THEN ls shows it (JSON and table)", async () => {
    const json = await sealant(["sandbox", "ls", "--json"]);
    expect(json.code).toBe(0);
    const list = JSON.parse(json.stdout);
    expect(list.map((s: { name: string; hosts: unknown[] }) => [s.name, s.hosts.length])).toEqual([[NAME, 2]]);
    const text = await sealant(["sandbox", "ls"]);
    expect(text.stdout).toMatch(new RegExp(`^NAME\\s+HOSTS\\s+RUNNING\\s+IPS\\s+DIR\\n${NAME}\\s+2\\s+2\\s+127\\.0\\.10\\.121-122\\s+${dir}\\n$`));
  });

  it("GIVEN the sandbox is up WHEN `up` runs again with its name THEN it fails with one clear line and exit 1", async () => {
    // Refused: starts no host.
    const r = await sealant(["sandbox", "up", "1", "--name", NAME]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sealant: sandbox "${NAME}" is already up at ${dir} (host121 127.0.10.121, host122 127.0.10.122); bring it down first (sealant sandbox down --name ${NAME})\n`,
    );
  });

  it("GIVEN host122 WHEN stopped and started through the CLI THEN it goes away and comes back", async () => {
    expect((await sealant(["sandbox", "stop", "host122", "--name", NAME])).code).toBe(0);
    expect((await sandboxGet(dir))!.hosts.map((h) => h.running)).toEqual([true, false]);
    const started = await sealant(["sandbox", "start", "host122", "--name", NAME]);
    expect(started.stdout).toMatch(/^host122 \(127\.0\.10\.122\) running \(pid \d+\)\n$/);
    const sb = (await sandboxGet(dir))!;
    expect(await onHost(sb, "host122", "hostname")).toBe("host122");
  });

  it("GIVEN the sandbox WHEN `down` runs THEN nothing of it remains, and a second down says there is none", async () => {
    const sb = (await sandboxGet(dir))!;
    const namespaces = (await Promise.all(sb.hosts.map((h) => pidNamespace(h.pid)))).filter((n): n is string => !!n);
    expect(namespaces).toHaveLength(2);
    const r = await sealant(["sandbox", "down", "--name", NAME]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`sandbox "${NAME}" is down and removed\n`);
    expect(await processesIn(namespaces)).toEqual([]);
    expect(await mountsMentioning(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect((await sealant(["sandbox", "ls"])).stdout).toBe("no sandboxes\n");
    const again = await sealant(["sandbox", "down", "--name", NAME]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`sealant: no sandbox named "${NAME}"\n`);
  });

  it("GIVEN a wrong call WHEN run THEN usage errors exit 2", async () => {
    expect((await sealant(["sandbox", "up"])).code).toBe(2);
    expect((await sealant(["sandbox", "up", "zero"])).stderr).toMatch(/sandbox up needs a number of hosts/);
    expect((await sealant(["sandbox", "frob"])).stderr).toMatch(/unknown sandbox subcommand "frob"/);
    expect((await sealant(["sandbox", "down", "--first-index", "3"])).code).toBe(2);
  });
});

describe("sandboxUp preconditions", () => {
  it("GIVEN a process that is not root WHEN up is asked THEN it fails at once saying root is needed", async () => {
    const spy = vi.spyOn(process, "getuid").mockReturnValue(1000);
    try {
      await expect(sandboxUp(1, { name: "never", dir: join(home, "never") })).rejects.toThrow(/^sandbox hosts need root \(running as uid 1000;/);
      expect(existsSync(join(home, "never"))).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });

  it("GIVEN a dir holding other files WHEN up is asked to use it THEN it refuses and leaves the files alone", async () => {
    const other = await mkdtemp(join(tmpdir(), "sealant-sandbox-other-"));
    try {
      await (await import("node:fs/promises")).writeFile(join(other, "precious"), "x");
      await expect(sandboxUp(1, { name: "other", dir: other, firstIndex: 130 })).rejects.toThrow(/holds other files/);
      expect(existsSync(join(other, "precious"))).toBe(true);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
