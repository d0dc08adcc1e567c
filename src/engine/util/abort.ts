/** The error an aborted operation fails with: the signal's reason when it is an Error, else an AbortError naming it. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error(reason !== undefined ? String(reason) : "the operation was aborted");
  err.name = "AbortError";
  return err;
}

/** The reason a command's signal is aborted with when the process gets SIGINT or SIGTERM. */
export class InterruptedError extends Error {
  constructor(readonly signalName: NodeJS.Signals) {
    super(`interrupted by ${signalName}`);
    this.name = "InterruptedError";
  }
}
