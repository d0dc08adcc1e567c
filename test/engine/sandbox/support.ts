/** Helpers for the sandbox tests: process and mount scans, HTTP probes, polling (commands on hosts: test/support/hosts.ts). */
import { readdir, readFile, readlink } from "node:fs/promises";

async function pids(): Promise<number[]> {
  return (await readdir("/proc")).filter((e) => /^\d+$/.test(e)).map(Number);
}

/** The PID namespace of a process ("pid:[4026532...]"), or undefined if it is gone. */
export async function pidNamespace(pid: number): Promise<string | undefined> {
  return readlink(`/proc/${pid}/ns/pid`).catch(() => undefined);
}

/** Live (non-zombie) processes in any of these PID namespaces. */
export async function processesIn(namespaces: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await pids()) {
    const ns = await pidNamespace(pid);
    if (!ns || !namespaces.includes(ns)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (stat && state !== "Z") out.push(pid);
  }
  return out;
}

/** PIDs of processes whose command line contains `marker`. */
export async function processesMatching(marker: string): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await pids()) {
    if (pid === process.pid) continue;
    const cmd = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).replace(/\0/g, " ");
    if (cmd.includes(marker)) out.push(pid);
  }
  return out;
}

/** Processes (any namespace) that have a mount mentioning `path` (as mount point or in its options, e.g. upperdir=). */
export async function mountsMentioning(path: string): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await pids()) {
    const info = await readFile(`/proc/${pid}/mountinfo`, "utf8").catch(() => "");
    if (info.includes(path)) out.push(pid);
  }
  return out;
}

/** GET http://host:port/ from this machine; undefined when nothing answers. */
export async function httpGet(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return await res.text();
  } catch {
    return undefined;
  }
}

export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
