import { dirname, isAbsolute, resolve } from "node:path";
import { load as loadYaml, YAMLException } from "js-yaml";
import { z } from "zod";
import {
  fieldPath,
  loadRegistryConfig,
  parseRegistryConfig,
  registriesFileSchema,
  type RegistriesFile,
  type RegistryConfig,
} from "../../image/registry-config";
import { parseProxyUrl, proxyLabel } from "../../image/registry/proxy";
import { hasControlChars, quote } from "./validators";

/*
 * `registry.registries` of the cluster spec: the registries the hosts' container runtime pulls
 * from, in the very shape (and through the very schema) of the registries file builds, pulls and
 * pushes read (k3s's registries.yaml; see image/registry-config.ts) — mirrors, logins, CAs,
 * plain HTTP, a proxy per registry. A string names such a file (relative to the Clusterfile), so
 * one file serves the operator's builds and the cluster's hosts.
 */

/** The spec's value: the document itself, or the path of a registries file. */
export type RegistriesValue = string | RegistriesFile;

/**
 * containerd takes one proxy for every registry (HTTPS_PROXY in its environment), so the document
 * may name one proxy URL at most; "direct" registries go into NO_PROXY. The problem names the field
 * (never the proxy's credentials), or undefined.
 */
export function hostProxyProblem(doc: RegistriesFile): { path: string[]; message: string } | undefined {
  let first: { name: string; url: URL } | undefined;
  for (const [name, c] of Object.entries(doc.configs ?? {})) {
    if (c.proxy === undefined || c.proxy === "direct") continue;
    let url: URL;
    try {
      url = parseProxyUrl(c.proxy, "proxy");
    } catch {
      continue; // the field's own check says what is wrong with it
    }
    if (first === undefined) first = { name, url };
    else if (url.href !== first.url.href)
      return {
        path: ["configs", name, "proxy"],
        message: `containerd on the hosts reaches every registry through one proxy (HTTPS_PROXY in its environment), and ${fieldPath(["configs", first.name, "proxy"])} already names ${proxyLabel(first.url)}: give the same proxy, or "direct"`,
      };
  }
  return undefined;
}

/** The schema of `registry.registries`: a file path, or the document, checked as registries files are, plus the hosts' one-proxy rule. */
export const registriesSchema = z.union([
  z.string().superRefine((v, ctx) => {
    if (v === "" || hasControlChars(v))
      ctx.addIssue({ code: "custom", message: `${quote(v)} is not a file path (expected a registries.yaml file, or the document itself)` });
  }),
  registriesFileSchema.superRefine((doc, ctx) => {
    const proxy = hostProxyProblem(doc);
    if (proxy) ctx.addIssue({ code: "custom", path: proxy.path, message: proxy.message });
  }),
]);

/**
 * A login in `registries` for the registry that `registry.username`/`password` (or
 * `registry.external`) already logs in to: containerd's CRI takes one login per registry host.
 * (The cluster registry's servers are known only with the hosts: the host side refuses those.)
 */
export function loginGivenTwice(
  r: {
    domain: string;
    port: number;
    username?: string | undefined;
    external?: { domain: string; port?: number | undefined; username?: string | undefined } | undefined;
    registries?: RegistriesValue | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  if (r.registries === undefined || typeof r.registries === "string") return;
  const own = r.external
    ? r.external.username !== undefined
      ? r.external.port === undefined
        ? r.external.domain
        : `${r.external.domain}:${r.external.port}`
      : undefined
    : r.username !== undefined
      ? `${r.domain}:${r.port}`
      : undefined;
  if (own === undefined || r.registries.configs?.[own]?.auth === undefined) return;
  ctx.addIssue({
    code: "custom",
    path: ["registries", "configs", own, "auth"],
    message: `${own} already gets its login from ${r.external ? "registry.external" : "registry.username/password"}: give it in one place`,
  });
}

export interface InlineOptions {
  /** Relative paths are relative to this directory (the Clusterfile's, or the Pulumi program's). */
  baseDir: string;
  readFile: (path: string) => Promise<string>;
}

/**
 * The value made self-contained, so that a changed file is a changed spec: a named registries
 * file read and checked (relative to baseDir), and every `tls.ca_file` read into `tls.ca`
 * (relative to the file that names it). Throws one error naming the field (`problem.path` below
 * `registry.registries`) and the file; never a secret.
 */
export async function inlineRegistries(value: RegistriesValue, o: InlineOptions): Promise<RegistriesFile> {
  let doc: RegistriesFile;
  let base = o.baseDir;
  let where = "";
  if (typeof value === "string") {
    const file = isAbsolute(value) ? value : resolve(o.baseDir, value);
    where = `registries file ${file}: `;
    let text: string;
    try {
      text = await o.readFile(file);
    } catch (err) {
      throw new RegistriesProblem(
        [],
        `cannot read registries file ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`,
      );
    }
    let raw: unknown;
    try {
      raw = loadYaml(text, { filename: file }) ?? {};
    } catch (err) {
      // js-yaml's message quotes the lines around the fault, which may hold a password: the position only.
      const mark = err instanceof YAMLException ? err.mark : undefined;
      throw new RegistriesProblem([], `${where}invalid YAML${mark ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : ""}`);
    }
    const parsed = registriesSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RegistriesProblem([], `${where}${fieldPath(issue.path) || "(the document)"}: ${issue.message}`);
    }
    doc = parsed.data as RegistriesFile;
    base = dirname(file);
  } else {
    doc = structuredClone(value);
  }
  for (const [name, c] of Object.entries(doc.configs ?? {})) {
    const caFile = c.tls?.ca_file;
    if (c.tls === undefined || caFile === undefined) continue;
    const file = isAbsolute(caFile) ? caFile : resolve(base, caFile);
    const at = ["configs", name, "tls", "ca_file"];
    let pem: string;
    try {
      pem = await o.readFile(file);
    } catch (err) {
      throw new RegistriesProblem(
        where ? [] : at,
        `${where ? `${where}${fieldPath(at)}: ` : ""}cannot read CA file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem))
      throw new RegistriesProblem(
        where ? [] : at,
        `${where ? `${where}${fieldPath(at)}: ` : ""}${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      );
    c.tls.ca = c.tls.ca === undefined ? pem : `${c.tls.ca}\n${pem}`;
    delete c.tls.ca_file;
  }
  return doc;
}

/** A problem with `registry.registries`: `path` below it (empty: the field itself, e.g. the file it names). */
export class RegistriesProblem extends Error {
  constructor(
    readonly path: string[],
    message: string,
  ) {
    super(message);
  }
}

/**
 * The hosts' registry model, resolved (what host/user-registries.ts writes): an inlined document
 * as it is; a path not inlined (a spec parsed without its files read) read now, relative to the
 * working directory.
 */
export async function hostRegistryConfig(value: RegistriesValue | undefined): Promise<RegistryConfig> {
  if (value === undefined) return { mirrors: {}, hosts: {} };
  if (typeof value === "string") return loadRegistryConfig(resolve(value), { required: true });
  return parseRegistryConfig(value, "registry.registries", process.cwd());
}
