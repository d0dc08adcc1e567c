/**
 * Unknown values during `pulumi preview`: the engine sends an input that is not known yet (an
 * output of a resource still to be created) to a dynamic provider as this exact string.
 * Providers must neither fail on it nor act on it (no I/O, no validation of what it stands for).
 */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Whether `value` itself is the unknown sentinel. */
export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

/** Whether `value` is, or contains at any depth (arrays, plain objects, keys too), the unknown sentinel. */
export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) if (k === UNKNOWN || containsUnknown(v)) return true;
  }
  return false;
}
