/** The error an aborted operation fails with: the signal's reason when it is an Error, else an AbortError naming it. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error(reason !== undefined ? String(reason) : "the operation was aborted");
  err.name = "AbortError";
  return err;
}
