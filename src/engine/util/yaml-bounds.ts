/**
 * YAML anchors and aliases load as shared references, so a few hundred bytes (`a1: [*a0, *a0,
 * ...]`, nine levels deep) load instantly and then take gigabytes in the first walk that copies,
 * validates or prints the value: "a billion laughs". Go's YAML reader (Kubernetes, sealer)
 * refuses documents whose aliases expand too far; this is the same guard for every YAML sealant
 * reads from users or images, checked right after loading and before anything walks the value.
 */

/** More nodes than any real Clusterfile or manifest has once aliases are expanded. */
export const MAX_EXPANDED_NODES = 1_000_000;

export class ExcessiveAliasingError extends Error {
  constructor(where: string, limit: number) {
    super(`${where}: its aliases (*name) expand to more than ${limit.toLocaleString("en")} values: refused (a "billion laughs" document?)`);
    this.name = "ExcessiveAliasingError";
  }
}

/**
 * Throws if `value`, with every shared reference (alias) counted at each place it appears, has
 * more than `limit` nodes. Each distinct object is sized once (memoised), so the check itself is
 * linear in the loaded document, not in its expansion.
 */
export function checkExpandedSize(value: unknown, where: string, limit = MAX_EXPANDED_NODES): void {
  const sizes = new Map<object, number>();
  const sizeOf = (v: unknown, depth: number): number => {
    if (v === null || typeof v !== "object") return 1;
    const known = sizes.get(v);
    if (known !== undefined) return known;
    // js-yaml refuses cycles and nesting over 100; this is the backstop for values built otherwise.
    if (depth > 1000) throw new ExcessiveAliasingError(where, limit);
    sizes.set(v, limit + 1); // a cycle reached from itself counts as too big
    let total = 1;
    if (!ArrayBuffer.isView(v)) {
      for (const child of Array.isArray(v) ? v : Object.values(v)) {
        total += sizeOf(child, depth + 1);
        if (total > limit) break;
      }
    }
    sizes.set(v, total);
    return total;
  };
  if (sizeOf(value, 0) > limit) throw new ExcessiveAliasingError(where, limit);
}
