/**
 * The `ClusterImage` dynamic provider's implementation: plain functions over the engine, loaded
 * with `require("sealant/provider/impl/cluster-image")` by the thin provider object (which is
 * serialised into Pulumi state and so may capture nothing). No Pulumi import here.
 *
 * The work is the engine's (engine/image resolveImage): this maps inputs to it and its answer
 * to outputs.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { resolveImage, type ResolvedImage } from "../../engine/image/resolve";
import { containsUnknown } from "./unknown";
import {
  authOf,
  failuresOf,
  flag,
  logger,
  normalisedRef,
  openSession,
  plain,
  reference,
  registryAuth,
  registryOf,
  sameJson,
  type Failure,
  type ProviderHooks,
  type RegistryAuth,
} from "./inputs";

export interface ClusterImageInputs {
  /** Any image reference: `registry/repo:tag`, `repo@sha256:...`, `registry/repo:tag@sha256:...`. */
  ref: string;
  registryAuth?: RegistryAuth;
  /** Pull into the local store when missing there. @default true */
  pull?: boolean;
}

export interface ClusterImageOutputs extends ClusterImageInputs {
  pull: boolean;
  /** The digest the reference resolves to (an index for a multi-platform image). */
  digest: string;
  /** `registry/repo:tag@digest`: what a Cluster should be given, so a moved tag changes nothing behind its back. */
  repoDigest: string;
  labels: Record<string, string>;
  /** kube-installer or app-installer. */
  kind: string;
  /** The runtime the image declares (e.g. kubernetes, hooks), when it declares one. */
  runtime?: string;
  runtimeVersion?: string;
  /** The container images cached inside. */
  containerImages: string[];
  /** e.g. ["linux/amd64", "linux/arm64"]. */
  platforms: string[];
  /** Where the digest was resolved: the image's registry, or the local store (registry without it, or unreachable). */
  source: "registry" | "store";
}

/** The inputs (other properties, e.g. the serialised provider Pulumi adds, pass through). */
const inputsSchema = z.looseObject({ ref: reference({ allowDigest: true }), registryAuth, pull: flag });

export async function check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ inputs: Record<string, unknown>; failures: Failure[] }> {
  const r = inputsSchema.safeParse(news);
  return { inputs: news, failures: r.success ? [] : failuresOf(r.error.issues) };
}

/** A new reference (any spelling that normalises differently) or turning pull on is an update; credentials are not part of the image. */
export async function diff(
  _id: string,
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  const changed: string[] = [];
  if (containsUnknown(news["ref"]) || !sameJson(normalisedRef(olds["ref"]), normalisedRef(news["ref"]))) changed.push("ref");
  if (containsUnknown(news["pull"]) || (news["pull"] ?? true) !== (olds["pull"] ?? true)) changed.push("pull");
  return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
}

export async function create(inputs: Record<string, unknown>, hooks?: ProviderHooks): Promise<{ id: string; outs: ClusterImageOutputs }> {
  return { id: randomUUID(), outs: await resolveOuts(inputs, hooks) };
}

export async function update(
  _id: string,
  _olds: Record<string, unknown>,
  news: Record<string, unknown>,
  hooks?: ProviderHooks,
): Promise<{ outs: ClusterImageOutputs }> {
  return { outs: await resolveOuts(news, hooks) };
}

/**
 * Refresh: re-resolves the reference, never pulling. A tag moved in the registry (or, for an
 * image only in the local store, there) comes back with the new digest; an image found
 * nowhere is gone (empty id). A registry that cannot be asked, for an image not in the local
 * store, is an error rather than "gone".
 */
export async function read(
  id: string,
  props: Record<string, unknown> | undefined,
  hooks?: ProviderHooks,
): Promise<{ id: string; props: Record<string, unknown> }> {
  if (!props || typeof props["ref"] !== "string") return { id: "", props: {} };
  const session = await openSession(authOf(props["registryAuth"]), registryOf(props["ref"]));
  try {
    const resolved = await resolveImage(session, props["ref"], { pull: false, log: logger(hooks, `ClusterImage ${props["ref"]}`) });
    if (!resolved) return { id: "", props: {} };
    return { id, props: { ...outsOf(props, resolved) } };
  } finally {
    session.close();
  }
}

/** Nothing to delete: a reference is not owned by the stack; what was pulled stays in the local store (a cache). */
export async function del(_id: string, _props: Record<string, unknown>): Promise<void> {}
export { del as delete };

async function resolveOuts(inputs: Record<string, unknown>, hooks?: ProviderHooks): Promise<ClusterImageOutputs> {
  const ref = inputs["ref"] as string;
  const session = await openSession(authOf(inputs["registryAuth"]), registryOf(ref));
  try {
    const resolved = await resolveImage(session, ref, { pull: inputs["pull"] !== false, log: logger(hooks, `ClusterImage ${ref}`) });
    if (!resolved) throw new Error(`ClusterImage ${ref}: not found in its registry nor in the local store (${session.home})`);
    return outsOf(inputs, resolved);
  } finally {
    session.close();
  }
}

function outsOf(inputs: Record<string, unknown>, r: ResolvedImage): ClusterImageOutputs {
  const auth = authOf(inputs["registryAuth"]);
  return plain({
    ref: inputs["ref"] as string,
    ...(auth ? { registryAuth: auth } : {}),
    pull: inputs["pull"] !== false,
    digest: r.digest,
    repoDigest: r.repoDigest,
    labels: r.labels,
    kind: r.metadata.kind,
    ...(r.metadata.runtime?.type ? { runtime: r.metadata.runtime.type } : {}),
    ...(r.metadata.runtime?.version ? { runtimeVersion: r.metadata.runtime.version } : {}),
    containerImages: [...new Set(r.metadata.containerImages.map((c) => c.image))].sort(),
    platforms: r.platforms,
    source: r.source,
  });
}
