import { promises as fs } from "node:fs";
import * as path from "node:path";
import { load as loadYaml, YAMLException } from "js-yaml";
import { z } from "zod";
import { registryKey, type Credentials } from "./credentials";
import { parseProxyUrl } from "./registry/proxy";
import { parseRegistryName } from "./registry/validate";

/**
 * One registry model, per registry (host[:port], "*" for every registry not named): where its
 * images are fetched from (mirrors, tried in order, then the registry itself), how to log in, which
 * CA its TLS certificate comes from, whether plain HTTP is allowed, and which HTTP proxy reaches it.
 *
 * The file (`$SEALANT_HOME/registries.yaml`, or `--registries FILE`) has k3s's registries.yaml
 * shape, which containerd users know, with three fields of containerd's hosts.toml added
 * (`plain_http`, the CA as PEM text, `proxy`):
 *
 *   mirrors:
 *     docker.io:
 *       endpoint: ["https://mirror.example.com", "http://10.0.0.5:5000"]
 *   configs:
 *     registry.example.com:5000:
 *       auth: { username: robot, password: ... }
 *       tls: { ca_file: /etc/ssl/private-ca.pem }
 *       proxy: http://proxy.example.com:3128
 *     "*":
 *       plain_http: false
 *
 * Nothing here depends on the cluster code: the host side can turn the same model into
 * containerd's hosts.toml (mirrors → `[host]` entries with capabilities pull/resolve, `ca`,
 * `skip_verify`, plain HTTP → an http:// host) and its CRI auth (`configs.<host>.auth`).
 */
export interface RegistryConfig {
  /** Registry (registryKey form, or "*") → mirror endpoints, in the order they are tried. */
  mirrors: Record<string, MirrorEndpoint[]>;
  /** Host[:port] (registryKey form, or "*") → how to reach it. A mirror endpoint's host has an entry like any registry. */
  hosts: Record<string, RegistryHostSettings>;
  /** The file it was read from, for messages. */
  source?: string;
}

export interface MirrorEndpoint {
  /** host[:port] */
  host: string;
  /** As written: https, or plain http. */
  scheme: "http" | "https";
}

export interface RegistryHostSettings {
  /**
   * Credentials for this host (secrets: never in messages), or a registry token (`token`, sent as
   * a bearer token). They win over `sealant login` and docker's config.
   */
  auth?: Credentials;
  /** Extra CA certificates (PEM) trusted for this host, besides the system ones. */
  ca?: string;
  /** Accept any certificate (containerd's skip_verify). */
  insecureSkipVerify?: boolean;
  /** Reach it over plain HTTP (containerd's plain_http / an http:// endpoint). */
  plainHttp?: boolean;
  /** An HTTP proxy for this host, or "direct" to bypass HTTPS_PROXY/HTTP_PROXY. Unset: the environment decides. */
  proxy?: URL | "direct";
}

export const EMPTY_REGISTRY_CONFIG: RegistryConfig = { mirrors: {}, hosts: {} };

