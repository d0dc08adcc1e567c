import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostLayout } from "../../../../src/engine/cluster/host/layout";
import { acquireLock, breakLock, ClusterLockedError, lockOwner, readLockOwner } from "../../../../src/engine/cluster/state/lock";
import { SshConnection } from "../../../../src/engine/ssh";
import { openBed, type Bed } from "../../../support/bed";
import { onHost, runOnHost } from "../../../support/hosts";

// This file's host: 127.0.10.68 (other test files use other ranges). Each apply has its own
// SSH connection, as separate sealant processes would.
const FIRST = 68;
const IP = "127.0.10.68";
let bed: Bed;
const conns: SshConnection[] = [];
let n = 0;

async function connect(): Promise<SshConnection> {
  const c = await SshConnection.connect({ host: IP, privateKeyPath: bed.sandbox.ssh.pk, hostKey: { knownHosts: bed.sandbox.ssh.knownHosts } });
  conns.push(c);
  return c;
}

/** A data root of its own per test. */
function layout(): HostLayout {
  return new HostLayout(`/var/lib/sealant/lock-test-${++n}`);
}

beforeAll(async () => {
  bed = await openBed(1, FIRST);
});

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await bed?.close();
});

describe("the cluster lock on the first master", () => {
  it("takes over a lock an older sealant left without an owner once it is old, and refuses a fresh one, saying why", async () => {
    // GIVEN an ownerless lock as a crash between mkdir and writing the owner leaves it, a minute old
    const conn = await connect();
    const old = layout();
    await onHost(bed.sandbox, IP, `mkdir -p ${old.lock} && : > ${old.lock}/owner.json && touch -d '1 minute ago' ${old.lock}`);
    // WHEN an apply takes the lock
    const release = await acquireLock(conn, old, "c", lockOwner("sealant apply"));
    // THEN it holds it, with its owner written
    expect((await readLockOwner(conn, old))?.command).toBe("sealant apply");
    await release();
    expect(await onHost(bed.sandbox, IP, `ls -A ${old.root}`)).toBe("");

    // GIVEN an ownerless lock made a moment ago (an older sealant may be writing its owner right now)
    const fresh = layout();
    await onHost(bed.sandbox, IP, `mkdir -p ${fresh.lock}`);
    // THEN it is refused, the error saying what the lock is and how to break it
    const err = await acquireLock(conn, fresh, "c", lockOwner("sealant apply")).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ClusterLockedError);
    expect((err as Error).message).toMatch(/cluster c is locked on 127\.0\.10\.68 with no readable owner \(left by an older sealant .*sealant unlock/);
  });

  it("lets exactly one of ten racing applies have the lock, which is never seen without its owner", async () => {
    // GIVEN ten applies, each with its own connection, and a watcher on the host looking for a lock without an owner
    const l = layout();
    const applies = await Promise.all(Array.from({ length: 10 }, () => connect()));
    const watcher = runOnHost(
      bed.sandbox,
      IP,
      // the same lock directory (inode) before and after the look: not one released meanwhile
      `seen=0; end=$(( $(date +%s) + 4 )); while [ $(date +%s) -lt $end ]; do ` +
        `i=$(stat -c %i ${l.lock} 2>/dev/null) || continue; ` +
        `if [ ! -s ${l.lock}/owner.json ] && [ "$(stat -c %i ${l.lock} 2>/dev/null)" = "$i" ]; then seen=$((seen+1)); fi; done; echo $seen`,
    );
    for (let round = 0; round < 15; round++) {
      // WHEN all take the lock at once
      const results = await Promise.all(applies.map((c, i) => acquireLock(c, l, "race", lockOwner(`apply ${i}`)).catch((e: Error) => e)));
      // THEN one has it, and each refusal names that one
      const winners = results.filter((r) => typeof r === "function");
      expect(winners).toHaveLength(1);
      const winner = (await readLockOwner(applies[0]!, l))!.command;
      for (const r of results.filter((x) => typeof x !== "function")) {
        expect(r).toBeInstanceOf(ClusterLockedError);
        expect((r as ClusterLockedError).owner?.command).toBe(winner);
      }
      await (winners[0] as () => Promise<void>)();
    }
    // AND the watcher never saw the lock without its owner; nothing is left
    expect((await watcher).stdout).toBe("0");
    expect(await onHost(bed.sandbox, IP, `ls -A ${l.root}`)).toBe("");
  });

  it("releases only its own lock: after an explicit unlock and another apply's lock, that one stays", async () => {
    // GIVEN an apply holding the lock, broken by an operator, then taken by a second apply
    const conn = await connect();
    const l = layout();
    const releaseFirst = await acquireLock(conn, l, "c", lockOwner("first apply"));
    await breakLock(conn, l);
    await acquireLock(conn, l, "c", lockOwner("second apply"));
    // WHEN the first apply finishes
    await releaseFirst();
    // THEN the second's lock is still there
    expect((await readLockOwner(conn, l))?.command).toBe("second apply");
  });
});
