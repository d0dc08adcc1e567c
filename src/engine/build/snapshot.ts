import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { parentDirectories, type LayerEntry } from "./layer-writer";

interface NodeState {
  type: "file" | "directory" | "symlink";
  mode: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  target?: string;
}

/** The metadata of every path under a root: enough to see what a RUN changed without hashing content. */
export type Snapshot = Map<string, NodeState>;

export async function takeSnapshot(root: string): Promise<Snapshot> {
  const out: Snapshot = new Map();
  async function walk(dir: string, rel: string): Promise<void> {
    const names = await readdir(dir);
    await Promise.all(
      names.map(async (name) => {
        const path = join(dir, name);
        const relPath = rel ? `${rel}/${name}` : name;
        const st = await lstat(path, { bigint: true });
        const base = { mode: Number(st.mode & 0o7777n), size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino };
        if (st.isDirectory()) {
          out.set(relPath, { ...base, type: "directory" });
          await walk(path, relPath);
        } else if (st.isSymbolicLink()) {
          out.set(relPath, { ...base, type: "symlink", target: await readlink(path) });
        } else if (st.isFile()) {
          out.set(relPath, { ...base, type: "file" });
        }
        // sockets, fifos and devices are not part of a cluster image
      }),
    );
  }
  await walk(root, "");
  return out;
}

/**
 * What changed between two snapshots of `root`, as layer entries: added and modified paths
 * (with their ancestor directories, so the layer extracts with the right modes) and
 * whiteouts for deleted ones (only the topmost deleted path of a deleted tree).
 *
 * A directory that became a file or a link (or the reverse) gets a whiteout of its own beside
 * its new entry, and none for what it held: the layer then never has an entry under one of its
 * own links (`d -> x` with `d/.wh.f` would be written through the link by a host's tar), and a
 * host's assembly, which applies a layer's whiteouts before copying it, removes the old tree
 * first (`cp` refuses to put a directory over a link, or a link over a directory).
 */
export function diffSnapshots(root: string, before: Snapshot, after: Snapshot): LayerEntry[] {
  const changed: string[] = [];
  const retyped: string[] = [];
  for (const [path, now] of after) {
    const was = before.get(path);
    if (!was || differs(was, now)) {
      // A directory whose only change is a child's mtime bump is covered by its parents list.
      if (now.type === "directory" && was && was.type === "directory" && was.mode === now.mode) continue;
      changed.push(path);
      if (was && was.type !== now.type && (was.type === "directory" || now.type === "directory")) retyped.push(path);
    }
  }
  const deletedSet = new Set([...before.keys()].filter((p) => !after.has(p)));
  const gone = new Set([...deletedSet, ...retyped]);
  const topDeleted = [...deletedSet].filter((p) => !hasDeletedAncestor(p, gone));
  const entries: LayerEntry[] = [];
  const included = new Set<string>();
  for (const path of changed) {
    const st = after.get(path)!;
    included.add(path);
    if (st.type === "directory") entries.push({ type: "directory", path, mode: st.mode });
    else if (st.type === "symlink") entries.push({ type: "symlink", path, mode: st.mode, target: st.target ?? "" });
    else entries.push({ type: "file", path, mode: st.mode, size: st.size, source: join(root, path) });
  }
  for (const dir of parentDirectories([...changed, ...topDeleted])) {
    if (included.has(dir)) continue;
    const st = after.get(dir);
    if (st && st.type === "directory") {
      included.add(dir);
      entries.push({ type: "directory", path: dir, mode: st.mode });
    }
  }
  for (const path of [...topDeleted, ...retyped]) entries.push({ type: "whiteout", path });
  return entries;
}

function differs(a: NodeState, b: NodeState): boolean {
  return (
    a.type !== b.type ||
    a.mode !== b.mode ||
    a.size !== b.size ||
    a.mtimeNs !== b.mtimeNs ||
    a.ctimeNs !== b.ctimeNs ||
    a.ino !== b.ino ||
    a.target !== b.target
  );
}

function hasDeletedAncestor(path: string, deleted: Set<string>): boolean {
  for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) {
    if (deleted.has(path.slice(0, i))) return true;
  }
  return false;
}
