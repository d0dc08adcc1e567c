import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFile } from "../../../../src/engine/cluster/runtime/kubernetes/shell";

const run = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sealant-heredoc-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writeFile (the kubernetes runtime's heredoc)", () => {
  it("GIVEN user YAML holding the old fixed delimiter line and shell syntax WHEN the command runs in a real sh THEN the file holds the text exactly and nothing after the line runs", async () => {
    const path = join(dir, "etc", "kubeadm.yaml");
    const marker = join(dir, "pwned");
    const text = ["a: 1", "SEALANT_EOF", `touch ${marker}`, "b: $HOME `id` \\n ${PATH}", "SEALANT_EOF_0123", "c: end"].join("\n");
    await run("sh", ["-c", writeFile(path, text)]);
    expect(await readFile(path, "utf8")).toBe(`${text}\n`);
    await expect(stat(marker)).rejects.toThrow(/ENOENT/);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it("GIVEN ${SEALANT_...} placeholders WHEN written THEN the shell fills them from the command's env, and only those", async () => {
    const path = join(dir, "join.yaml");
    await run("sh", ["-c", writeFile(path, "token: ${SEALANT_KUBE_TOKEN}\nhome: ${HOME}\n")], {
      env: { ...process.env, SEALANT_KUBE_TOKEN: "abcdef.0123456789abcdef" },
    });
    expect(await readFile(path, "utf8")).toBe("token: abcdef.0123456789abcdef\nhome: ${HOME}\n\n");
  });

  it("GIVEN the same text twice WHEN written THEN each command has its own delimiter", () => {
    const delimiter = (cmd: string) => /<<(\S+)\n/.exec(cmd)?.[1];
    const a = delimiter(writeFile("/x/y", "t"));
    expect(a).toMatch(/^SEALANT_EOF_[0-9a-f]{24}$/);
    expect(delimiter(writeFile("/x/y", "t"))).not.toBe(a);
  });
});
