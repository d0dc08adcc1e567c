import { z } from "zod";
import { parsePort } from "./validators";

/** A string check that reports the problem its validator words (with the bad value). */
export function checkedString(check: (v: string) => string | undefined): z.ZodString {
  return z.string().superRefine((v, ctx) => {
    const problem = check(v);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });
}

/** A value YAML may give as a number or a string (`22`, `"22"`, `10s`), parsed by `parse` into T or the problem's words. */
export function numberOrString<T>(parse: (v: number | string) => T | string) {
  return z.union([z.number(), z.string()]).transform((v, ctx): T => {
    const r = parse(v);
    if (typeof r === "string") {
      ctx.addIssue({ code: "custom", message: r });
      return z.NEVER;
    }
    return r;
  });
}

/** A TCP port, 1-65535, as a number or a numeric string. */
export const portSchema = numberOrString<number>(parsePort);
