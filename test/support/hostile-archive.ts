/**
 * Hostile tar streams for tests, byte by byte: every header field is written as given, so an
 * entry may say what no well-behaved tar tool would write — `..` and absolute names, links
 * through links, hard links to outside, whiteouts and opaque markers behind a symlink, devices,
 * setuid files, duplicates, a size the data never delivers, a truncated stream, PAX long names.
 * `tarBytes` / `tarGzBytes` build an archive from entries; `hostile` holds ready-made entry
 * lists for the classic attacks; `ociImageEntries` wraps a layer into an OCI image layout so a
 * hostile layer can travel through `load` (and then be built FROM or applied to hosts).
 */
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";

export type HostileEntry =
  | { type: "file"; name: string; content?: string | Buffer; mode?: number; uid?: number; gid?: number; declaredSize?: number }
  | { type: "dir"; name: string; mode?: number }
  | { type: "symlink"; name: string; target: string }
  | { type: "hardlink"; name: string; target: string }
  | { type: "char" | "block"; name: string; major?: number; minor?: number; mode?: number }
  | { type: "fifo"; name: string; mode?: number };

export interface TarOptions {
  /** Cut the stream after this many bytes (a truncated download). */
  truncateAt?: number;
  /** Leave out the two zero blocks that end a tar. */
  noEndBlocks?: boolean;
}

const TYPEFLAG = { file: "0", hardlink: "1", symlink: "2", char: "3", block: "4", dir: "5", fifo: "6" } as const;
const BLOCK = 512;

/** A tar (ustar, with a PAX header before any entry whose name or target does not fit) of exactly these entries. */
export function tarBytes(entries: HostileEntry[], opts: TarOptions = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const target = e.type === "symlink" || e.type === "hardlink" ? e.target : "";
    const body = e.type === "file" ? Buffer.from(e.content ?? "") : Buffer.alloc(0);
    const pax: Record<string, string> = {};
    if (Buffer.byteLength(e.name) > 100) pax.path = e.name;
    if (Buffer.byteLength(target) > 100) pax.linkpath = target;
    if (Object.keys(pax).length > 0) {
      const records = paxRecords(pax);
      parts.push(header({ name: "PaxHeader", type: "x", size: records.length, mode: 0o644 }), padded(records));
    }
    const declared = e.type === "file" ? (e.declaredSize ?? body.length) : 0;
    parts.push(
      header({
        name: pax.path ? e.name.slice(-100) : e.name,
        type: e.type === "dir" ? TYPEFLAG.dir : TYPEFLAG[e.type],
        size: declared,
        mode: "mode" in e && e.mode !== undefined ? e.mode : e.type === "dir" ? 0o755 : e.type === "symlink" ? 0o777 : 0o644,
        uid: e.type === "file" ? (e.uid ?? 0) : 0,
        gid: e.type === "file" ? (e.gid ?? 0) : 0,
        linkname: pax.linkpath ? "" : target,
        devmajor: e.type === "char" || e.type === "block" ? (e.major ?? 1) : 0,
        devminor: e.type === "char" || e.type === "block" ? (e.minor ?? 3) : 0,
      }),
    );
    if (body.length > 0) parts.push(padded(body));
  }
  if (!opts.noEndBlocks) parts.push(Buffer.alloc(2 * BLOCK));
  const all = Buffer.concat(parts);
  return opts.truncateAt === undefined ? all : all.subarray(0, opts.truncateAt);
}

/** The same, gzip-compressed (a truncation then cuts the gzip stream). */
export function tarGzBytes(entries: HostileEntry[], opts: TarOptions = {}): Buffer {
  const gz = gzipSync(tarBytes(entries, { ...(opts.noEndBlocks ? { noEndBlocks: true } : {}) }));
  return opts.truncateAt === undefined ? gz : gz.subarray(0, opts.truncateAt);
}

