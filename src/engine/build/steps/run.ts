import { BuildInputError, type Where } from "../context";
import { writeLayer } from "../layer-writer";
import type { PlatformBuild } from "../platform-build";
import { runBuildCommand } from "../run-command";
import { diffSnapshots, takeSnapshot } from "../snapshot";
import { platformString } from "../../image/types";

/**
 * RUN: cached on the command and its environment (as Docker does); otherwise run in the
 * working rootfs, and what it added, changed or deleted becomes the layer.
 */
export async function runStep(build: PlatformBuild, command: string | readonly string[], env: Record<string, string>, where: Where): Promise<boolean> {
  const text = typeof command === "string" ? command : JSON.stringify(command);
  // Messages quote the command; a 50 MB RUN line must not become a 50 MB error.
  const shown = text.length <= 300 ? text : `${text.slice(0, 200)}... (${text.length} characters)`;
  const key = build.nextKey(`RUN ${text}\n${JSON.stringify(Object.entries(env).sort())}`);
  const hit = await build.cached(key);
  if (hit) {
    build.addLayer(key, hit.layer, hit.diffId, `RUN ${text}`, true, false);
    return true;
  }
  const rootfs = await build.rootfsReady();
  const before = await takeSnapshot(rootfs);
  const pf = platformString(build.platform);
  const result = await runBuildCommand(command, {
    cwd: rootfs,
    env,
    ...(build.opts.signal ? { signal: build.opts.signal } : {}),
    onOutput: (t) => build.opts.onEvent?.({ type: "output", platform: pf, text: t }),
  }).catch((err: NodeJS.ErrnoException) => {
    if (build.opts.signal?.aborted || typeof err.code !== "string") throw err;
    // The exec form names a program that could not be started (ENOENT, EACCES, E2BIG).
    const program = typeof command === "string" ? "/bin/sh" : command[0];
    const why =
      err.code === "ENOENT"
        ? "no such program"
        : err.code === "EACCES"
          ? "permission denied"
          : err.code === "E2BIG"
            ? "its arguments and environment are too large"
            : err.message;
    throw new BuildInputError(where.file, where.line, `RUN ${shown}: cannot start ${program}: ${why}`);
  });
  if (result.code !== 0) {
    const tail = result.stderrTail ? `:\n${result.stderrTail}` : " (no stderr)";
    throw new BuildInputError(where.file, where.line, `RUN ${shown} exited ${result.code}${tail}`);
  }
  const entries = diffSnapshots(rootfs, before, await takeSnapshot(rootfs));
  const written = await writeLayer(build.opts.store, entries);
  await build.opts.store.pin(`build:${key}`, { digests: [written.descriptor.digest], layer: written.descriptor, diffId: written.diffId });
  build.addLayer(key, written.descriptor, written.diffId, `RUN ${text}`, false, true);
  return false;
}
