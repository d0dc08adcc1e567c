import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostile, ociImageEntries, tarBytes, tarGzBytes, type HostileEntry } from "../support/hostile-archive";

/**
 * Bad inputs against the compiled CLI, the way a user meets them: each must end in one
 * `sealant: ...` error (no stack trace) with a non-zero exit, print no secret, leave no temp
 * file, lease or lock in the sealant home, name no half-built image, and write nothing outside
 * the directories it was given. The classes' own tests go deeper; this is the user's view.
 */

const CLI = resolve(__dirname, "../../dist/cli/main.js");
const SECRET = "Sup3r-Secret-Pa55";
let root: string;
let home: string;
let outside: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function sealant(args: string[], opts: { cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? root, env: { ...process.env, SEALANT_HOME: home } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(opts.input ?? "");
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Files in the home that only a crash or a missed clean-up leaves: temp names, leases, locks. */
async function leftovers(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.name.startsWith(".tmp-") || e.name === ".lock" || e.name.endsWith(".partial")) found.push(p);
      else if (e.isDirectory() && e.name === "leases") found.push(...(await readdir(p)).map((n) => join(p, n)));
      else if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return found;
}

async function imageNames(): Promise<string[]> {
  const r = await sealant(["images", "--json"]);
  return (JSON.parse(r.stdout || "[]") as Array<{ ref: string }>).map((i) => i.ref);
}

/** The checks every bad input must pass; `message` is what the error must say. */
async function expectClearFailure(r: Run, message: RegExp): Promise<void> {
  const context = `exit ${r.code}\n--- stderr ---\n${r.stderr}--- stdout ---\n${r.stdout}`;
  expect(r.code, context).not.toBe(0);
  expect(r.code, context).not.toBeNull();
  expect(r.stderr.trimStart().startsWith("sealant: "), context).toBe(true);
  expect(r.stderr, context).not.toMatch(/^\s+at .+\(.*:\d+:\d+\)$/m);
  expect(r.stderr, context).toMatch(message);
  expect(r.stdout + r.stderr, context).not.toContain(SECRET);
  expect(await leftovers(home)).toEqual([]);
  expect(await readdir(outside)).toEqual([]);
}

async function context(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(root, "ctx-"));
  for (const [name, body] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), body);
  }
  return dir;
}

let builds = 0;

async function build(files: Record<string, string | Buffer>, tag = `bad/input:${++builds}`): Promise<Run> {
  const dir = await context(files);
  const r = await sealant(["build", "-q", "-t", tag, dir]);
  expect((await imageNames()).some((n) => n.includes(tag.toLowerCase()))).toBe(false);
  return r;
}

async function clusterfile(body: string): Promise<string> {
  const dir = await mkdtemp(join(root, "cf-"));
  const path = join(dir, "Clusterfile");
  await writeFile(path, body);
  return path;
}

const cluster = (spec: string, extra = ""): string =>
  `apiVersion: sealant.io/v1\nkind: Cluster\nmetadata:\n  name: bad\nspec:\n  image: example/none:1\n  ssh:\n    user: root\n    passwd: ${SECRET}\n${spec}${extra}`;
/** `levels` of ten aliases each under spec: 10^levels values from a few hundred bytes. */
const laughs = (levels: number): string =>
  [
    "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]",
    ...Array.from({ length: levels }, (_, i) => `  a${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(", ")}]`),
  ].join("\n") + "\n";
