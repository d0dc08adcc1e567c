import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildPlatforms, contextDir, hashContext, KubefileSyntaxError, parseKubefiles, readKubefile } from "../../../src/engine/build";
import { hostPlatform } from "../../../src/engine/image/types";

/** engine/build/inputs: what the builder and the ImageBuild resource both read of a build's files. */

const temps: string[] = [];
async function context(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sealant-inputs-"));
  temps.push(dir);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

describe("contextDir and readKubefile", () => {
  it("names a missing context, a file given as context, and an unreadable Kubefile", async () => {
    const ctx = await context({ Kubefile: "FROM scratch\n", "a.txt": "a" });
    expect(await contextDir(ctx)).toBe(ctx);
    await expect(contextDir(join(ctx, "nope"))).rejects.toThrow(`the build context ${join(ctx, "nope")} does not exist`);
    await expect(contextDir(join(ctx, "a.txt"))).rejects.toThrow(`the build context ${join(ctx, "a.txt")} is not a directory`);
    expect(await readKubefile(ctx, undefined)).toEqual({ text: "FROM scratch\n", file: join(ctx, "Kubefile") });
    expect(await readKubefile(ctx, { text: "FROM scratch\n", file: "inline" })).toEqual({ text: "FROM scratch\n", file: "inline" });
    await expect(readKubefile(ctx, join(ctx, "missing"))).rejects.toThrow(`cannot read the Kubefile ${join(ctx, "missing")}: no such file`);
    await expect(readKubefile(ctx, ctx)).rejects.toThrow(`cannot read the Kubefile ${ctx}: it is a directory`);
  });

  it("parses the Kubefile for every platform, with the lines of what is wrong", () => {
    const text = "FROM scratch\nCOPY data-${ARCH}.bin data.bin\n";
    const parsed = parseKubefiles(
      { text, file: "K" },
      {},
      buildPlatforms([
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64" },
      ]),
    );
    expect(parsed).toHaveLength(2);
    expect(buildPlatforms(undefined)).toEqual([hostPlatform()]);
    expect(() => parseKubefiles({ text: "FROM scratch\nCOPYY a b\n", file: "K" }, {}, buildPlatforms([]))).toThrow(KubefileSyntaxError);
    expect(() => parseKubefiles({ text: "FROM scratch\nCOPYY a b\n", file: "K" }, {}, buildPlatforms([]))).toThrow(/K:2: /);
  });
});

describe("hashContext", () => {
  it("is stable, and changes with any file's content, mode, name or link target, the Kubefile, the args and the platforms", async () => {
    // GIVEN a context with a nested file and a symlink
    const ctx = await context({ "a.txt": "a\n", "sub/b.txt": "b\n" });
    await symlink("a.txt", join(ctx, "link"));
    const hash = () => hashContext(ctx, "FROM scratch\n", { A: "1" }, []);
    const h0 = await hash();
    // THEN the same context hashes the same
    expect(h0).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await hash()).toBe(h0);
    // AND the order build args are given in does not count
    expect(await hashContext(ctx, "FROM scratch\n", { B: "2", A: "1" }, [])).toBe(await hashContext(ctx, "FROM scratch\n", { A: "1", B: "2" }, []));
    // WHEN anything an image could depend on changes THEN the hash does
    const seen = new Set([h0]);
    const changed = async (what: string, h: string) => {
      expect(seen.has(h), what).toBe(false);
      seen.add(h);
    };
    await changed("kubefile", await hashContext(ctx, "FROM scratch\nLABEL a=b\n", { A: "1" }, []));
    await changed("args", await hashContext(ctx, "FROM scratch\n", { A: "2" }, []));
    await changed("platforms", await hashContext(ctx, "FROM scratch\n", { A: "1" }, [{ os: "linux", architecture: "arm64" }]));
    await writeFile(join(ctx, "sub/b.txt"), "b2\n");
    await changed("content", await hash());
    await chmod(join(ctx, "a.txt"), 0o755);
    await changed("mode", await hash());
    await rm(join(ctx, "link"));
    await symlink("sub/b.txt", join(ctx, "link"));
    await changed("link target", await hash());
    await writeFile(join(ctx, "new"), "");
    await changed("new file", await hash());
  });
});