const REGISTRY_NAME = /^(\*|[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?)$/;

const endpointSchema = z.string().superRefine((text, ctx) => {
  const m = /^(https?):\/\/([^/?#]+)\/?(v2\/?)?$/.exec(text);
  if (!m) {
    ctx.addIssue({ code: "custom", message: `"${text}": expected http(s)://host[:port] (no path)` });
    return;
  }
  try {
    parseRegistryName(m[2]!);
  } catch {
    ctx.addIssue({ code: "custom", message: `"${text}": "${m[2]}" is not a host[:port]` });
  }
});

const registryNameKey = z.string().regex(REGISTRY_NAME, 'expected a registry host[:port], or "*" for every registry');

const authSchema = z
  .strictObject({
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** k3s's form: base64 of "username:password". */
    auth: z.string().min(1).optional(),
    /** A registry token sent as a bearer token, instead of a login. */
    token: z.string().min(1).optional(),
  })
  .superRefine((a, ctx) => {
    if (a.token !== undefined) {
      if (a.auth !== undefined || a.username !== undefined || a.password !== undefined) {
        ctx.addIssue({ code: "custom", message: "give either token, or auth, or username and password" });
      }
    } else if (a.auth !== undefined) {
      if (a.username !== undefined || a.password !== undefined)
        ctx.addIssue({ code: "custom", message: "give either auth or username and password, not both" });
      const decoded = Buffer.from(a.auth, "base64").toString("utf8");
      if (decoded.indexOf(":") <= 0) ctx.addIssue({ code: "custom", path: ["auth"], message: 'not base64 of "username:password"' });
    } else if (a.username === undefined || a.password === undefined) {
      ctx.addIssue({ code: "custom", message: "needs username and password (or auth, base64 of username:password, or token)" });
    } else if (a.username.includes(":")) {
      ctx.addIssue({ code: "custom", path: ["username"], message: 'must not contain ":"' });
    }
  });

/**
 * The file's shape, checked field by field (exported: the cluster spec's `registry.registries`
 * takes the very same document, see cluster/spec/registries.ts).
 */
export const registriesFileSchema = z.strictObject({
  mirrors: z.record(registryNameKey, z.strictObject({ endpoint: z.array(endpointSchema).min(1, "list at least one endpoint") })).optional(),
  configs: z
    .record(
      registryNameKey,
      z.strictObject({
        auth: authSchema.optional(),
        tls: z
          .strictObject({
            ca_file: z.string().min(1).optional(),
            ca: z.string().includes("-----BEGIN CERTIFICATE-----", { message: "expected PEM text (-----BEGIN CERTIFICATE-----)" }).optional(),
            insecure_skip_verify: z.boolean().optional(),
          })
          .optional(),
        plain_http: z.boolean().optional(),
        proxy: z
          .string()
          .superRefine((text, ctx) => {
            if (text === "direct") return;
            try {
              parseProxyUrl(text, "proxy");
            } catch (err) {
              ctx.addIssue({ code: "custom", message: `${(err as Error).message.replace(/^proxy: /, "")}, or "direct"` });
            }
          })
          .optional(),
      }),
    )
    .superRefine((configs, ctx) => {
      // Credentials for "every registry" would go to whichever registry an image names.
      if (configs["*"]?.auth !== undefined)
        ctx.addIssue({ code: "custom", path: ["*", "auth"], message: 'credentials belong to one registry; name its host instead of "*"' });
    })
    .optional(),
});

export type RegistriesFile = z.infer<typeof registriesFileSchema>;

/** `configs["registry.example.com"].tls.ca_file` */
export function fieldPath(parts: ReadonlyArray<PropertyKey>): string {
  return parts
    .map((p, i) => (typeof p === "number" ? `[${p}]` : /^[A-Za-z_][\w]*$/.test(String(p)) ? `${i ? "." : ""}${String(p)}` : `[${JSON.stringify(String(p))}]`))
    .join("");
}

/** The default file: `$SEALANT_HOME/registries.yaml`. */
export function defaultRegistriesFile(home: string): string {
  return path.join(home, "registries.yaml");
}

/**
 * Reads a registries file. `required`: a missing file is an error (it was named explicitly);
 * otherwise a missing file is an empty configuration. Every problem is one error naming the file
 * and the field; values that may be secrets are never quoted.
 */
export async function loadRegistryConfig(file: string, opts: { required?: boolean } = {}): Promise<RegistryConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !opts.required) return { ...EMPTY_REGISTRY_CONFIG };
    throw new Error(`registries file ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = loadYaml(text, { filename: file });
  } catch (err) {
    // js-yaml's message quotes the lines around the fault, which may hold a password: keep the position only.
    const mark = err instanceof YAMLException ? err.mark : undefined;
    throw new Error(
      `registries file ${file}: invalid YAML${mark ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : ""}${err instanceof YAMLException ? ` (${err.reason})` : ""}`,
    );
  }
  return parseRegistryConfig(raw ?? {}, file, path.dirname(file));
}

/** Checks and resolves a parsed registries document; `baseDir` anchors relative ca_file paths. */
export async function parseRegistryConfig(raw: unknown, source: string, baseDir: string): Promise<RegistryConfig> {
  const parsed = registriesFileSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    // A bad record key's own complaint is nested one level down.
    const issue = first.code === "invalid_key" && first.issues[0] ? { ...first, message: first.issues[0].message } : first;
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : "";
    throw new Error(`registries file ${source}: ${fieldPath(issue.path) || "(the document)"}: ${issue.message}${more}`);
  }
  return resolve(parsed.data, source, baseDir);
}

async function resolve(file: RegistriesFile, source: string, baseDir: string): Promise<RegistryConfig> {
  const config: RegistryConfig = { mirrors: {}, hosts: {}, source };
  for (const [name, m] of Object.entries(file.mirrors ?? {})) {
    config.mirrors[keyOf(name)] = m.endpoint.map((e) => {
      const u = /^(https?):\/\/([^/?#]+)/.exec(e)!;
      return { scheme: u[1] as "http" | "https", host: u[2]!.toLowerCase() };
    });
  }
  for (const [name, c] of Object.entries(file.configs ?? {})) {
    const settings: RegistryHostSettings = {};
    if (c.auth) {
      if (c.auth.token !== undefined) {
        settings.auth = { username: "", password: "", token: c.auth.token };
      } else if (c.auth.auth !== undefined) {
        const decoded = Buffer.from(c.auth.auth, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        settings.auth = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      } else {
        settings.auth = { username: c.auth.username!, password: c.auth.password! };
      }
    }
    if (c.tls?.ca !== undefined) settings.ca = c.tls.ca;
    if (c.tls?.ca_file !== undefined) {
      const caFile = path.resolve(baseDir, c.tls.ca_file);
      let pem: string;
      try {
        pem = await fs.readFile(caFile, "utf8");
      } catch (err) {
        throw new Error(
          `registries file ${source}: ${fieldPath(["configs", name, "tls", "ca_file"])}: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        );
      }
      if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
        throw new Error(`registries file ${source}: ${fieldPath(["configs", name, "tls", "ca_file"])}: ${caFile} holds no PEM certificate`);
      }
      settings.ca = settings.ca === undefined ? pem : `${settings.ca}\n${pem}`;
    }
    if (c.tls?.insecure_skip_verify !== undefined) settings.insecureSkipVerify = c.tls.insecure_skip_verify;
    if (c.plain_http !== undefined) settings.plainHttp = c.plain_http;
    if (c.proxy !== undefined) settings.proxy = c.proxy === "direct" ? "direct" : parseProxyUrl(c.proxy, "proxy");
    config.hosts[keyOf(name)] = settings;
  }
  return config;
}

function keyOf(name: string): string {
  return name === "*" ? "*" : registryKey(name);
}

/** The mirrors of a registry (its own entry, else the "*" entry), in order; [] when it has none. */
export function mirrorsOf(config: RegistryConfig, registry: string): MirrorEndpoint[] {
  const key = registryKey(registry);
  return (config.mirrors[key] ?? config.mirrors["*"] ?? []).filter((m) => registryKey(m.host) !== key);
}

/** How to reach a host: the "*" entry, overridden field by field by the host's own. */
export function settingsOf(config: RegistryConfig, host: string): RegistryHostSettings {
  return { ...config.hosts["*"], ...config.hosts[registryKey(host)] };
}
