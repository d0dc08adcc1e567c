import { randomBytes } from "node:crypto";
import { appendFile, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Digest } from "./digest";
import { exists, writeFileAtomic } from "../util/fs";
import { ownerIsGone, processStart } from "../util/lock";

/** What a lease file holds: who writes blobs before naming them, and since when. */
interface LeaseRecord {
  host: string;
  pid: number;
  /** The process's identity beyond its pid (see util/lock), so a reused pid is not taken for it. */
  start?: string;
  started: number;
}

/** What gc learns from the live leases. */
export interface LiveLeases {
  /** Start of the oldest live lease: blobs written since then may belong to an unnamed image. */
  oldest: number | undefined;
  /** Blobs a live operation decided to reuse (see Leases.claim). */
  claimed: Set<string>;
}

/**
 * The store's leases: one file per operation that writes blobs before naming them (pull,
 * load, build, merge), under `<store>/leases/`, plus a `.claims` file beside it listing the
 * blobs it found already stored and decided to reuse.
 *
 * A reuse is the race gc must not lose: the blob is old and, at that moment, no name reaches
 * it. The reuser records its claim *before* it checks that the blob exists; gc moves a
 * candidate aside *before* it reads the claims and puts back what is claimed. Whichever runs
 * first, either gc sees the claim or the reuser sees the blob missing (and fetches it again).
 */
export class Leases {
  /** This process's open leases on this store: a claim goes into each. */
  private readonly open = new Set<string>();

  constructor(private readonly dir: string) {}

  /** Takes a lease; the result releases it. Leases of dead processes on this host are swept first. */
  async take(): Promise<() => Promise<void>> {
    await mkdir(this.dir, { recursive: true });
    await this.live();
    const base = join(this.dir, `${process.pid}-${randomBytes(6).toString("hex")}`);
    const record: LeaseRecord = { host: hostname(), pid: process.pid, start: processStart(process.pid) ?? "-", started: Date.now() - 1000 };
    // The second of slack: file systems with coarse mtimes must not make a fresh blob look older.
    await writeFileAtomic(`${base}.json`, JSON.stringify(record));
    this.open.add(base);
    return async () => {
      this.open.delete(base);
      await rm(`${base}.claims`, { force: true });
      await rm(`${base}.json`, { force: true });
    };
  }

  /** Records that the running operations may reference these blobs; a no-op outside any lease. */
  async claim(digests: Digest[]): Promise<void> {
    if (this.open.size === 0 || digests.length === 0) return;
    const lines = digests.map((d) => `${d}\n`).join("");
    await Promise.all([...this.open].map((base) => appendFile(`${base}.claims`, lines)));
  }

  get active(): boolean {
    return this.open.size > 0;
  }

  /** Reads the live leases, removing those whose process is gone from this host. */
  async live(): Promise<LiveLeases> {
    const out: LiveLeases = { oldest: undefined, claimed: new Set() };
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const bases = new Set(names.filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -".json".length)));
    for (const base of bases) {
      const path = join(this.dir, base);
      let record: LeaseRecord;
      try {
        record = JSON.parse(await readFile(`${path}.json`, "utf8")) as LeaseRecord;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // released meanwhile
        // Unreadable: treat as an operation starting now rather than guess it is over.
        out.oldest = Math.min(out.oldest ?? Infinity, Date.now() - 1000);
        continue;
      }
      if (ownerIsGone({ host: record.host ?? hostname(), pid: record.pid, start: record.start ?? "-", since: "" })) {
        await rm(`${path}.claims`, { force: true });
        await rm(`${path}.json`, { force: true });
        continue;
      }
      out.oldest = Math.min(out.oldest ?? Infinity, record.started);
      const claims = await readFile(`${path}.claims`, "utf8").catch(() => "");
      // A line still being appended is incomplete: its writer has not checked the blob yet.
      for (const line of claims.split("\n")) if (line.length === 71) out.claimed.add(line);
    }
    // A claims file without its lease: the lease was released or swept between the two reads.
    for (const name of names) {
      const base = join(this.dir, name.slice(0, -".claims".length));
      if (name.endsWith(".claims") && !(await exists(`${base}.json`))) await rm(join(this.dir, name), { force: true });
    }
    return out;
  }
}
