import type { Session } from "../session";
import { pullImage } from "../image/transfer";
import { ImageNotFoundError } from "../image/store";
import { buildImage, type BuildOptions, type BuildResult } from "./builder";

export { buildImage } from "./builder";
export type { BuildEvent, BuildOptions, BuildResult, BuiltLayer } from "./builder";
export { BuildInputError } from "./context";
export { buildPlatforms, contextDir, hashContext, parseKubefiles, readKubefile, type KubefileSource } from "./inputs";
export * from "./kubefile";
export { discoverImages } from "./discovery";
export { cacheImages } from "./image-cache";

export type BuildRequest = Omit<BuildOptions, "store" | "sourceFor" | "resolveBase">;

/**
 * Builds with a session's store and registries: a FROM image missing from the store is
 * pulled first (all its platforms).
 */
export async function build(session: Session, req: BuildRequest): Promise<BuildResult> {
  return buildImage({
    ...req,
    store: session.store,
    sourceFor: session.sourceFor,
    resolveBase: async (ref) => {
      try {
        return (await session.store.resolve(ref)).descriptor;
      } catch (err) {
        if (!(err instanceof ImageNotFoundError)) throw err;
      }
      const pulled = await pullImage(session.store, ref, { clientFor: session.clientFor, ...(req.signal ? { signal: req.signal } : {}) });
      return (await session.store.resolve(pulled.ref)).descriptor;
    },
  });
}
