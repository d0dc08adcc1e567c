/**
 * External tools as independent judges: skopeo (with a permissive policy file) and a hand-made
 * OCI image layout to feed it.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { promises as fs, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";

/** `execFile` as a promise: rejects on a non-zero exit with `code`, `stdout` and `stderr` on the error. */
export const execP = promisify(execFile);

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; resolves with its output, or rejects with an error carrying the exit code and stderr. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env, cwd: opts.cwd },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
          reject(
            Object.assign(new Error(`${cmd} ${args.join(" ")} failed (${String(code ?? err.message)}): ${String(stderr).trim()}`), {
              stderr: String(stderr),
              stdout: String(stdout),
            }),
          );
          return;
        }
        resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

let policyFile: Promise<string> | undefined;

/** The temp policy file `{"default":[{"type":"insecureAcceptAnything"}]}`, created once per process. */
export function skopeoPolicy(): Promise<string> {
  if (!policyFile) {
    policyFile = (async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sealant-skopeo-"));
      const file = path.join(dir, "policy.json");
      await fs.writeFile(file, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
      process.on("exit", () => {
        rmSync(dir, { recursive: true, force: true });
      });
      return file;
    })();
  }
  return policyFile;
}

/** `skopeo --policy <temp policy> ARGS...`; returns stdout or throws with stderr. */
export async function skopeo(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const policy = await skopeoPolicy();
  const env = { ...process.env, REGISTRY_AUTH_FILE: path.join(path.dirname(policy), "auth.json") };
  const { stdout } = await run("skopeo", ["--policy", policy, ...args], { ...opts, env });
  return stdout;
}

export const srcTlsOff = "--src-tls-verify=false";
export const destTlsOff = "--dest-tls-verify=false";
export const tlsOff = "--tls-verify=false";

export interface Creds {
  username: string;
  password: string;
}

/** `skopeo copy` between transports; docker:// endpoints get TLS verification off. */
export async function skopeoCopy(src: string, dest: string, opts: { srcCreds?: Creds; destCreds?: Creds; extra?: string[] } = {}): Promise<void> {
  const args = ["copy"];
  if (src.startsWith("docker://")) args.push(srcTlsOff);
  if (dest.startsWith("docker://")) args.push(destTlsOff);
  if (opts.srcCreds) args.push("--src-creds", `${opts.srcCreds.username}:${opts.srcCreds.password}`);
  if (opts.destCreds) args.push("--dest-creds", `${opts.destCreds.username}:${opts.destCreds.password}`);
  args.push(...(opts.extra ?? []), src, dest);
  await skopeo(args);
}

/** `skopeo inspect` (parsed JSON); `raw` returns the manifest as stored. */
export async function skopeoInspect(ref: string, opts: { raw?: boolean; config?: boolean; creds?: Creds } = {}): Promise<unknown> {
  const args = ["inspect"];
  if (ref.startsWith("docker://")) args.push(tlsOff);
  if (opts.raw) args.push("--raw");
  if (opts.config) args.push("--config");
  if (opts.creds) args.push("--creds", `${opts.creds.username}:${opts.creds.password}`);
  args.push(ref);
  return JSON.parse(await skopeo(args));
}

export interface BlobInfo {
  digest: `sha256:${string}`;
  size: number;
  mediaType: string;
  bytes: Buffer;
}

export interface OciLayoutImage {
  dir: string;
  tag: string;
  manifest: BlobInfo;
  config: BlobInfo;
  layers: BlobInfo[];
}

export function blobInfo(bytes: Buffer, mediaType: string): BlobInfo {
  return { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, size: bytes.length, mediaType, bytes };
}

/** A gzip tar layer holding one file of random bytes. */
export async function randomLayer(fileSize = 4096, name = "data.bin"): Promise<{ gz: Buffer; diffId: string }> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on("data", (c: unknown) => chunks.push(c as Buffer));
    pack.on("end", () => resolve());
    pack.on("error", reject);
  });
  pack.entry({ name, size: fileSize, mode: 0o644, mtime: new Date(0) }, randomBytes(fileSize));
  pack.finalize();
  await done;
  const tarBytes = Buffer.concat(chunks);
  return { gz: gzipSync(tarBytes), diffId: `sha256:${createHash("sha256").update(tarBytes).digest("hex")}` };
}

/**
 * Writes a small OCI image layout by hand (blobs/sha256/*, oci-layout, index.json with the
 * manifest under `org.opencontainers.image.ref.name` = tag): random layers, a linux/amd64 config.
 */
export async function writeOciLayout(dir: string, opts: { tag?: string; layers?: number; layerFileSize?: number } = {}): Promise<OciLayoutImage> {
  const tag = opts.tag ?? "latest";
  await fs.mkdir(path.join(dir, "blobs", "sha256"), { recursive: true });
  const write = async (b: BlobInfo) => fs.writeFile(path.join(dir, "blobs", "sha256", b.digest.slice(7)), b.bytes);
  const layers: BlobInfo[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < (opts.layers ?? 1); i++) {
    const { gz, diffId } = await randomLayer(opts.layerFileSize ?? 4096, `file${i}.bin`);
    const b = blobInfo(gz, "application/vnd.oci.image.layer.v1.tar+gzip");
    layers.push(b);
    diffIds.push(diffId);
    await write(b);
  }
  const config = blobInfo(
    Buffer.from(
      JSON.stringify({ architecture: "amd64", os: "linux", config: { Labels: { "test.sealant": "1" } }, rootfs: { type: "layers", diff_ids: diffIds } }),
    ),
    "application/vnd.oci.image.config.v1+json",
  );
  await write(config);
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifest = blobInfo(Buffer.from(JSON.stringify(manifestDoc)), "application/vnd.oci.image.manifest.v1+json");
  await write(manifest);
  await fs.writeFile(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await fs.writeFile(
    path.join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, annotations: { "org.opencontainers.image.ref.name": tag } }],
    }),
  );
  return { dir, tag, manifest, config, layers };
}

/** A temp dir removed by the returned cleanup. */
export async function tempDir(prefix = "sealant-test-"): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const p = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  return { path: p, cleanup: () => fs.rm(p, { recursive: true, force: true }) };
}