/** Ready-made attacks; `outside` is a directory the archive must never reach. */
export const hostile = {
  dotdot: (): HostileEntry[] => [{ type: "file", name: "a/../../pwned", content: "x\n" }],
  absolute: (outside: string): HostileEntry[] => [{ type: "file", name: `${outside}/pwned`, content: "x\n" }],
  /** `esc -> outside` and then a file written through it. */
  symlinkThenWrite: (outside: string): HostileEntry[] => [
    { type: "symlink", name: "esc", target: outside },
    { type: "file", name: "esc/pwned", content: "x\n" },
  ],
  /** A link climbing out with `..`, then a file through it. */
  dotdotLinkThenWrite: (): HostileEntry[] => [
    { type: "symlink", name: "up", target: "../../../../../../../../../.." },
    { type: "file", name: "up/tmp/pwned", content: "x\n" },
  ],
  /** Two links: the first relative (harmless on its own), the second out; then a write through both. */
  linkChain: (outside: string): HostileEntry[] => [
    { type: "symlink", name: "a", target: "b" },
    { type: "symlink", name: "b", target: outside },
    { type: "file", name: "a/pwned", content: "x\n" },
  ],
  hardlinkOutside: (file: string): HostileEntry[] => [{ type: "hardlink", name: "h", target: file }],
  /** A hard link whose source is reached through a link out. */
  hardlinkThroughLink: (outside: string, name: string): HostileEntry[] => [
    { type: "symlink", name: "esc", target: outside },
    { type: "hardlink", name: "h", target: `esc/${name}` },
  ],
  /** A whiteout behind a link out: applied, it would delete `outside/<name>`. */
  whiteoutThroughLink: (outside: string, name: string): HostileEntry[] => [
    { type: "symlink", name: "esc", target: outside },
    { type: "file", name: `esc/.wh.${name}` },
  ],
  opaqueThroughLink: (outside: string): HostileEntry[] => [
    { type: "symlink", name: "esc", target: outside },
    { type: "file", name: "esc/.wh..wh..opq" },
  ],
  devices: (): HostileEntry[] => [
    { type: "char", name: "dev/mem", major: 1, minor: 1 },
    { type: "block", name: "dev/sda", major: 8, minor: 0 },
    { type: "fifo", name: "dev/pipe" },
  ],
  setuid: (): HostileEntry[] => [{ type: "file", name: "bin/rootshell", content: "#!/bin/sh\n", mode: 0o4755 }],
  setgid: (): HostileEntry[] => [{ type: "file", name: "bin/groupshell", content: "#!/bin/sh\n", mode: 0o2755 }],
  /** The same name as a directory, then as a link out. */
  duplicateDirThenLink: (outside: string): HostileEntry[] => [
    { type: "dir", name: "d" },
    { type: "file", name: "d/f", content: "inside\n" },
    { type: "symlink", name: "d", target: outside },
  ],
  /** A file claiming 10 GiB with 5 bytes behind it. */
  hugeDeclaredSize: (): HostileEntry[] => [{ type: "file", name: "big", content: "short", declaredSize: 10 * 1024 ** 3 }],
  /** A PAX long name that hides `..` past the 100-byte ustar field. */
  longNameDotdot: (): HostileEntry[] => [{ type: "file", name: `${"d/".repeat(60)}${"../".repeat(64)}pwned`, content: "x\n" }],
  /** A harmless long name (PAX): must be accepted with its full name. */
  longName: (): HostileEntry[] => [{ type: "file", name: `${"long-directory-name/".repeat(8)}file.txt`, content: "long\n" }],
};

/**
 * The tar entries of an OCI image layout holding one image (a config and the given gzip layers),
 * named `ref`: for feeding hostile layers through `load`. `diffIds` overrides the config's list.
 */
export function ociImageEntries(layersGz: Buffer[], ref: string, opts: { diffIds?: string[] } = {}): HostileEntry[] {
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  const diffIds = opts.diffIds ?? layersGz.map((l) => `sha256:${sha(gunzipSync(l))}`);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: diffIds } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${sha(config)}`, size: config.length },
      layers: layersGz.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${sha(l)}`, size: l.length })),
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: `sha256:${sha(manifest)}`,
          size: manifest.length,
          annotations: { "org.opencontainers.image.ref.name": ref },
        },
      ],
    }),
  );
  const blob = (b: Buffer): HostileEntry => ({ type: "file", name: `blobs/sha256/${sha(b)}`, content: b });
  return [
    { type: "file", name: "oci-layout", content: JSON.stringify({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", name: "index.json", content: index },
    blob(config),
    blob(manifest),
    ...layersGz.map(blob),
  ];
}

interface HeaderFields {
  name: string;
  type: string;
  size: number;
  mode: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

function header(h: HeaderFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, "utf8");
  octal(b, 100, 8, h.mode);
  octal(b, 108, 8, h.uid ?? 0);
  octal(b, 116, 8, h.gid ?? 0);
  sizeField(b, h.size);
  octal(b, 136, 12, 0);
  b.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  b.write(h.type, 156, 1, "latin1");
  b.write(h.linkname ?? "", 157, 100, "utf8");
  b.write("ustar\u000000", 257, 8, "latin1");
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, 8, "latin1");
  return b;
}

function octal(b: Buffer, at: number, len: number, value: number): void {
  b.write(`${value.toString(8).padStart(len - 1, "0")}\u0000`, at, len, "latin1");
}

/** Sizes past the 11 octal digits (8 GiB) in base-256, as GNU tar writes them. */
function sizeField(b: Buffer, size: number): void {
  if (size < 8 ** 11) return octal(b, 124, 12, size);
  b[124] = 0x80;
  let v = BigInt(size);
  for (let i = 135; i > 124; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

function paxRecords(fields: Record<string, string>): Buffer {
  let out = "";
  for (const [k, v] of Object.entries(fields)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    out += `${len}${body}`;
  }
  return Buffer.from(out, "utf8");
}

function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}
