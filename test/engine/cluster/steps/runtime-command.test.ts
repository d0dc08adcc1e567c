import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { ClusterContext } from "../../../../src/engine/cluster/host/context";
import { runRuntimeCommand } from "../../../../src/engine/cluster/steps";
import { FakeConnection, wrapCommand } from "../../../../src/engine/ssh";

/** Just what runRuntimeCommand reads of a cluster: the spec's hosts and timeouts, the hosts, a pool. */
function fakeCluster(firstMaster: FakeConnection): ClusterContext {
  const master = { ip: "10.0.0.2", roles: ["master"] };
  return {
    spec: { hosts: [{ ips: ["10.0.0.2"] }], timeouts: { command: 60 } },
    hosts: new Map([["10.0.0.2", master]]),
    pool: { get: () => Promise.resolve(firstMaster) },
    emit: () => undefined,
  } as unknown as ClusterContext;
}

describe("a runtime command with a preparation on the first master", () => {
  const token = "abcdef.0123456789abcdef";
  it("gets the preparation's values on stdin, never on its command line or in its env, and runs the follow-up there", async () => {
    const first = new FakeConnection("10.0.0.2")
      .on(/token create/, { stdout: `noise\n{"SEALANT_KUBE_TOKEN":"${token}","SEALANT_KUBE_CA_HASH":"sha256:ab"}\n` })
      .on(/uncordon/, { stdout: "ok\n" });
    const host = new FakeConnection("10.0.0.10", [], { unmatched: "ok" });
    await runRuntimeCommand(
      fakeCluster(first),
      host,
      {
        command: 'echo "$SEALANT_KUBE_TOKEN"',
        env: { A: "1" },
        before: { command: "kubeadm token create", env: {} },
        after: { command: "kubectl uncordon n", env: {} },
      },
      "hook:join",
    );
    const ran = host.commands[0]!;
    expect(ran.env).toEqual({ A: "1" });
    expect(ran.stdin).toBe(`${token}\nsha256:ab\n`);
    expect(wrapCommand(ran.command, { env: ran.env! })).not.toContain(token);
    expect(first.ran(/uncordon/)).toHaveLength(1);
    // The follow-up on the first master gets them the same way (e.g. to delete the join token).
    const after = first.commands.find((c) => /uncordon/.test(c.command))!;
    expect(after.stdin).toBe(`${token}\nsha256:ab\n`);
    expect(after.command).not.toContain(token);
    // The same prefix in a real shell: the values arrive as exported variables; stdin is closed after.
    const out = await new Promise<string>((done, fail) => {
      const p = execFile(
        "sh",
        [
          "-c",
          ran.command.replace(
            'echo "$SEALANT_KUBE_TOKEN"',
            'echo "$SEALANT_KUBE_TOKEN $SEALANT_KUBE_CA_HASH"; sh -c \'echo "child $SEALANT_KUBE_TOKEN"\'; cat',
          ),
        ],
        (err, stdout) => (err ? fail(err) : done(stdout)),
      );
      p.stdin!.end(ran.stdin);
    });
    expect(out).toBe(`${token} sha256:ab\nchild ${token}\n`);
  });
});
