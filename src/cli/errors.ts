/** A mistake in how the command was called (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One line (or a short block for multi-error cases like a Kubefile) for the user. */
export function formatError(err: unknown): string {
  if (err instanceof Error) {
    if (process.env.SEALANT_DEBUG && err.stack) return err.stack;
    const cause = err.cause instanceof Error && !err.message.includes(err.cause.message) ? `: ${err.cause.message}` : "";
    return `${err.message}${cause}`;
  }
  return String(err);
}
