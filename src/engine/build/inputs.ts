/**
 * A build's inputs as files: the context directory, the Kubefile, and one hash over both (with
 * the build args and platforms) that changes whenever a build could. Shared by the builder and
 * whatever must know ahead of a build whether it would change (the ImageBuild resource).
 */
import { createHash } from "node:crypto";
import { closeSync, constants as fsConstants, createReadStream, openSync, readSync } from "node:fs";
import { Socket } from "node:net";
import type { Readable } from "node:stream";
import { lstat, readdir, readlink, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { hostPlatform, platformString, type Platform } from "../image/types";
import { specialFileKind } from "./context";
import { parseKubefileOrThrow, type Kubefile } from "./kubefile";

/** A Kubefile's path (default: <context>/Kubefile), or its text and the name its errors use. */
export type KubefileSource = string | { text: string; file?: string };

/** The build context as an absolute path; throws when it is not a directory. */
export async function contextDir(context: string): Promise<string> {
  const dir = resolve(context);
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new Error(`the build context ${dir} does not exist`);
  if (!st.isDirectory()) throw new Error(`the build context ${dir} is not a directory`);
  return dir;
}

/**
 * The Kubefile's text and the name its errors use (a relative path is relative to the working
 * directory). `signal` ends a wait on a pipe.
 */
export async function readKubefile(context: string, kubefile: KubefileSource | undefined, signal?: AbortSignal): Promise<{ text: string; file: string }> {
  if (kubefile && typeof kubefile === "object") return { text: kubefile.text, file: kubefile.file ?? "Kubefile" };
  const path = kubefile ? resolve(kubefile) : join(resolve(context), "Kubefile");
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new Error(`cannot read the Kubefile ${path}: no such file`);
  if (st.isDirectory()) throw new Error(`cannot read the Kubefile ${path}: it is a directory`);
  // The context's own Kubefile must be a file: a FIFO there would block the build for ever. An
  // explicit -f may be a pipe (-f <(generate-kubefile), -f /dev/stdin). A device (-f /dev/zero)
  // is never a Kubefile.
  const kind = specialFileKind(st);
  if (kind && (!kubefile || kind !== "FIFO")) throw new Error(`cannot read the Kubefile ${path}: it is a ${kind}, not a file`);
  try {
    const bytes = await readCapped(kind === "FIFO" ? pipeStream(path) : createReadStream(path), MAX_KUBEFILE_BYTES, signal);
    return { text: bytes.toString("utf8"), file: path };
  } catch (err) {
    throw new Error(`cannot read the Kubefile ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Far above any real Kubefile; a pipe that never ends must not fill the memory. */
const MAX_KUBEFILE_BYTES = 16 << 20;

/**
 * A FIFO read through the event loop: opened without blocking (a plain open waits for a writer
 * in a libuv worker thread, which not even process.exit can interrupt) and read as a pipe
 * socket. One read first tells a FIFO nobody writes to (end of file at once) from one whose
 * writer is still busy (EAGAIN): the event loop alone would wait for ever on the former.
 */
function pipeStream(path: string): Readable {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  const first = Buffer.alloc(64 << 10);
  let n = -1;
  try {
    n = readSync(fd, first);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EAGAIN") {
      closeSync(fd);
      throw err;
    }
  }
  if (n === 0) {
    closeSync(fd);
    throw new Error("it is a FIFO with nothing written to it (no program has it open for writing)");
  }
  const socket = new Socket({ fd, readable: true, writable: false });
  if (n > 0) socket.unshift(first.subarray(0, n));
  return socket;
}

async function readCapped(stream: Readable, max: number, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const stop = (): void => void stream.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
  signal?.addEventListener("abort", stop, { once: true });
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > max) throw new Error(`it is larger than ${max >> 20} MiB, which no Kubefile is`);
      chunks.push(chunk as Buffer);
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

/** The platforms a build makes: those asked for, else this machine's. */
export function buildPlatforms(platforms: Platform[] | undefined): Platform[] {
  if (!platforms || platforms.length === 0) return [hostPlatform()];
  for (const p of platforms) {
    // A typo (--platform amd46) would otherwise build an image no host or registry matches.
    if (p.os !== "linux") throw new Error(`cannot build for ${platformString(p)}: cluster images run on Linux hosts (use linux/<arch>)`);
    if (!ARCHITECTURES.includes(p.architecture)) {
      throw new Error(`cannot build for ${platformString(p)}: unknown architecture "${p.architecture}" (expected one of ${ARCHITECTURES.join(", ")})`);
    }
  }
  return platforms;
}

/** The Linux architectures OCI platforms name (Go's GOARCH values). */
const ARCHITECTURES = ["amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "loong64", "mips", "mipsle", "mips64", "mips64le"];

/**
 * The Kubefile parsed for every platform (${ARCH} differs per platform), before any work
 * starts; throws a KubefileSyntaxError naming the lines.
 */
export function parseKubefiles(kubefile: { text: string; file: string }, buildArgs: Record<string, string>, platforms: Platform[]): Kubefile[] {
  return platforms.map((p) => parseKubefileOrThrow(kubefile.text, { file: kubefile.file, buildArgs, arch: p.architecture }));
}

/**
 * sha256 over every entry of the context (path, type, permission bits, and the content of
 * files or the target of symlinks; directories walked in byte order, symlinks not followed),
 * then the Kubefile text, the build args and the platforms: editing, adding, removing,
 * renaming or chmod-ing any file changes it. Owners and times do not count.
 */
export async function hashContext(context: string, kubefile: string, buildArgs: Record<string, string>, platforms: Platform[]): Promise<string> {
  const h = createHash("sha256");
  const record = (r: unknown[]): void => void h.update(`${JSON.stringify(r)}\n`);
  record(["sealant-context", 1]);
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort(byBytes);
    for (const name of names) {
      const abs = join(dir, name);
      const path = rel === "" ? name : `${rel}/${name}`;
      const st = await lstat(abs);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        record(["dir", path, mode]);
        await walk(abs, path);
      } else if (st.isFile()) {
        record(["file", path, mode, st.size, await fileHash(abs)]);
      } else if (st.isSymbolicLink()) {
        record(["symlink", path, await readlink(abs)]);
      } else {
        // A FIFO would block the reader for ever and no layer can hold one: refused by name.
        throw new Error(
          `the build context ${context} holds a ${specialFileKind(st) ?? "special file"} at "${path}": only files, directories and symlinks can be in a build context`,
        );
      }
    }
  };
  await walk(context, "");
  record(["kubefile", kubefile]);
  record(["buildArgs", Object.entries(buildArgs).sort(([a], [b]) => byBytes(a, b))]);
  record(["platforms", platforms.map(platformString)]);
  return `sha256:${h.digest("hex")}`;
}

function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function fileHash(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}
