import { z } from "zod";
import { sealerEnv } from "./sealer-checks";
import { isMapping } from "./yaml";

/*
 * sealer's Clusterfile documents, field for field (sealer's types/api/v2 Cluster and
 * Application, types/api/v1 Config and Plugin). These schemas only describe the shape: they
 * let YAML scalars land as the right type (`passwd: 123456` is the string "123456") and catch
 * unknown fields in sealer's own spelling. The values are then checked by sealant's schema,
 * after `sealerClusterToInput` & co. rename them, and problems are reported back at sealer's
 * field names by the matching `...Path` function.
 */

const str = z.string().optional();
const strList = z.array(z.string()).optional();
const num = z.union([z.number(), z.string()]).optional();
const strMap = z.record(z.string(), z.string()).optional();

/** metav1.ObjectMeta as Clusterfiles carry it (sealer writes `creationTimestamp: null`). */
export const objectMetaSchema = z.strictObject({
  name: z.string().optional(),
  namespace: str,
  labels: strMap,
  annotations: strMap,
  creationTimestamp: z.union([z.string(), z.null()]).optional(),
  uid: str,
  resourceVersion: str,
  generation: z.number().optional(),
});

/** sealer v1.SSH. `pk` is a key file path, `passwd` a password, `pkPasswd` the key's passphrase. */
const sealerSshSchema = z.strictObject({
  encrypted: z.boolean().optional(),
  user: str,
  passwd: str,
  pk: str,
  pkPasswd: str,
  port: num,
});

const sealerHostSchema = z.strictObject({
  ips: strList,
  roles: strList,
  ssh: sealerSshSchema.optional(),
  env: strList,
  labels: strMap,
  taints: strList,
});

// A registry port is an int in sealer's type: "5000" in quotes is refused by its decoder (an ssh port is a string there, and either is read).
const registryConfigFields = { domain: str, port: z.number().optional(), username: str, password: str };

const sealerClusterSpecSchema = z.strictObject({
  image: str,
  env: strList,
  cmd_args: strList,
  cmd: strList,
  appNames: strList,
  hosts: z.array(sealerHostSchema).optional(),
  ssh: sealerSshSchema.optional(),
  containerRuntime: z.strictObject({ type: str }).optional(),
  hostAliases: z.array(z.strictObject({ ip: str, hostnames: strList })).optional(),
  registry: z
    .strictObject({
      localRegistry: z
        .strictObject({
          ...registryConfigFields,
          ha: z.boolean().optional(),
          insecure: z.boolean().optional(),
          cert: z.strictObject({ subjectAltName: z.strictObject({ dnsNames: strList, ips: strList }).optional() }).optional(),
        })
        .optional(),
      externalRegistry: z.strictObject(registryConfigFields).optional(),
      /** sealant's extension: the hosts' registries (k3s's registries.yaml shape, or its path), checked by the cluster spec. */
      registries: z.unknown().optional(),
    })
    .optional(),
  dataRoot: str,
});

function docSchema<S extends z.ZodType>(spec: S) {
  return z.strictObject({
    apiVersion: z.string().optional(),
    kind: z.string(),
    metadata: objectMetaSchema.optional(),
    spec: spec.optional(),
    status: z.unknown().optional(),
  });
}

export const sealerClusterDocSchema = docSchema(sealerClusterSpecSchema);

/** sealer v1 Config. `data` is a string in sealer's type: a mapping (shown in some of its docs) is refused by its decoder. */
export const sealerConfigDocSchema = docSchema(
  z.strictObject({
    strategy: str,
    process: str,
    data: str,
    path: str,
    appName: str,
  }),
);

/** sealer v1 Plugin: `scope` in current sealer, `on` in v0.8; sealant's MODULE type adds module, config, timeout and secrets. */
export const sealerPluginDocSchema = docSchema(
  z.strictObject({
    type: str,
    data: str,
    action: str,
    scope: str,
    on: str,
    module: str,
    config: z.unknown().optional(),
    timeout: z.union([z.string(), z.number()]).optional(),
    secrets: z.boolean().optional(),
  }),
);

/** sealer v2 Application. */
export const sealerApplicationDocSchema = docSchema(
  z.strictObject({
    cmds: z.union([z.array(z.string()), z.null()]).optional(),
    launchApps: strList,
    configs: z
      .array(
        z.strictObject({
          name: str,
          env: strList,
          launch: z.strictObject({ cmds: strList }).optional(),
          files: z.array(z.strictObject({ path: str, strategy: str, data: str })).optional(),
        }),
      )
      .optional(),
  }),
);

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return isMapping(v) ? v : {};
}

