"use strict";
// Test images made of random data (so gzip cannot shrink them), written straight into an
// OCI image layout's blobs/ directory: a tar with one file per layer, gzip-compressed,
// with its diff_id (sha256 of the tar) and digest computed on the way.
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const { Readable, Transform } = require("node:stream");
const { pipeline } = require("node:stream/promises");

const MiB = 1024 * 1024;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

/** A ustar header for a regular file. */
function tarHeader(name, size, mode = 0o644) {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  h.write(mode.toString(8).padStart(7, "0") + "\0", 100, "ascii");
  h.write("0000000\0", 108, "ascii"); // uid
  h.write("0000000\0", 116, "ascii"); // gid
  h.write(size.toString(8).padStart(11, "0") + "\0", 124, "ascii");
  h.write("14614500000\0", 136, "ascii"); // mtime: 2001-ish, fixed
  h.write("        ", 148, "ascii"); // checksum placeholder
  h.write("0", 156, "ascii"); // regular file
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return h;
}

async function* tarOfRandomFiles(files) {
  for (const f of files) {
    yield tarHeader(f.name, f.size);
    let left = f.size;
    while (left > 0) {
      const n = Math.min(left, MiB);
      yield crypto.randomBytes(n);
      left -= n;
    }
    const pad = (512 - (f.size % 512)) % 512;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

function hashing(hash, counter) {
  return new Transform({
    transform(chunk, _enc, done) {
      hash.update(chunk);
      if (counter) counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

/**
 * Writes a gzip layer holding `files` (random content) into `blobsDir` (an OCI layout's
 * blobs/sha256). Returns { descriptor, diffId }.
 */
async function writeRandomLayer(blobsDir, files, gzipLevel = 1) {
  fs.mkdirSync(blobsDir, { recursive: true });
  const diff = crypto.createHash("sha256");
  const blob = crypto.createHash("sha256");
  const counter = { bytes: 0 };
  const tmp = path.join(blobsDir, `.tmp-layer-${process.pid}-${crypto.randomBytes(4).toString("hex")}`);
  await pipeline(
    Readable.from(tarOfRandomFiles(files)),
    hashing(diff),
    zlib.createGzip({ level: gzipLevel }),
    hashing(blob, counter),
    fs.createWriteStream(tmp),
  );
  const hex = blob.digest("hex");
  fs.renameSync(tmp, path.join(blobsDir, hex));
  return {
    descriptor: { mediaType: OCI_LAYER_GZIP, digest: `sha256:${hex}`, size: counter.bytes },
    diffId: `sha256:${diff.digest("hex")}`,
  };
}

function writeJsonBlob(blobsDir, value, mediaType) {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = crypto.createHash("sha256").update(bytes).digest("hex");
  fs.writeFileSync(path.join(blobsDir, hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/** Config + manifest for `layers` ({descriptor, diffId}); returns the manifest descriptor. */
function writeImage(blobsDir, layers, label) {
  const config = {
    architecture: "amd64",
    os: "linux",
    config: { Labels: { "bench.image": label } },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created_by: `bench layer ${i}` })),
  };
  const configDesc = writeJsonBlob(blobsDir, config, OCI_CONFIG);
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers: layers.map((l) => l.descriptor) };
  return writeJsonBlob(blobsDir, manifest, OCI_MANIFEST);
}

/** A fresh OCI layout holding several tagged images (`images`: [{ tag, layers }]). */
function writeLayoutIndex(layoutDir, tagged) {
  fs.writeFileSync(path.join(layoutDir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: tagged.map(({ tag, manifest }) => ({ ...manifest, annotations: { "org.opencontainers.image.ref.name": tag } })),
  };
  fs.writeFileSync(path.join(layoutDir, "index.json"), JSON.stringify(index));
}

/**
 * The 10 container images of the caching benchmark: 1-4 MiB random layers, 2-3 per image;
 * images 0-4 share one base layer and 5-7 another, as images built FROM the same base do.
 */
const CACHE_SET = [
  { name: "img0", base: "a", own: [2, 1] },
  { name: "img1", base: "a", own: [3] },
  { name: "img2", base: "a", own: [1, 2] },
  { name: "img3", base: "a", own: [4] },
  { name: "img4", base: "a", own: [2, 2] },
  { name: "img5", base: "b", own: [3] },
  { name: "img6", base: "b", own: [1, 3] },
  { name: "img7", base: "b", own: [2] },
  { name: "img8", base: null, own: [3, 1] },
  { name: "img9", base: null, own: [2, 4, 1] },
];
const BASES = { a: 4, b: 3 };

async function makeCacheSetLayout(layoutDir) {
  const blobs = path.join(layoutDir, "blobs", "sha256");
  const bases = {};
  for (const [k, mib] of Object.entries(BASES)) bases[k] = await writeRandomLayer(blobs, [{ name: `base-${k}/lib.bin`, size: mib * MiB }]);
  const tagged = [];
  let uniqueBytes = Object.values(bases).reduce((s, l) => s + l.descriptor.size, 0);
  let referencedBytes = 0;
  for (const img of CACHE_SET) {
    const layers = img.base ? [bases[img.base]] : [];
    for (const [i, mib] of img.own.entries()) {
      const l = await writeRandomLayer(blobs, [{ name: `${img.name}/part${i}.bin`, size: mib * MiB }]);
      uniqueBytes += l.descriptor.size;
      layers.push(l);
    }
    referencedBytes += layers.reduce((s, l) => s + l.descriptor.size, 0);
    tagged.push({ tag: img.name, manifest: writeImage(blobs, layers, img.name), layers: layers.length });
  }
  writeLayoutIndex(layoutDir, tagged);
  const ownLayers = CACHE_SET.reduce((s, i) => s + i.own.length, 0);
  return {
    images: tagged,
    uniqueBytes,
    referencedBytes,
    layers: tagged.reduce((s, t) => s + t.layers, 0),
    uniqueLayers: ownLayers + Object.keys(BASES).length,
  };
}

module.exports = { MiB, writeRandomLayer, writeImage, writeLayoutIndex, makeCacheSetLayout, CACHE_SET, OCI_MANIFEST };
