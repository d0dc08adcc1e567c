import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxDown, sandboxGet } from "../../src/engine/sandbox";
import { runOnHost } from "../support/hosts";

/**
 * `sealant sandbox up --user NAME` with the compiled CLI: hosts with a non-root login user whose
 * sudo asks for its password, root logins refused; the password is printed by --json only (as
 * for root sandboxes), the text output names the file it is in.
 */
const CLI = process.env["SEALANT_TEST_CLI"] ?? resolve(__dirname, "../../dist/cli/main.js");
const NAME = "cli-user";
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
  home = await mkdtemp(join(tmpdir(), "sealant-sandbox-user-"));
  dir = join(home, "sandbox", NAME);
});
afterAll(async () => {
  await sandboxDown(dir).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

describe("sealant sandbox up --user", () => {
  it("GIVEN --user deploy WHEN up THEN deploy logs in by key, sudo asks for the sandbox's password, root cannot log in", async () => {
    const r = await sealant(["sandbox", "up", "1", "--name", NAME, "--first-index", "244", "--user", "deploy", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { ssh: { user: string; sudo: string; passwd: string; pk: string } };
    expect(out.ssh).toMatchObject({ user: "deploy", sudo: "password", pk: join(dir, "id_ed25519") });
    expect(out.ssh.passwd).toBe((await readFile(join(dir, "passwd"), "utf8")).trim());

    const sb = (await sandboxGet(dir))!;
    expect(await runOnHost(sb, sb.hosts[0]!, "id -un")).toMatchObject({ code: 0, stdout: "deploy" });
    // sudo: refused without the password, root with it (on stdin).
    expect((await runOnHost(sb, sb.hosts[0]!, "sudo -n id -u")).code).not.toBe(0);
    expect(await runOnHost(sb, sb.hosts[0]!, "sudo -S -p '' id -u", { input: `${out.ssh.passwd}\n` })).toMatchObject({ code: 0, stdout: "0" });
    // root by the sandbox's own key: refused by sshd.
    const asRoot = await runOnHost({ ...sb, ssh: { ...sb.ssh, user: "root" } }, sb.hosts[0]!, "id -u");
    expect(asRoot.code).not.toBe(0);
    expect(asRoot.stderr).toMatch(/Permission denied/);
  }, 60_000);

  it("GIVEN that sandbox WHEN a host is added THEN it has the same login user, and the text output says how to log in without printing the password", async () => {
    const passwd = (await readFile(join(dir, "passwd"), "utf8")).trim();
    const r = await sealant(["sandbox", "add", "1", "--name", NAME]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`ssh as deploy with key ${join(dir, "id_ed25519")} (password in ${dir}/passwd)`);
    expect(r.stdout).toContain("(root cannot log in; deploy becomes root with sudo asking for the same password;");
    expect(r.stdout).not.toContain(passwd);
    const sb = (await sandboxGet(dir))!;
    expect(await runOnHost(sb, sb.hosts[1]!, "id -un")).toMatchObject({ code: 0, stdout: "deploy" });
  }, 60_000);

  it("GIVEN wrong uses of --user and --sudo THEN one clear error each", async () => {
    const usage = async (args: string[], message: RegExp) => {
      const r = await sealant(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.split("\n")[0], args.join(" ")).toMatch(message);
    };
    await usage(["sandbox", "up", "1", "--name", "never", "--sudo", "nopasswd"], /^sealant: --sudo needs --user$/);
    await usage(["sandbox", "up", "1", "--name", "never", "--user", "deploy", "--sudo", "maybe"], /^sealant: --sudo "maybe": expected password or nopasswd$/);
    await usage(["sandbox", "up", "1", "--name", "never", "--user", "deploy", "--kubernetes"], /^sealant: --user: Kubernetes-mode hosts log in as root only$/);
    await usage(["sandbox", "add", "1", "--name", NAME, "--user", "ops"], /^sealant: --user and --sudo are for sandbox up/);
    // Refused: starts no host.
    const bad = await sealant(["sandbox", "up", "1", "--name", "never", "--user", "Deploy!"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`sealant: login user "Deploy!": expected a Unix user name (lower-case letters, digits, _ and -; at most 32)\n`);
  }, 60_000);
});