/** Archives ADD must refuse, each aimed at `outside`. */
const hostileAdds: Record<string, (outside: string) => HostileEntry[]> = {
  "a .. name": () => hostile.dotdot(),
  "an absolute name": (o) => hostile.absolute(o),
  "a write through a link out": (o) => hostile.symlinkThenWrite(o),
  "a write through a .. link": () => hostile.dotdotLinkThenWrite(),
  "a write through a chain of links": (o) => hostile.linkChain(o),
  "a hard link to a file outside": () => hostile.hardlinkOutside("/etc/hostname"),
  "a hard link through a link out": (o) => hostile.hardlinkThroughLink(o, "x"),
  "a whiteout through a link out": (o) => hostile.whiteoutThroughLink(o, "x"),
  "an opaque marker through a link out": (o) => hostile.opaqueThroughLink(o),
  "device files": () => hostile.devices(),
  "a setuid file": () => hostile.setuid(),
  "a directory replaced by a link out": (o) => hostile.duplicateDirThenLink(o),
  "a file claiming 10 GiB": () => hostile.hugeDeclaredSize(),
  "a PAX long name hiding ..": () => hostile.longNameDotdot(),
};
const oneMaster = "  hosts:\n    - ips: [127.0.10.250]\n      roles: [master]\n";

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "sealant-bad-inputs-"));
  home = join(root, "home");
  outside = join(root, "outside");
  await mkdir(home);
  await mkdir(outside);
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe("the CLI with bad input: one clear error, nothing left, nothing outside, no secret", () => {
  describe("command line", () => {
    it.each([
      [["frobnicate"], /unknown command/i],
      [["build", "--no-such-flag", "."], /no-such-flag/],
      [["build", "-t"], /-t|tag/],
      [["pull"], /reference|image/i],
      [["pull", "UPPER::case"], /UPPER::case/],
      [["inspect", "nothing/here:1"], /nothing\/here:1/],
      [["tag", "nothing/here:1", "x/y:1"], /nothing\/here:1/],
      [["rmi", "nothing/here:1"], /nothing\/here:1/],
      [["save", "-o", "/nonexistent-dir/out.tar", "nothing/here:1"], /nothing\/here:1|nonexistent-dir/],
      [["load", "-i", "/nonexistent-dir/in.tar"], /nonexistent-dir/],
      [["merge", "-t", "m/x:1", "nothing/a:1", "nothing/b:1"], /nothing\/a:1/],
      [["plan", "-f", "/nonexistent-dir/Clusterfile"], /nonexistent-dir/],
      [["build", "--timeout", "soon", "-t", "x/y:1", "."], /--timeout "soon"/],
      [["apply", "--allow-http-credentials", "-f", "/nonexistent-dir/Clusterfile"], /--allow-http-credentials only applies with --insecure|nonexistent-dir/],
      [["pull", "--timeout", "-5s", "x/y:1"], /--timeout/],
    ])("sealant %j", async (args, message) => {
      await expectClearFailure(await sealant(args), message);
    });
  });

  describe("Kubefile", () => {
    it.each<[string, Record<string, string>, RegExp]>([
      ["an unknown instruction", { Kubefile: "FROM scratch\nFROBNICATE x\n" }, /Kubefile:2.*FROBNICATE/s],
      ["FROM without an image", { Kubefile: "FROM\n" }, /Kubefile:1/],
      ["COPY from outside the context", { Kubefile: "FROM scratch\nCOPY ../outside /x\n" }, /Kubefile:2/],
      ["COPY of a missing file", { Kubefile: "FROM scratch\nCOPY missing.txt /x\n" }, /missing\.txt/],
      ["an empty Kubefile", { Kubefile: "" }, /Kubefile/],
      ["binary garbage", { Kubefile: "\u0000\u0001\u0002\uFFFD\n\u0000FROM\n" }, /Kubefile/],
      ["a bad tag", { Kubefile: "FROM scratch\n" }, /UPPER/],
    ])("%s", async (what, files, message) => {
      const r = await build(files, what === "a bad tag" ? "UPPER/Case:1" : undefined);
      await expectClearFailure(r, message);
    });

    it.each<[string, string, RegExp]>([
      ["an ENV name no shell accepts", "FROM scratch\nENV 1BAD=x\n", /Kubefile:2.*1BAD/s],
      ["a KUBEVERSION that is no version range", "FROM scratch\nKUBEVERSION not-a-range\n", /Kubefile:2.*not-a-range/s],
      ["an ARG doubled until it is gigabytes", `FROM scratch\nARG A=xxxxxxxx\n${"ARG A=${A}${A}\n".repeat(30)}LABEL a=\${A}\n`, /Kubefile:\d+/],
      ["a URL with a malformed %-escape", "FROM scratch\nADD http://127.0.0.1:9/%zz /x\n", /Kubefile:2/],
      ["ADD --checksum that is not a digest", "FROM scratch\nADD --checksum=md5:abc http://127.0.0.1:9/x /x\n", /Kubefile:2/],
    ])("%s", async (_what, kubefile, message) => {
      await expectClearFailure(await build({ Kubefile: kubefile }), message);
    });

    it("a FIFO in the context (would block the build for ever)", async () => {
      const dir = await context({ Kubefile: "FROM scratch\nCOPY . /ctx\n" });
      execFileSync("mkfifo", [join(dir, "pipe")]);
      const r = await sealant(["build", "-q", "-t", "bad/fifo:1", dir], { timeoutMs: 60_000 });
      await expectClearFailure(r, /pipe/);
    });

    it.each(Object.keys(hostileAdds))("ADD of a hostile archive: %s", async (name) => {
      const r = await build({ Kubefile: "FROM scratch\nADD evil.tar x/\nRUN true\n", "evil.tar": tarBytes(hostileAdds[name]!(outside)) });
      await expectClearFailure(r, /Kubefile:2.*evil\.tar/s);
    });

    it("no Kubefile in the context", async () => {
      await expectClearFailure(await build({ "README.md": "x" }), /Kubefile/);
    });
  });

  describe("archives given to load", () => {
    it.each(Object.keys(hostileAdds))("%s", async (name) => {
      const path = join(root, `load-${name.replace(/\W+/g, "-")}.tar`);
      await writeFile(path, tarBytes([{ type: "file", name: "oci-layout", content: '{"imageLayoutVersion":"1.0.0"}' }, ...hostileAdds[name]!(outside)]));
      await expectClearFailure(await sealant(["load", "-i", path]), /archive .*load-/);
      expect(await imageNames()).toEqual([]);
    });

    it("a truncated archive", async () => {
      const path = join(root, "truncated.tar");
      await writeFile(path, tarBytes(ociImageEntries([tarGzBytes(hostile.longName())], "bad/truncated:1"), { truncateAt: 1536 }));
      await expectClearFailure(await sealant(["load", "-i", path]), /truncated\.tar/);
      expect(await imageNames()).toEqual([]);
    });
  });

  describe("Clusterfile", () => {
    it.each<[string, string, RegExp]>([
      ["YAML that does not parse", "apiVersion: sealant.io/v1\nkind: Cluster\nspec: [\n", /Clusterfile/],
      ["an unknown kind", "apiVersion: sealant.io/v1\nkind: Clustre\nmetadata:\n  name: x\n", /Clustre/],
      ["a host IP out of range", cluster("  hosts:\n    - ips: [300.1.1.1]\n      roles: [master]\n"), /300\.1\.1\.1/],
      ["a host listed twice", cluster("  hosts:\n    - ips: [127.0.10.250, 127.0.10.250]\n      roles: [master]\n"), /127\.0\.10\.250/],
      ["an SSH port that is not a number", cluster(oneMaster).replace("    passwd", "    port: abc\n    passwd"), /port/],
      ["no hosts", cluster(""), /hosts/],
      ["an empty file", "", /Clusterfile/],
      ["a billion laughs (aliases expanding to 10^9 values)", cluster(oneMaster, laughs(9)), /expand to more than 1,000,000 values/],
      [
        "a registry domain with a newline (lines injected into /etc/hosts)",
        cluster(oneMaster, '  registry:\n    domain: "sea.hub\\n6.6.6.6 evil"\n'),
        /registry\.domain/,
      ],
      ["an env name no shell accepts", cluster(oneMaster, "  env:\n    1BAD: x\n"), /1BAD/],
      [
        "a node label no Kubernetes accepts",
        cluster("  hosts:\n    - ips: [127.0.10.250]\n      roles: [master]\n      labels: {'bad key!': v}\n"),
        /bad key!/,
      ],
      ["a host alias that is not a host name", cluster(oneMaster, '  hostAliases:\n    - ip: 127.0.0.9\n      hostnames: ["a b"]\n'), /a b/],
    ])("%s", async (_what, body, message) => {
      const path = await clusterfile(body);
      await expectClearFailure(await sealant(["plan", "-f", path]), message);
    });
  });
});
