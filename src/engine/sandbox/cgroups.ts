import { existsSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, readlink, rmdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";

/** Where the machine mounts its cgroup hierarchies; Kubernetes-mode hosts mount their own there. */
export const CGROUP_FS = "/sys/fs/cgroup";

/** One cgroup hierarchy as this process sees it. */
export interface CgroupHierarchy {
  /** The machine's mount point (`/sys/fs/cgroup/cpu`, or `/sys/fs/cgroup` itself on a pure v2 machine). */
  mountPoint: string;
  fstype: "cgroup" | "cgroup2";
  /** Options that mount the same hierarchy again inside a host (`cpu`, `cpu,cpuacct`, `none,name=systemd`, `` for v2). */
  mountOptions: string;
  /** This process's cgroup in it, as a directory on the machine. */
  ownDir: string;
}

export interface CgroupLayout {
  hierarchies: CgroupHierarchy[];
  /** Symbolic links directly under /sys/fs/cgroup (e.g. `cpu,cpuacct` -> `cpu`), recreated inside hosts. */
  links: [string, string][];
}

/** Reads the hierarchies mounted under /sys/fs/cgroup and this process's cgroup in each (v1, v2, or both). */
export async function cgroupLayout(): Promise<CgroupLayout> {
  const [mountinfo, selfCgroup, procCgroups] = await Promise.all([
    readFile("/proc/self/mountinfo", "utf8"),
    readFile("/proc/self/cgroup", "utf8"),
    readFile("/proc/cgroups", "utf8").catch(() => ""),
  ]);
  const controllers = new Set(
    procCgroups
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split(/\s+/)[0]!),
  );
  // "N:cpu,cpuacct:/path" (v1) and "0::/path" (v2)
  const own = new Map<string, string>();
  for (const line of selfCgroup.split("\n").filter(Boolean)) {
    const [, list = "", ...rest] = line.split(":");
    own.set(list, rest.join(":"));
  }
  const hierarchies: CgroupHierarchy[] = [];
  for (const line of mountinfo.split("\n").filter(Boolean)) {
    const [pre, post = ""] = line.split(" - ");
    const f = pre!.split(" ");
    const mountRoot = f[3]!;
    const mountPoint = f[4]!;
    const [fstype, , superOptions = ""] = post.split(" ");
    if (fstype !== "cgroup" && fstype !== "cgroup2") continue;
    if (mountPoint !== CGROUP_FS && !mountPoint.startsWith(`${CGROUP_FS}/`)) continue;
    let key: string;
    let mountOptions: string;
    if (fstype === "cgroup2") {
      key = "";
      mountOptions = "";
    } else {
      const opts = superOptions.split(",");
      const ctl = opts.filter((o) => controllers.has(o));
      const names = opts.filter((o) => o.startsWith("name="));
      key = [...ctl, ...names].join(",");
      mountOptions = ctl.length ? [...ctl, ...names].join(",") : ["none", ...names].join(",");
    }
    const path = own.get(key);
    if (path === undefined) continue;
    const rel = relative(mountRoot, path);
    if (rel.startsWith(".."))
      throw new Error(`this process's cgroup ${path} is outside the ${mountPoint} mount (root ${mountRoot}); sandbox hosts cannot nest their cgroups here`);
    if (hierarchies.some((h) => h.mountPoint === mountPoint)) continue;
    hierarchies.push({ mountPoint, fstype, mountOptions, ownDir: join(mountPoint, rel) });
  }
  const links: [string, string][] = [];
  for (const e of await readdir(CGROUP_FS).catch(() => [] as string[])) {
    const p = join(CGROUP_FS, e);
    if ((await lstat(p)).isSymbolicLink()) links.push([e, await readlink(p)]);
  }
  return { hierarchies, links };
}

/**
 * Creates the child cgroup `name` of this process's cgroup in every hierarchy (cpuset: with the
 * parent's cpus and mems, without which no process may join it) and returns their directories.
 * A leftover directory of that name is reused when it holds no process.
 */
export async function createHostCgroups(layout: CgroupLayout, name: string): Promise<string[]> {
  const dirs: string[] = [];
  try {
    for (const h of layout.hierarchies) {
      const dir = join(h.ownDir, name);
      if (existsSync(dir)) {
        const procs = (await readFile(join(dir, "cgroup.procs"), "utf8")).trim();
        if (procs) throw new Error(`cgroup ${dir} already exists and holds processes (${procs.split("\n").join(", ")}): is another sandbox using the name?`);
      } else {
        await mkdir(dir);
      }
      dirs.push(dir);
      if (h.fstype === "cgroup" && h.mountOptions.split(",").includes("cpuset")) {
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
          const own = (await readFile(join(dir, f), "utf8")).trim();
          if (!own) await writeFile(join(dir, f), (await readFile(join(h.ownDir, f), "utf8")).trim());
        }
      }
    }
    return dirs;
  } catch (err) {
    await removeCgroups(dirs).catch(() => undefined);
    throw err;
  }
}

/** Removes each cgroup directory and everything below it (children first), waiting for exiting processes to leave. */
export async function removeCgroups(dirs: string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const dir of dirs) {
    for (;;) {
      try {
        await removeTree(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "EBUSY" && code !== "ENOTEMPTY") throw err;
        if (Date.now() > deadline) throw new Error(`cgroup ${dir} could not be removed: ${(err as Error).message} (processes left: ${await procsUnder(dir)})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const e of await readdir(dir, { withFileTypes: true })) if (e.isDirectory()) await removeTree(join(dir, e.name));
  await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

async function procsUnder(dir: string): Promise<string> {
  const out: string[] = [];
  const walk = async (d: string) => {
    out.push(...(await readFile(join(d, "cgroup.procs"), "utf8").catch(() => "")).split("\n").filter(Boolean));
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(d, e.name));
  };
  await walk(dir);
  return out.join(", ") || "none";
}
