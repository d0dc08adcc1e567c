import { describe, expect, it } from "vitest";
import type { ClusterEvent } from "../../../../src/engine/cluster";
import { runStreamed } from "../../../../src/engine/cluster/host/commands";
import { FakeConnection, RemoteCommandError } from "../../../../src/engine/ssh";

describe("runStreamed", () => {
  it("GIVEN env with sealer-style names (etcd-dir) WHEN a step's command runs THEN it gets only the names a shell can export, instead of failing", async () => {
    const conn = new FakeConnection("10.0.0.2").on("true", {});
    await runStreamed(conn, { command: "true", env: { A: "1", "etcd-dir": "/data/etcd", "x.y": "z" }, step: "s", timeoutMs: 1000, emit: () => undefined });
    expect(conn.commands[0]!.env).toEqual({ A: "1" });
  });

  it("GIVEN a secret-named env value WHEN the command prints it and fails THEN neither the output events nor the error show it", async () => {
    const secret = "hunter2-db-pass";
    const conn = new FakeConnection("10.0.0.2").on(/./, { code: 1, stdout: `+ connect --password ${secret}\n`, stderr: `auth failed for ${secret}\n` });
    const events: ClusterEvent[] = [];
    const err = await runStreamed(conn, {
      command: "connect",
      env: { DB_PASSWORD: secret, PLAIN: "100" },
      step: "s",
      timeoutMs: 1000,
      emit: (e) => events.push(e),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteCommandError);
    expect((err as Error).message).toContain("auth failed for ***");
    expect(JSON.stringify(events)).toContain("--password ***");
    expect(JSON.stringify(events)).not.toContain(secret);
  });
});
