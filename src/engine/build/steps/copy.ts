import { stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { archiveEntries, isArchive } from "../add-archive";
import { applyCopyFlags, copyEntries, normaliseDest, resolveSources, type Where } from "../context";
import type { CopyInstruction, AddInstruction } from "../kubefile";
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
  const destIsDir = await destIsDirectory(build, ins.dest);
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
  const flags = { ...(ins.chmod !== undefined ? { chmod: ins.chmod } : {}), ...(ins.chown !== undefined ? { chown: ins.chown } : {}) };
  return layerStep(build, `${ins.kind} ${ins.sources.join(" ")} ${ins.dest}`, withParents(applyCopyFlags(entries, flags, where)));
}

async function destIsDirectory(build: PlatformBuild, dest: string): Promise<boolean> {
  if (dest.endsWith("/") || normaliseDest(dest) === "") return true;
  // Docker's rule: an existing directory in the image is copied into.
  const rootfs = await build.rootfsReady();
  const st = await stat(join(rootfs, normaliseDest(dest))).catch(() => undefined);
  return st?.isDirectory() ?? false;
}
