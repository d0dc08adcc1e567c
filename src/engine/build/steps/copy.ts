import { lstat } from "node:fs/promises";
import { join, relative } from "node:path";
import { archiveEntries, isArchive } from "../add-archive";
import { applyCopyFlags, BuildInputError, copyEntries, normaliseDest, resolveSources, type Where } from "../context";
import type { CopyInstruction, AddInstruction } from "../kubefile";
import { resolveInRoot } from "../layer-extract";
import type { LayerEntry } from "../layer-writer";
import { layerStep, withParents, type PlatformBuild } from "../platform-build";
import { downloadSource, isRemoteSource } from "../remote-source";

/** COPY and ADD (ADD also unpacks local archives and fetches http(s) URLs). */
export async function copyStep(build: PlatformBuild, context: string, ins: CopyInstruction | AddInstruction, where: Where): Promise<boolean> {
  const remote = ins.kind === "ADD" ? ins.sources.filter(isRemoteSource) : [];
  const local = ins.sources.filter((src) => !remote.includes(src));
  const sources = await resolveSources(context, local, where);
  for (const url of remote) {
    sources.push(
      await downloadSource(url, join(build.rootfs, ".."), where, {
        ...(build.opts.signal ? { signal: build.opts.signal } : {}),
        ...(build.opts.downloads ? { limits: build.opts.downloads } : {}),
        ...(ins.kind === "ADD" && ins.checksum !== undefined ? { checksum: ins.checksum } : {}),
      }),
    );
  }
  const destIsDir = await destIsDirectory(build, ins.dest, where);
  let entries: LayerEntry[];
  if (ins.kind === "ADD") {
    entries = [];
    for (const src of sources) {
      // Docker unpacks local archives only; a downloaded file is added as it is.
      if (!src.startsWith(join(build.rootfs, "..")) && (await isArchive(src)))
        entries.push(...(await archiveEntries(src, relative(context, src), normaliseDest(ins.dest), join(build.rootfs, "..", "add"), where)));
      else entries.push(...(await copyEntries([src], ins.dest, destIsDir || sources.length > 1)));
    }
  } else {
    entries = await copyEntries(sources, ins.dest, destIsDir);
  }
  refuseUnsafeNames(entries, where);
  const flags = { ...(ins.chmod !== undefined ? { chmod: ins.chmod } : {}), ...(ins.chown !== undefined ? { chown: ins.chown } : {}) };
  return layerStep(build, `${ins.kind} ${ins.sources.join(" ")} ${ins.dest}`, withParents(applyCopyFlags(entries, flags, where)));
}

async function destIsDirectory(build: PlatformBuild, dest: string, where: Where): Promise<boolean> {
  if (dest.endsWith("/") || normaliseDest(dest) === "") return true;
  // Docker's rule: an existing directory in the image is copied into.
  const rootfs = await build.rootfsReady();
  // Links in the image are followed inside it (an earlier layer's `x -> /etc` means the image's etc, never the build machine's).
  const inImage = await resolveInRoot(rootfs, normaliseDest(dest), `${where.instruction} destination ${dest}`).catch((err: Error) => {
    throw new BuildInputError(where.file, where.line, err.message);
  });
  const st = await lstat(inImage).catch(() => undefined);
  return st?.isDirectory() ?? false;
}

/**
 * A name starting `.wh.` is a whiteout in a layer: it would delete a file of the image below
 * (ADD refuses it inside archives; this covers files from the context and downloads). Names
 * with control characters are refused too.
 */
export function refuseUnsafeNames(entries: LayerEntry[], where: Where): void {
  const fail = (path: string, why: string): never => {
    throw new BuildInputError(where.file, where.line, `${where.instruction} would put ${JSON.stringify(path)} in the image: ${why}; rename it`);
  };
  for (const e of entries) {
    if (e.type === "whiteout") continue;
    if (e.path.split("/").pop()!.startsWith(".wh.")) fail(e.path, "a name starting with .wh. is a whiteout (a deletion) in a layer, so it cannot be copied");
    // A newline splits the name in every host script that reads names line by line (find | while read).
    if (/[\u0000-\u001f\u007f]/.test(e.path)) fail(e.path, "a name with a control character cannot be copied");
  }
}
