/** Resolves on 'drain' or 'close' of a (streamx or Node) writable. */
export function drained(w: { once(ev: string, fn: () => void): unknown; removeListener(ev: string, fn: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.removeListener("drain", done);
      w.removeListener("close", done);
      resolve();
    };
    w.once("drain", done);
    w.once("close", done);
  });
}
