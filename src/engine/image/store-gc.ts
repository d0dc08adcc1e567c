import { mkdir, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { isDigest } from "./digest";
import type { Leases } from "./store-leases";
import type { Descriptor } from "./types";

/** What gc needs of the store (ImageStore; not imported, store.ts imports this module). */
export interface CollectableStore {
  readonly root: string;
  list(): Promise<Array<{ descriptor: Descriptor }>>;
  reachable(desc: Descriptor): Promise<Descriptor[]>;
}

/** Where gc parks the blobs it is about to delete until it has read the claims once more. */
const TRASH = "gc-trash";

/**
 * Deletes the blobs that no name, no pin and no running operation reaches; the caller holds
 * the store's lock, so no name changes meanwhile.
 *
 * Order matters, against writers and reusers that hold no lock:
 * 1. the blobs directory is listed first and the leases read after it, so a blob listed was
 *    written before its writer's lease was read: one written since the oldest live lease
 *    began is spared;
 * 2. names and pins decide what is kept;
 * 3. each remaining candidate is moved aside, then the claims are read again: a blob claimed
 *    meanwhile goes back (its reuser claimed before it looked, see Leases), the rest is deleted.
 */
export async function collectGarbage(store: CollectableStore, leases: Leases): Promise<{ removed: number; bytes: number }> {
  await restoreTrash(store.root);
  await sweepTempFiles(store.root);
  const blobsDir = join(store.root, "blobs", "sha256");
  const listed: Array<{ name: string; mtimeMs: number }> = [];
  for (const name of await readdir(blobsDir)) {
    const st = await stat(join(blobsDir, name)).catch(() => undefined);
    if (st) listed.push({ name, mtimeMs: st.mtimeMs });
  }
  const keep = await keptDigests(store);
  const before = await leases.live();
  const cutoff = before.oldest ?? Infinity;
  const trash = join(store.root, TRASH);
  await mkdir(trash, { recursive: true });
  const moved: string[] = [];
  for (const { name, mtimeMs } of listed) {
    const digest = `sha256:${name}`;
    if (keep.has(digest) || before.claimed.has(digest) || mtimeMs >= cutoff) continue;
    try {
      await rename(join(blobsDir, name), join(trash, name));
      moved.push(name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  const after = await leases.live();
  let removed = 0;
  let bytes = 0;
  for (const name of moved) {
    const parked = join(trash, name);
    try {
      if (after.claimed.has(`sha256:${name}`)) {
        await rename(parked, join(blobsDir, name));
        continue;
      }
      const st = await stat(parked);
      await rm(parked, { recursive: true });
      removed++;
      bytes += st.size;
    } catch (err) {
      // Put back already by a store opening meanwhile (restoreTrash): it stays.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return { removed, bytes };
}

/** Every digest a name or a pin reaches. */
async function keptDigests(store: CollectableStore): Promise<Set<string>> {
  const keep = new Set<string>();
  for (const img of await store.list()) {
    for (const d of await store.reachable(img.descriptor).catch(() => [img.descriptor])) keep.add(d.digest);
  }
  const pins = join(store.root, "pins");
  for (const file of await readdir(pins)) {
    if (!file.endsWith(".json")) continue;
    try {
      const pin = JSON.parse(await readFile(join(pins, file), "utf8")) as { digests: string[] };
      for (const d of pin.digests) keep.add(d);
    } catch {
      // an unreadable pin protects nothing
    }
  }
  return keep;
}

/** A temp file (util/fs tempNameFor) this old was left by a writer that died: its write takes milliseconds. */
const TEMP_FILE_MAX_AGE_MS = 10 * 60_000;

/** Removes the temp files dead writers left beside index.json, pins and leases (blobs' are gc candidates). */
async function sweepTempFiles(root: string): Promise<void> {
  for (const dir of [root, join(root, "pins"), join(root, "leases")]) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith(".tmp-")) continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile() && Date.now() - st.mtimeMs > TEMP_FILE_MAX_AGE_MS) await rm(join(dir, name), { force: true });
    }
  }
}

/**
 * Puts back whatever a gc that died between its two steps left parked: one of those blobs may
 * have been claimed, and deleting is never urgent. Safe without the lock: at worst a blob a
 * running gc meant to delete survives until the next one.
 */
export async function restoreTrash(root: string): Promise<void> {
  const trash = join(root, TRASH);
  for (const name of await readdir(trash).catch(() => [] as string[])) {
    const parked = join(trash, name);
    if (!isDigest(`sha256:${name}`)) {
      await rm(parked, { recursive: true, force: true });
      continue;
    }
    await rename(parked, join(root, "blobs", "sha256", name)).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") await unlink(parked).catch(() => undefined);
    });
  }
}
