import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BuildInputError, type Where } from "./context";

export function isRemoteSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * Downloads an ADD or APP source given as an http(s) URL into the build's scratch space, named
 * after the URL's last path component. The build cache hashes the downloaded content, so a
 * changed file at the same URL rebuilds the layer.
 */
export async function downloadSource(url: string, scratch: string, where: Where, signal?: AbortSignal): Promise<string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BuildInputError(where.file, where.line, `${where.instruction} source "${url}" is not a valid URL`);
  }
  const name = basename(decodeURIComponent(parsed.pathname)) || "download";
  const dir = join(scratch, `download-${Math.random().toString(16).slice(2)}`);
  await mkdir(dir, { recursive: true });
  const target = join(dir, name);
  let res: Response;
  try {
    res = await fetch(parsed, signal ? { signal, redirect: "follow" } : { redirect: "follow" });
  } catch (err) {
    throw new BuildInputError(
      where.file,
      where.line,
      `${where.instruction} ${url}: download failed: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
    );
  }
  if (!res.ok || !res.body) {
    throw new BuildInputError(where.file, where.line, `${where.instruction} ${url}: download failed: HTTP ${res.status} ${res.statusText}`);
  }
  await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), createWriteStream(target));
  return target;
}
