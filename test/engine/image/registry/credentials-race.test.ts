import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CredentialStore } from "../../../../src/engine/image/credentials";
import { tempDir } from "../../../support/tools";

// The logins run in processes of their own with the compiled sealant (dist/, as the CLI tests use it).
const CREDENTIALS = path.resolve(__dirname, "../../../../dist/engine/image/credentials.js");
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

function loginInProcess(home: string, registry: string): Promise<number | null> {
  const script = `const { CredentialStore } = require(${JSON.stringify(CREDENTIALS)});
    new CredentialStore(${JSON.stringify(home)}).login(${JSON.stringify(registry)}, "user", "pw-${registry}").catch((e) => { console.error(e.message); process.exit(1); });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "ignore", "inherit"] });
  return new Promise((done) => child.once("exit", done));
}

describe("auth.json edited by logins running at once", () => {
  it("keeps every login when eight sealant processes log in to eight registries at the same moment", async () => {
    // GIVEN a sealant home
    const dir = await tempDir("sealant-creds-race-");
    cleanups.push(dir.cleanup);
    const home = path.join(dir.path, "home");
    const registries = Array.from({ length: 8 }, (_, i) => `registry-${i}.example:5000`);
    // WHEN eight processes log in at once, one registry each
    expect(await Promise.all(registries.map((r) => loginInProcess(home, r)))).toEqual(registries.map(() => 0));
    // THEN all eight logins are stored, the file still 0600, and no temp file is left
    const store = new CredentialStore(home, {});
    for (const r of registries) expect(await store.get(r)).toEqual({ username: "user", password: `pw-${r}` });
    expect((await fs.stat(path.join(home, "auth.json"))).mode & 0o777).toBe(0o600);
    expect((await fs.readdir(home)).filter((n) => n !== "auth.json")).toEqual([]);
  });
});