/** Copies the fields that are present (sealer's empty strings count as absent). */
function pick(source: Obj, rename: Record<string, string>): Obj {
  const out: Obj = {};
  for (const [from, to] of Object.entries(rename)) {
    const v = source[from];
    if (v !== undefined && v !== null && v !== "") out[to] = v;
  }
  return out;
}

/** sealer ssh field → sealant's. */
const SSH_RENAME: Record<string, string> = { user: "user", passwd: "password", pk: "privateKeyPath", pkPasswd: "passphrase", port: "port" };
const SSH_BACK: Record<string, string> = Object.fromEntries(Object.entries(SSH_RENAME).map(([a, b]) => [b, a]));

function sshToInput(v: unknown): Obj | undefined {
  const ssh = pick(obj(v), SSH_RENAME);
  return Object.keys(ssh).length > 0 ? ssh : undefined;
}

function joinRoot(dataRoot: string, name: string): string {
  return `${dataRoot.replace(/\/+$/, "")}/${name}/`;
}

/**
 * A sealer Cluster document as sealant inputs (without plugins, configs and the Application,
 * which are separate documents). `dataRoot` is sealer's parent directory: the cluster's files
 * are in `<dataRoot>/<name>/`, which is sealant's `dataRoot`.
 */
export function sealerClusterToInput(doc: unknown): Obj {
  const d = obj(doc);
  const spec = obj(d["spec"]);
  const name = obj(d["metadata"])["name"];
  const input: Obj = { name, image: spec["image"] };
  if (Array.isArray(spec["hosts"])) {
    input["hosts"] = spec["hosts"].map((h: unknown) => {
      const host = obj(h);
      const out = pick(host, { ips: "ips", roles: "roles", env: "env", labels: "labels", taints: "taints" });
      if (out["env"] !== undefined) out["env"] = sealerEnv(out["env"], "host-group");
      const ssh = sshToInput(host["ssh"]);
      if (ssh !== undefined) out["ssh"] = ssh;
      return out;
    });
  } else if (spec["hosts"] !== undefined) {
    input["hosts"] = spec["hosts"];
  }
  const ssh = sshToInput(spec["ssh"]);
  if (ssh !== undefined) input["ssh"] = ssh;
  if (spec["env"] !== undefined) input["env"] = sealerEnv(spec["env"]);
  const apps = pick(spec, { appNames: "launch", cmd: "cmds" });
  if (Array.isArray(spec["cmd_args"])) {
    // sealer's cmd_args is a list of KEY=VALUE (an entry without "=" is warned about and left out).
    const args: Record<string, string> = {};
    for (const a of spec["cmd_args"]) {
      if (typeof a !== "string" || !a.includes("=")) continue;
      args[a.slice(0, a.indexOf("="))] = a.slice(a.indexOf("=") + 1);
    }
    if (Object.keys(args).length > 0) apps["args"] = args;
  }
  if (Object.keys(apps).length > 0) input["apps"] = apps;
  const registry = obj(spec["registry"]);
  const external = registry["externalRegistry"];
  const local = obj(registry["localRegistry"]);
  if (isMapping(external)) {
    // sealer's port 0 (or none) means the domain alone names the registry.
    const { port, ...rest } = pick(external, { domain: "domain", port: "port", username: "username", password: "password" });
    input["registry"] = { external: port === 0 || port === "0" || port === undefined ? rest : { ...rest, port } };
  } else if (Object.keys(local).length > 0) {
    const r = pick(local, { domain: "domain", port: "port", username: "username", password: "password", ha: "ha", insecure: "insecure" });
    const san = obj(obj(local["cert"])["subjectAltName"]);
    const names = [...(Array.isArray(san["dnsNames"]) ? san["dnsNames"] : []), ...(Array.isArray(san["ips"]) ? san["ips"] : [])];
    if (names.length > 0) r["subjectAltNames"] = names;
    input["registry"] = r;
  }
  if (registry["registries"] !== undefined) input["registry"] = { ...obj(input["registry"]), registries: registry["registries"] };
  const runtimeType = obj(spec["containerRuntime"])["type"];
  if (typeof runtimeType === "string" && runtimeType !== "") input["runtime"] = { containerRuntime: { type: runtimeType } };
  if (spec["hostAliases"] !== undefined) input["hostAliases"] = spec["hostAliases"];
  if (typeof spec["dataRoot"] === "string" && spec["dataRoot"] !== "" && typeof name === "string") {
    input["dataRoot"] = spec["dataRoot"].startsWith("/") ? joinRoot(spec["dataRoot"], name) : spec["dataRoot"];
  }
  return input;
}

