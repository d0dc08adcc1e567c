/**
 * What loading one archive has seen so far: filled entry by entry (entries.ts) and checked as a
 * whole once the tar has ended (graph.ts). Its own module so the two read it without importing
 * each other.
 */
import type { Digest } from "../digest";
import type { ArchiveProgress } from "./options";

export interface EntryRecord {
  /** sha256 of the entry's content: duplicates must match it. */
  content: Digest;
}

export interface LoadState {
  label: string;
  entries: Map<string, EntryRecord>;
  /** Blobs that came in this archive, verified against their names and now in the store. */
  blobs: Map<Digest, number>;
  indexJson?: Buffer;
  layoutSeen: boolean;
  progress: ArchiveProgress;
}
