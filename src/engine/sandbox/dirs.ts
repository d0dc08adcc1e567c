import { existsSync } from "node:fs";
import { readdir, readFile, rm, statfs } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, resolve } from "node:path";
import { sealantHome } from "../image/store";
import { STATE } from "./state";
import type { SandboxRef } from "./types";

// Where sandboxes live, which names, directories and real dirs are acceptable, and removing them safely.

const OVERLAYFS_MAGIC = 0x794c7630;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** `$SEALANT_HOME/sandbox`: where sandboxes live by default and what `sandboxList` reads. */
export function sandboxRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(sealantHome(env), "sandbox");
}

export function sandboxDir(ref: SandboxRef, env: NodeJS.ProcessEnv = process.env): string {
  if (typeof ref !== "string") return resolve(ref.dir);
  if (ref.includes("/")) return resolve(ref);
  checkName(ref);
  return join(sandboxRoot(env), ref);
}

export function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new Error(`sandbox name "${name}": use letters, digits, ".", "_" and "-" (up to 63, starting with a letter or digit)`);
}

export function checkDir(dir: string): void {
  // The dir ends up in overlay mount options, where "," and ":" are separators.
  if (/[,:\s\\]/.test(dir))
    throw new Error(`sandbox dir "${dir}": must not contain commas, colons, backslashes or whitespace (it goes into overlay mount options)`);
}

export function checkRealDirs(dirs: string[]): string[] {
  return dirs.map((d) => {
    const n = normalize(d).replace(/\/+$/, "");
    if (
      !isAbsolute(d) ||
      n === "" ||
      n === "/" ||
      d.split("/").includes("..") ||
      ["/proc", "/sys", "/dev", "/run", "/tmp"].some((m) => n === m || n.startsWith(`${m}/`))
    ) {
      throw new Error(`real dir "${d}": expected an absolute path inside the host other than /, /proc, /sys, /dev, /run and /tmp`);
    }
    return n;
  });
}

/** The overlay's upper dir must not itself be on an overlay (the kernel refuses it). */
export async function checkFilesystem(dir: string): Promise<void> {
  let probe = dir;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  const st = await statfs(probe);
  if (st.type === OVERLAYFS_MAGIC)
    throw new Error(
      `sandbox dir ${dir} is on an overlay filesystem, which cannot hold an overlay's upper layer; choose a dir on a real filesystem (e.g. under /tmp or /var/tmp if those are not overlays)`,
    );
}

/** A sandbox dir is removed whole on failure and on `down`: never take over a directory holding anything else. */
export async function checkDirIsOurs(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length && !entries.includes(STATE) && entries.some((e) => e !== ".lock")) {
    throw new Error(`sandbox dir ${dir} exists and holds other files (no ${STATE}); choose a new or empty directory`);
  }
}

/** Refuses to delete anything the machine still has mounted under `dir` (never follows a mount out). */
async function assertNothingMounted(dir: string): Promise<void> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const mounted = info
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
  if (mounted.length) throw new Error(`not removing ${dir}: ${mounted.join(", ")} still mounted`);
}

/** Removes the sandbox's files except the lock held by the caller. */
export async function clearDir(dir: string): Promise<void> {
  await assertNothingMounted(dir);
  for (const entry of await readdir(dir)) if (entry !== ".lock") await rm(join(dir, entry), { recursive: true, force: true });
}

export async function removeDir(dir: string): Promise<void> {
  await assertNothingMounted(dir);
  await rm(dir, { recursive: true, force: true });
}
