import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { removeDeadWireCopies, wireDirPrefix } from "../../../../src/engine/cluster/host/wire-leftovers";

/** The id of a process that has run and ended (a real one: spawned and waited for). */
function deadPid(): number {
  const r = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}

describe("plain layer copies a dead process left", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("GIVEN copies of a dead process, a live one and this one WHEN swept THEN only the dead process's go", async () => {
    dir = await mkdtemp(join(tmpdir(), "wire-sweep-"));
    const dead = join(dir, `sealant-wire-${deadPid()}-abc123`);
    const live = join(dir, `sealant-wire-${process.ppid}-def456`);
    const mine = join(dir, `${wireDirPrefix()}ghi789`);
    const older = join(dir, "sealant-wire-Xy12Zq");
    const other = join(dir, "unrelated-1");
    for (const d of [dead, live, mine, older, other]) {
      await mkdir(d);
      await writeFile(join(d, "layer.tar"), "x".repeat(1024));
    }
    expect(wireDirPrefix()).toBe(`sealant-wire-${process.pid}-`);
    expect(await removeDeadWireCopies(dir)).toEqual([dead]);
    expect([dead, live, mine, older, other].map((d) => existsSync(d))).toEqual([false, true, true, true, true]);
  });
});
