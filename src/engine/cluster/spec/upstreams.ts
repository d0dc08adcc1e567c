import { z } from "zod";
import { checkedString as checked, portSchema } from "./zod-values";
import { checkUpstreams, type PullThroughUpstream } from "./pull-through-upstream";
import { hasControlChars, hostnameProblem, oneLineSecretProblem, parsePort, quote } from "./validators";

/*
 * `registry.pullThrough` of the cluster spec (its own file: schema.ts holds the rest): the
 * upstream registries the cluster's registry caches for the hosts (host/pull-through.ts). Every
 * value lands in a registry config or containerd's hosts.toml on the hosts, so each is checked
 * where it is written; the password is never shown.
 */

/** A registry domain as image names carry it: a host name, or host:port. */
function registryDomainProblem(v: string): string | undefined {
  const [host = "", port, ...rest] = v.split(":");
  if (rest.length === 0 && hostnameProblem(host) === undefined && (port === undefined || typeof parsePort(port) === "number")) return undefined;
  return `${quote(v)} is not a registry domain: a host name, optionally with :port, as image names start with it (e.g. quay.io, registry.example.com:5000)`;
}

/** Where the cache fetches from: http(s)://host[:port], no path and no login (that goes in username/password). */
function upstreamUrlProblem(v: string): string | undefined {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `${quote(hasControlChars(v) ? "(a value with a control character)" : v)} is not a URL: expected https://host[:port] (e.g. https://quay.io)`;
  }
  if (url.username || url.password) return "must not hold a login (give it as username and password; the value is not shown)";
  if (!/^https?:$/.test(url.protocol) || url.search || url.hash || (url.pathname !== "/" && url.pathname !== ""))
    return `${quote(v)} is not an upstream registry URL: expected http(s)://host[:port] with no path (e.g. https://quay.io)`;
  return undefined;
}

const port = portSchema;

/** One upstream the cluster's registry caches. */
export const pullThroughUpstreamSchema = z
  .strictObject({
    /** The registry domain images are named by: `docker.io`, `quay.io`, `registry.example.com:5000`. */
    domain: checked(registryDomainProblem),
    /** Where the cache fetches from. @default https://registry-1.docker.io for docker.io, else https://<domain> */
    url: checked(upstreamUrlProblem).optional(),
    /** The upstream's login (token-auth registries: Docker Hub, quay.io, Harbor). */
    username: z
      .string()
      .min(1)
      .pipe(checked((v) => (hasControlChars(v) ? `${quote(v)} contains a control character` : undefined)))
      .optional(),
    /** Secret; one line. It reaches the registry hosts only in the cache's 0600 config, on stdin. */
    password: z.string().min(1).pipe(checked(oneLineSecretProblem)).optional(),
    /** The cache's port on every registry server. @default the registry's port + 10 + the upstream's index */
    port: port.optional(),
    /** What hosts try after the caches: nothing (`none`) or the upstream itself. @default "none" */
    fallback: z.enum(["none", "upstream"]).default("none"),
  })
  .superRefine((v, ctx) => {
    if ((v.username === undefined) !== (v.password === undefined))
      ctx.addIssue({ code: "custom", path: [v.username === undefined ? "username" : "password"], message: "give both username and password, or neither" });
  });

/** The upstreams, each domain once. */
export const pullThroughSchema = z.array(pullThroughUpstreamSchema).superRefine((list, ctx) => {
  list.forEach((u, i) => {
    if (list.findIndex((o) => o.domain === u.domain) !== i)
      ctx.addIssue({ code: "custom", path: [i, "domain"], message: `${quote(u.domain)} is listed twice` });
  });
});

export type PullThroughConfig = z.output<typeof pullThroughSchema>;

/** The upstreams as the hosts get them: defaults filled in (URL, port), ports checked against each other and the registry's. */
export function pullThroughUpstreams(config: PullThroughConfig | undefined, registryPort: number): PullThroughUpstream[] {
  const upstreams = (config ?? []).map((u, i) => ({
    domain: u.domain,
    url: u.url ?? (u.domain === "docker.io" ? "https://registry-1.docker.io" : `https://${u.domain}`),
    port: u.port ?? registryPort + 10 + i,
    fallback: u.fallback,
    ...(u.username !== undefined && u.password !== undefined ? { username: u.username, password: u.password } : {}),
  }));
  try {
    checkUpstreams(upstreams, registryPort);
  } catch (err) {
    throw new Error(`registry.pullThrough: ${(err as Error).message}`);
  }
  return upstreams;
}
