/**
 * The ImageBuild resource's inputs as a zod schema: each bad field one failure, in the user's
 * terms, named by its path (`buildArgs.1x`, `platforms[2]`). Values not known yet during
 * preview pass. Whether the context and the Kubefile exist is asked of the engine afterwards.
 */
import { z } from "zod";
import { parsePlatform, platformString } from "../../engine/image/types";
import { describeValue, flag, orUnknown, reference, referenceText, registryAuth } from "./inputs";
import { isUnknown } from "./unknown";

const KUBEFILE_FORMS = 'expected a path relative to the context or { text: "..." }';

const context = orUnknown(
  z
    .string({ error: (iss) => `the build context directory is required (a path), got ${describeValue(iss.input)}` })
    .min(1, { error: (iss) => `the build context directory is required (a path), got ${describeValue(iss.input)}` }),
);

/** `{ text }` and nothing else. */
const inlineKubefile = z.looseObject({ text: z.unknown() }).superRefine((v, ctx) => {
  const extra = Object.keys(v).filter((k) => k !== "text");
  if (typeof v.text !== "string" || extra.length > 0)
    ctx.addIssue({ code: "custom", message: `${KUBEFILE_FORMS}${extra.length ? ` (unknown: ${extra.join(", ")})` : ""}` });
});

const kubefile = orUnknown(
  z.union([z.string().min(1, { error: (iss) => `${KUBEFILE_FORMS}, got ${describeValue(iss.input)}` }), inlineKubefile], {
    error: (iss) => `${KUBEFILE_FORMS}, got ${describeValue(iss.input)}`,
  }),
).nullish();

const buildArgs = orUnknown(
  z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "a build argument name is letters, digits and _, not starting with a digit" }),
    orUnknown(z.string({ error: (iss) => `expected a string, got ${describeValue(iss.input)}` })),
    { error: (iss) => `expected a map of NAME to string value, got ${describeValue(iss.input)}` },
  ),
).nullish();

const platform = orUnknown(
  z.string({ error: (iss) => `expected os/arch such as linux/amd64, got ${describeValue(iss.input)}` }).superRefine((v, ctx) => {
    try {
      parsePlatform(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  }),
);

const platforms = orUnknown(
  z.array(platform, { error: (iss) => `expected a list such as ["linux/amd64", "linux/arm64"], got ${describeValue(iss.input)}` }).superRefine(
    (list, ctx) => {
      if (!Array.isArray(list)) return;
      const seen = new Set<string>();
      list.forEach((p, i) => {
        if (typeof p !== "string" || isUnknown(p)) return;
        let key: string;
        try {
          key = platformString(parsePlatform(p));
        } catch {
          return;
        }
        if (seen.has(key)) ctx.addIssue({ code: "custom", path: [i], message: `${key} is listed twice` });
        seen.add(key);
      });
    },
    // Also when another entry is bad: every bad entry is named at once.
    { when: () => true },
  ),
).nullish();

const push = orUnknown(
  z.union([z.boolean(), referenceText({ allowDigest: false })], {
    error: (iss) => `expected true (push to the tag) or a reference to push to, got ${describeValue(iss.input)}`,
  }),
).nullish();

/** The inputs (other properties, e.g. the serialised provider Pulumi adds, pass through). */
export const imageBuildInputs = z.looseObject({
  tag: reference({ allowDigest: false }),
  push,
  registryAuth,
  noCache: flag,
  buildArgs,
  platforms,
  context,
  kubefile,
});
