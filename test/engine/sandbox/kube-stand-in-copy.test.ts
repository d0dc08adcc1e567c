/**
 * The systemctl stand-in is several modules copied into each Kubernetes-mode host: the copy must
 * run on its own (no node_modules, no sources around it), as the host's /usr/bin/systemctl does.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyStandIn } from "../../../src/engine/sandbox/systemd-lite/copy-stand-in";
import { standInSource } from "../../../src/engine/sandbox/systemd-lite/files";

let root: string;
let lib: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "sealant-stand-in-"));
  lib = join(root, "sealant-sandbox"); // the entry runs only from a dir of this name
  await mkdir(lib);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function systemctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--disable-warning=ExperimentalWarning", join(lib, standInSource().name), ...args], (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("systemctl stand-in: the copy a host gets", () => {
  it("GIVEN a lib dir with a stale module WHEN the stand-in is copied THEN the entry and its modules replace it, and the copy runs alone", async () => {
    await writeFile(join(lib, "old-module.js"), "");
    await writeFile(join(lib, "supervise"), "#!/bin/sh\n");
    await copyStandIn(lib);
    const files = await readdir(lib);
    expect(files).toContain(standInSource().name);
    expect(files).toContain(`unit-file${standInSource().name.slice(-3)}`);
    expect(files).toContain("supervise");
    expect(files).not.toContain("old-module.js");
    expect(files).not.toContain("files.ts");

    const unknown = await systemctl("--bogus");
    expect([unknown.code, unknown.stderr]).toEqual([1, "systemctl: unrecognized option '--bogus'\n"]);
    const notActive = await systemctl("is-active", "sealant-no-such-unit");
    expect([notActive.code, notActive.stdout]).toEqual([3, "inactive\n"]);
  });
});
