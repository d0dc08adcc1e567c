import { describe, expect, it } from "vitest";
import { limiter, mapLimit } from "../../../src/engine/util/concurrency";
import { backoffDelay, retry, sleep } from "../../../src/engine/util/retry";

describe("retry", () => {
  it("runs again after the delays delayFor names, counting attempts from 1, until success", async () => {
    // GIVEN an attempt that fails twice
    let calls = 0;
    const seen: Array<[number, number]> = [];
    // WHEN retried with 1 ms waits
    const out = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new Error(`fail ${calls}`);
        return "ok";
      },
      { delayFor: (_err, attempt) => attempt, onRetry: (_err, attempt, ms) => seen.push([attempt, ms]) },
    );
    // THEN it succeeded on the third attempt, told of both retries
    expect(out).toBe("ok");
    expect(calls).toBe(3);
    expect(seen).toEqual([
      [1, 1],
      [2, 2],
    ]);
  });

  it("gives up when delayFor says so, throwing what giveUp makes of the last error", async () => {
    // GIVEN an attempt that always fails and a policy of two attempts
    const err = retry(
      async () => {
        throw new Error("down");
      },
      { delayFor: (_e, attempt) => (attempt < 2 ? 0 : undefined), giveUp: (e, attempts) => new Error(`${(e as Error).message} after ${attempts} attempts`) },
    );
    // THEN the error names the attempts made
    await expect(err).rejects.toThrow("down after 2 attempts");
  });

  it("stops waiting when the signal aborts, with the signal's reason", async () => {
    // GIVEN a long wait between attempts
    const ac = new AbortController();
    const p = retry(
      async () => {
        throw new Error("down");
      },
      { delayFor: () => 60_000, signal: ac.signal },
    );
    // WHEN aborted THEN the wait ends with the reason
    ac.abort(new Error("stopped by the test"));
    await expect(p).rejects.toThrow("stopped by the test");
    await expect(sleep(1, ac.signal)).rejects.toThrow("stopped by the test");
  });

  it("backs off exponentially, capped, with half of the delay random", () => {
    for (let i = 0; i < 50; i++) {
      const d1 = backoffDelay(1, 100, 1000);
      const d3 = backoffDelay(3, 100, 1000);
      const d9 = backoffDelay(9, 100, 1000);
      expect(d1).toBeGreaterThanOrEqual(50);
      expect(d1).toBeLessThanOrEqual(100);
      expect(d3).toBeGreaterThanOrEqual(200);
      expect(d3).toBeLessThanOrEqual(400);
      expect(d9).toBeGreaterThanOrEqual(500);
      expect(d9).toBeLessThanOrEqual(1000);
    }
  });
});

describe("limiter", () => {
  it("lets at most n run at once, in the order they came, and passes results and errors through", async () => {
    // GIVEN a limiter of 2 and 5 tasks that each take a moment
    const limit = limiter(2);
    let active = 0;
    let peak = 0;
    const started: number[] = [];
    const task = (i: number) => async () => {
      started.push(i);
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      if (i === 3) throw new Error("task 3 failed");
      return i * 10;
    };
    // WHEN all are handed to it at once
    const results = await Promise.allSettled([0, 1, 2, 3, 4].map((i) => limit(task(i))));
    // THEN never more than 2 ran together, all ran in order, and each got its own outcome
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([0, 10, 20, "task 3 failed", 40]);
  });

  it("mapLimit still bounds a fixed list", async () => {
    let active = 0;
    let peak = 0;
    const out = await mapLimit([1, 2, 3, 4], 2, async (n) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 2));
      active--;
      return n * 2;
    });
    expect(out).toEqual([2, 4, 6, 8]);
    expect(peak).toBe(2);
  });
});
