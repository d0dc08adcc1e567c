import { z } from "zod";
import { checkedString as checked, portSchema } from "./zod-values";
import { hasControlChars, hostnameProblem, oneLineSecretProblem, quote, registryUserProblem } from "./validators";

/*
 * `registry.external` of the cluster spec (its own file: schema.ts holds the rest). Every value
 * here lands in host files (hosts.toml, containerd's config) or registry requests, so each is
 * checked, naming the field; the password is never shown.
 */

/** A registry repository path: `/`-separated lower-case components (distribution's grammar). */
function repositoryPathProblem(v: string): string | undefined {
  const component = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
  if (v.length > 200 || !v.split("/").every((c) => component.test(c)))
    return `${quote(v)} is not a repository path: "/"-separated components of lower-case letters, digits and single ".", "_" or "-" between them (e.g. sealant)`;
  return undefined;
}

/** A CA certificate as PEM text (`-----BEGIN CERTIFICATE-----`), or the path of a file holding one (read when the cluster is opened). */
function caProblem(v: string): string | undefined {
  if (v === "") return "must not be empty";
  if (v.includes("-----BEGIN")) {
    if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(v))
      return "holds a PEM block that is not a certificate (expected -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)";
  } else if (hasControlChars(v)) {
    return `${quote(v)} is neither PEM certificate text nor a file path (it holds a control character)`;
  }
  return undefined;
}

const port = portSchema;

/**
 * A registry the cluster uses instead of running its own (Harbor, a cloud registry): the image's
 * container images are pushed there, and every host's container runtime pulls them from it,
 * under their original names, trusting `ca` and logging in with username/password.
 */
export const externalRegistrySchema = z
  .strictObject({
    /** Its host name (or IPv4 address), as the hosts and this machine reach it. */
    domain: checked(hostnameProblem),
    /** @default 443 (the domain alone is the registry's name) */
    port: port.optional(),
    /** Repositories go under this path (a Harbor project: `sealant` gives `sealant/docker.io/library/nginx`). */
    namespace: checked(repositoryPathProblem).optional(),
    /** Given to the hosts' container runtime for pulls, and used for the push. */
    username: z.string().min(1).pipe(checked(registryUserProblem)).optional(),
    /** Secret; one line. */
    password: z
      .string()
      .pipe(checked((v) => oneLineSecretProblem(v) ?? (v === "" ? "must not be empty" : undefined)))
      .optional(),
    /** The CA its certificate is signed by, when not a public one: PEM text or a file path. */
    ca: checked(caProblem).optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.username === undefined) !== (v.password === undefined))
      ctx.addIssue({ code: "custom", message: "give both username and password, or neither", path: [v.username === undefined ? "username" : "password"] });
  });

export type ExternalRegistryConfig = z.output<typeof externalRegistrySchema>;
