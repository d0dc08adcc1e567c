/** A rejected or unreadable archive; names the archive and, when known, the offending entry. */
export class ArchiveError extends Error {
  constructor(
    readonly archive: string,
    readonly entry: string | undefined,
    readonly reason: string,
  ) {
    super(entry === undefined ? `archive ${archive}: ${reason}` : `archive ${archive}: entry "${entry}": ${reason}`);
    this.name = "ArchiveError";
  }
}

/** Turns parser and I/O errors into an ArchiveError that says what is wrong with the archive. */
export function asArchiveError(label: string, err: unknown): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const message = (err as Error)?.message ?? String(err);
  if (/Unexpected end of data/i.test(message)) {
    return new ArchiveError(label, undefined, `is truncated or not a tar archive (${message})`);
  }
  if (/Invalid tar header|Header exceeds|Invalid header|unknown format/i.test(message)) {
    return new ArchiveError(label, undefined, `is not a valid tar archive (${message})`);
  }
  if ((err as NodeJS.ErrnoException)?.code === "ENOENT") return new ArchiveError(label, undefined, "does not exist");
  return new ArchiveError(label, undefined, `cannot be read: ${message}`);
}

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