function sshPath(rest: readonly PropertyKey[]): PropertyKey[] {
  const [field, ...tail] = rest;
  return typeof field === "string" && SSH_BACK[field] !== undefined ? [SSH_BACK[field], ...tail] : [...rest];
}

/** Where a problem at a path of `sealerClusterToInput`'s result is in the sealer document. */
export function sealerClusterPath(doc: unknown): (path: readonly PropertyKey[]) => PropertyKey[] {
  const registry = obj(obj(obj(doc)["spec"])["registry"]);
  const which = isMapping(registry["externalRegistry"]) ? "externalRegistry" : "localRegistry";
  return (path) => {
    const [head, ...rest] = path;
    switch (head) {
      case "name":
        return ["metadata", "name"];
      case "ssh":
        return ["spec", "ssh", ...sshPath(rest)];
      case "hosts":
        if (rest[1] === "ssh") return ["spec", "hosts", rest[0] as PropertyKey, "ssh", ...sshPath(rest.slice(2))];
        return ["spec", "hosts", ...rest];
      case "apps": {
        const [field, ...tail] = rest;
        const back: Record<string, string> = { launch: "appNames", cmds: "cmd", args: "cmd_args" };
        return ["spec", back[String(field)] ?? "apps", ...tail];
      }
      case "registry": {
        if (rest[0] === "subjectAltNames") return ["spec", "registry", which, "cert", "subjectAltName"];
        if (rest[0] === "external") return ["spec", "registry", "externalRegistry", ...rest.slice(1)];
        if (rest[0] === "registries") return ["spec", "registry", ...rest];
        return ["spec", "registry", which, ...rest];
      }
      case "runtime":
        return ["spec", "containerRuntime", "type"];
      default:
        return ["spec", ...path];
    }
  };
}

/** A sealer Config document as a sealant config entry. */
export function sealerConfigToInput(doc: unknown): Obj {
  const d = obj(doc);
  return {
    name: obj(d["metadata"])["name"],
    ...pick(obj(d["spec"]), { path: "path", data: "data", strategy: "strategy", process: "process", appName: "appName" }),
  };
}

/** A sealer Plugin document as a sealant plugin entry (`on` read as the scope when `scope` is not set). */
export function sealerPluginToInput(doc: unknown): Obj {
  const d = obj(doc);
  const spec = obj(d["spec"]);
  const out: Obj = {
    name: obj(d["metadata"])["name"],
    ...pick(spec, { type: "type", action: "action", data: "data", module: "module", config: "config", timeout: "timeout", secrets: "secrets" }),
  };
  const scope = spec["scope"] ?? spec["on"];
  if (scope !== undefined && scope !== null && scope !== "") out["scope"] = scope;
  if (out["data"] === undefined && out["type"] !== "MODULE") out["data"] = "";
  return out;
}

export function sealerPluginPath(doc: unknown): (path: readonly PropertyKey[]) => PropertyKey[] {
  const spec = obj(obj(doc)["spec"]);
  return (path) => {
    if (path[0] === "name") return ["metadata", "name"];
    if (path[0] === "scope" && (spec["scope"] === undefined || spec["scope"] === null || spec["scope"] === "")) return ["spec", "on", ...path.slice(1)];
    return ["spec", ...path];
  };
}

/** `metadata.name` for `name`, `spec.<field>` for everything else (Config). */
export function specPath(path: readonly PropertyKey[]): PropertyKey[] {
  return path[0] === "name" ? ["metadata", "name"] : ["spec", ...path];
}

/** A sealer Application document as sealant `apps`. */
export function sealerApplicationToInput(doc: unknown): Obj {
  return pick(obj(obj(doc)["spec"]), { launchApps: "launch", cmds: "cmds", configs: "configs" });
}

export function sealerApplicationPath(path: readonly PropertyKey[]): PropertyKey[] {
  const back: Record<string, string> = { launch: "launchApps", cmds: "cmds", configs: "configs" };
  return ["spec", back[String(path[0])] ?? String(path[0]), ...path.slice(1)];
}

/** What sealer accepts but sealant cannot honour, at sealer paths. */
export function sealerClusterProblems(doc: unknown): { path: PropertyKey[]; message: string }[] {
  const spec = obj(obj(doc)["spec"]);
  const out: { path: PropertyKey[]; message: string }[] = [];
  const registry = obj(spec["registry"]);
  if (isMapping(registry["localRegistry"]) && isMapping(registry["externalRegistry"])) {
    out.push({ path: ["spec", "registry"], message: "give localRegistry or externalRegistry, not both" });
  }
  return out;
}
