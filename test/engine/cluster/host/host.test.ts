import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { HostLayout } from "../../../../src/engine/cluster/host/layout";
import { assembleScript, layersFor, missingLayers } from "../../../../src/engine/cluster/host/distribute";
import { launchCommands } from "../../../../src/engine/cluster/host/launch";
import { pluginCommand, plannedPlugins, pluginProblems } from "../../../../src/engine/cluster/host/plugins";
import { readImageFiles, renderFiles } from "../../../../src/engine/cluster/host/render";
import { resolveClusterImage } from "../../../../src/engine/cluster/host/image";
import { build } from "../../../../src/engine/build";
import { Session } from "../../../../src/engine/session";
import { emptyMetadata } from "../../../../src/engine/image/metadata";
import { parseClusterSpec, resolveHosts } from "../../../../src/engine/cluster/spec";
import { wireCommand } from "../../../../src/engine/ssh";

const sh = promisify(execFile);
const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});
const D = (c: string) => `sha256:${c.repeat(64)}` as const;

describe("assembling an image's rootfs from its layers on a host", () => {
  it("applies layers in order with whiteouts and opaque dirs, as hard links that leave the layers intact", async () => {
    const root = await mkdtemp(join(tmpdir(), "sealant-assemble-"));
    temps.push(root);
    const layout = new HostLayout(root);
    const put = async (layer: string, path: string, text = "") => {
      await mkdir(join(layout.layers, layer, path, ".."), { recursive: true });
      await writeFile(join(layout.layers, layer, path), text);
    };
    await put("aaa", "etc/keep.conf", "v1");
    await put("aaa", "etc/old.conf", "old");
    await put("aaa", "opaque/gone.txt", "x");
    await put("bbb", "etc/keep.conf", "v2");
    await put("bbb", "etc/.wh.old.conf");
    await put("bbb", "opaque/.wh..wh..opq");
    await put("bbb", "opaque/new.txt", "n");
    await sh("sh", ["-c", assembleScript(layout, D("c"), ["aaa", "bbb"])]);
    const rootfs = layout.rootfs(D("c"));
    expect(await readFile(join(rootfs, "etc/keep.conf"), "utf8")).toBe("v2");
    expect((await readdir(join(rootfs, "etc"))).sort()).toEqual(["keep.conf"]);
    expect(await readdir(join(rootfs, "opaque"))).toEqual(["new.txt"]);
    expect((await stat(join(rootfs, "etc/keep.conf"))).ino).toBe((await stat(join(layout.layers, "bbb/etc/keep.conf"))).ino);
    expect(await readFile(join(layout.layers, "aaa/etc/old.conf"), "utf8")).toBe("old");
    // Re-running replaces the rootfs whole; no temp directory is left behind.
    await sh("sh", ["-c", assembleScript(layout, D("c"), ["aaa", "bbb"])]);
    expect(await readdir(layout.images)).toEqual(["c".repeat(64)]);
  });

  it("sends registry-only layers to registry hosts only, and only layers a host lacks", () => {
    const image = {
      platform: { os: "linux", architecture: "amd64" },
      manifestDigest: D("m"),
      config: { architecture: "amd64", os: "linux", rootfs: { type: "layers" as const, diff_ids: [] } },
      layers: [
        { digest: D("a"), size: 10, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", registryOnly: false },
        { digest: D("b"), size: 20, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", registryOnly: true },
      ],
    };
    expect(layersFor(image, false).map((l) => l.dir)).toEqual([`${"a".repeat(64)}.noregistry`]);
    expect(layersFor(image, true).map((l) => l.dir)).toEqual(["a".repeat(64), "b".repeat(64)]);
    expect(missingLayers(layersFor(image, true), { layers: new Set(["a".repeat(64)]) }).map((l) => l.digest)).toEqual([D("b")]);
  });
});

describe("rendering a host's configuration", () => {
  it("applies Configs, then renders templates with the host's env; files outside the template dirs stay as they are", () => {
    const files = new Map([
      ["etc/app.conf.tmpl", "listen {{ .HostIP }}:{{ .Port }}\n"],
      ["etc/values.yaml", "a: 1\nb: {c: 2}\n"],
      ["scripts/run.sh.tmpl", "{{ .NotRendered }}"],
    ]);
    const out = renderFiles(files, [{ name: "vals", path: "etc/values.yaml", data: "b: {d: 3}\n", strategy: "merge" }], { HostIP: "127.0.10.1", Port: "2379" });
    expect(out.get("etc/app.conf")).toBe("listen 127.0.10.1:2379\n");
    expect(out.get("etc/values.yaml")).toMatch(/a: 1\nb:\n {2}c: 2\n {2}d: 3\n/);
    expect(out.has("scripts/run.sh")).toBe(false);
    expect(() => renderFiles(new Map([["etc/x.tmpl", "{{ .Missing }}"]]), [], {})).toThrow(/etc\/x\.tmpl.*Missing/);
  });
});

describe("plugins and launch commands", () => {
  const spec = parseClusterSpec({
    name: "demo",
    image: "example/etcd:1",
    hosts: [
      { ips: ["10.0.0.1", "10.0.0.2"], roles: ["master"] },
      { ips: ["10.0.0.3"], roles: ["node"] },
    ],
    plugins: [
      { name: "m", action: "PostInstall", scope: "master", data: "echo hi\n" },
      { name: "ip", action: "pre-init-host|post-init-host", scope: ["10.0.0.3"], data: "true" },
      { name: "names", type: "HOSTNAME", action: "pre-init-host", data: "10.0.0.1 alpha\n10.0.0.3 gamma" },
      { name: "lbl", type: "LABEL", action: "post-install", data: "10.0.0.1 a=b" },
    ],
  });
  const hosts = resolveHosts(spec);

  it("resolves scope by role and IP for each of a plugin's phases", () => {
    expect(plannedPlugins(spec.plugins, hosts)).toEqual([
      { name: "m", action: "post-install", scope: ["10.0.0.1", "10.0.0.2"] },
      { name: "ip", action: "pre-init-host", scope: ["10.0.0.3"] },
      { name: "ip", action: "post-init-host", scope: ["10.0.0.3"] },
      { name: "names", action: "pre-init-host" },
      { name: "lbl", action: "post-install" },
    ]);
  });

  it("runs SHELL scripts and HOSTNAME lines; Kubernetes-only types are refused for the hooks runtime", () => {
    // The script goes on stdin, never into the command line.
    expect(pluginCommand(spec.plugins[0]!, hosts[0]!)).toEqual({ command: 'sealant_script=$(cat); (eval "$sealant_script")', stdin: "echo hi" });
    expect(pluginCommand(spec.plugins[2]!, hosts[2]!)?.command).toMatch(/^hostname gamma && /);
    expect(pluginCommand(spec.plugins[2]!, hosts[1]!)).toBeUndefined();
    expect(pluginProblems(spec.plugins, "hooks")).toEqual([
      "plugin lbl: type LABEL needs the kubernetes runtime; this image uses the hooks runtime (use a SHELL plugin)",
    ]);
  });

  it("GIVEN a SHELL plugin's script WHEN its command runs in a real sh, env block first as over ssh THEN the script runs whole, in a subshell, with the env, and its exit status is the command's", async () => {
    const script = `set -e\necho "pw=$DB_PASSWORD in $(pwd)"\nprintf '%s\\n' 'it'"'"'s quoted'\nexit 3\necho never`;
    const planned = pluginCommand({ name: "p", type: "SHELL", action: ["post-install"], data: script, secrets: false }, hosts[0]!)!;
    const wire = wireCommand(`cd / && ${planned.command}; echo "after $?"`, { env: { DB_PASSWORD: "s3cret" } });
    expect(wire.line).not.toContain("s3cret");
    expect(wire.line).not.toContain("quoted");
    const child = execFile("sh", ["-c", wire.line]);
    child.stdin!.end(`${wire.stdinPrefix}${planned.stdin}`);
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    await new Promise((r) => child.on("close", r));
    expect(out).toBe("pw=s3cret in /\nit's quoted\nafter 3\n");
  });

  it("launches the spec's cmds over the image's, and apps by their type", () => {
    const meta = emptyMetadata();
    meta.launch = { apps: ["web"], cmds: undefined };
    meta.applications = [
      { name: "web", type: "kube", files: ["web.yaml"] },
      { name: "job", type: "shell", files: ["run.sh"] },
    ];
    expect(launchCommands(meta, {})).toEqual(["kubectl apply -f application/apps/web/web.yaml"]);
    expect(launchCommands(meta, { launch: ["job"] })).toEqual(["sh application/apps/job/run.sh"]);
    expect(launchCommands(meta, { cmds: ["echo up"] })).toEqual(["echo up"]);
    expect(() => launchCommands(meta, { launch: ["nope"] })).toThrow(/the image has no app "nope" \(it has: web, job\)/);
  });
});

describe("reading an image's templates", () => {
  it("finds templates and Config targets through the layers, whiteouts applied, and remembers them per layer", async () => {
    const home = await mkdtemp(join(tmpdir(), "sealant-render-"));
    temps.push(home);
    const ctx = join(home, "ctx");
    await mkdir(join(ctx, "etc"), { recursive: true });
    await writeFile(join(ctx, "etc/a.conf.tmpl"), "a={{ .A }}");
    await writeFile(join(ctx, "etc/b.conf.tmpl"), "b");
    await writeFile(join(ctx, "values.yaml"), "x: 1\n");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nLABEL io.sealant.runtime=hooks\nCOPY etc etc\nCOPY values.yaml .\nRUN rm etc/b.conf.tmpl\n");
    const session = await Session.open({ home });
    try {
      await build(session, { context: ctx, tag: "example/render:1" });
      const image = await resolveClusterImage(session, "example/render:1");
      const pf = [...image.platforms.values()][0]!;
      const files = await readImageFiles(session.store, pf, new Set(["values.yaml"]));
      expect([...files.keys()].sort()).toEqual(["etc/a.conf.tmpl", "values.yaml"]);
      expect(files.get("etc/a.conf.tmpl")).toBe("a={{ .A }}");
      for (const l of pf.layers) expect(await session.store.readPin(`render-files:${l.digest}`), l.digest).toBeDefined();
    } finally {
      session.close();
    }
  });
});
