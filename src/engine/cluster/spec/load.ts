import { readFile as fsReadFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parseClusterfile, type Locate, type ParsedClusterfile } from "./clusterfile";
import { ClusterSpecError, formatPath, type SpecProblem } from "./errors";
import { inlineRegistries, RegistriesProblem } from "./registries";
import type { ClusterSpec } from "./schema";

/*
 * The only part of the spec module that touches the file system: reading a Clusterfile and the
 * private key files its `pk` / `privateKeyPath` fields name (and an external registry's CA file).
 */

export interface KeyFileOptions {
  /** Relative key and known_hosts paths are relative to this directory (the Clusterfile's). */
  baseDir: string;
  /** `~/` in paths. @default os.homedir() */
  homeDir?: string;
  /** @default fs.promises.readFile as UTF-8 */
  readFile?: (path: string) => Promise<string>;
  /** Where a spec field was written, for messages. @default `Cluster inputs` and the spec path */
  locate?: Locate;
}

function expandPath(p: string, baseDir: string, home: string): string {
  if (p === "~") return home;
  if (p.startsWith("~/")) return join(home, p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

interface SshLike {
  privateKey?: string;
  privateKeyPath?: string;
  knownHosts?: string;
  bastion?: SshLike;
}

/** Every place of the spec that may name a key file: cluster ssh, host groups' ssh, their bastions. */
function sshBlocks(spec: ClusterSpec): { block: SshLike; path: PropertyKey[] }[] {
  const out: { block: SshLike; path: PropertyKey[] }[] = [];
  const add = (block: SshLike | undefined, path: PropertyKey[]): void => {
    if (block === undefined) return;
    out.push({ block, path });
    if (block.bastion !== undefined) out.push({ block: block.bastion, path: [...path, "bastion"] });
  };
  add(spec.ssh, ["ssh"]);
  spec.hosts.forEach((h, i) => add(h.ssh, ["hosts", i, "ssh"]));
  return out;
}

const PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/**
 * Reads the private key files the spec names into `privateKey` (paths relative to `baseDir`,
 * `~/` expanded; the absolute path is kept in `privateKeyPath`) and makes `knownHosts` paths
 * absolute. Returns a new spec; throws `ClusterSpecError` naming every file that cannot be read
 * or holds no private key (never the file's content).
 */
export async function resolveKeyFiles(spec: ClusterSpec, options: KeyFileOptions): Promise<ClusterSpec> {
  const out = structuredClone(spec);
  const home = options.homeDir ?? homedir();
  const read = options.readFile ?? ((p: string) => fsReadFile(p, "utf8"));
  const locate: Locate = options.locate ?? ((p) => ({ source: "Cluster inputs", path: formatPath(p) }));
  const problems: SpecProblem[] = [];
  await Promise.all(
    sshBlocks(out).map(async ({ block, path }) => {
      if (block.knownHosts !== undefined) block.knownHosts = expandPath(block.knownHosts, options.baseDir, home);
      if (block.privateKeyPath === undefined || block.privateKey !== undefined) return;
      const file = expandPath(block.privateKeyPath, options.baseDir, home);
      try {
        const key = await read(file);
        if (!PEM.test(key)) {
          problems.push({ ...locate([...path, "privateKeyPath"]), message: `"${file}" holds no PEM or OpenSSH private key` });
          return;
        }
        block.privateKey = key;
        block.privateKeyPath = file;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : err instanceof Error ? err.message : String(err);
        problems.push({ ...locate([...path, "privateKeyPath"]), message: `cannot read private key file "${file}": ${why}` });
      }
    }),
  );
  const ext = out.registry.external;
  if (ext?.ca !== undefined && !ext.ca.includes("-----BEGIN")) {
    // The external registry's CA named by a file: read here, relative to the Clusterfile, so a changed CA is a changed spec.
    const file = expandPath(ext.ca, options.baseDir, home);
    try {
      const pem = await read(file);
      if (/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem)) ext.ca = pem;
      else problems.push({ ...locate(["registry", "external", "ca"]), message: `"${file}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)` });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : err instanceof Error ? err.message : String(err);
      problems.push({ ...locate(["registry", "external", "ca"]), message: `cannot read CA file "${file}": ${why}` });
    }
  }
  const registries = out.registry.registries;
  if (registries !== undefined) {
    // A registries file the spec names, and the CA files it names, read here: a changed file is a changed spec.
    try {
      out.registry.registries = await inlineRegistries(registries, { baseDir: options.baseDir, readFile: read });
    } catch (err) {
      if (!(err instanceof RegistriesProblem)) throw err;
      problems.push({ ...locate(["registry", "registries", ...err.path]), message: err.message });
    }
  }
  if (problems.length > 0) throw new ClusterSpecError(problems.sort((a, b) => a.path.localeCompare(b.path)));
  return out;
}

export interface LoadClusterfileOptions {
  /** `~/` in key paths. @default os.homedir() */
  homeDir?: string;
  /** @default fs.promises.readFile as UTF-8 */
  readFile?: (path: string) => Promise<string>;
}

/**
 * Reads a Clusterfile (sealer's or sealant's, see `parseClusterfile`) and the private key files
 * it names, relative to the Clusterfile's directory. Throws `ClusterSpecError` with every
 * problem, in the file's own terms (`spec.ssh.pk: cannot read private key file ...`).
 */
export async function loadClusterfile(path: string, options: LoadClusterfileOptions = {}): Promise<ParsedClusterfile> {
  const read = options.readFile ?? ((p: string) => fsReadFile(p, "utf8"));
  const text = await read(path);
  const parsed = parseClusterfile(text, { file: path });
  const keyOptions: KeyFileOptions = { baseDir: dirname(resolve(path)), readFile: read, locate: parsed.locate };
  if (options.homeDir !== undefined) keyOptions.homeDir = options.homeDir;
  try {
    const spec = await resolveKeyFiles(parsed.spec, keyOptions);
    return { ...parsed, spec };
  } catch (err) {
    if (err instanceof ClusterSpecError) throw new ClusterSpecError(err.problems, path);
    throw err;
  }
}
