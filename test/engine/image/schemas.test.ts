import { describe, expect, it } from "vitest";
import { sha256 } from "../../../src/engine/image/digest";
import { MediaType } from "../../../src/engine/image/media-types";
import { checkDocumentSize, parseImageConfig, parseIndex, parseManifest, parseManifestDocument } from "../../../src/engine/image/schemas";

const digest = sha256("x");
const desc = { mediaType: MediaType.ociLayerGzip, digest, size: 1 };
const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: { ...desc, mediaType: MediaType.ociConfig }, layers: [desc] };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe("parseManifestDocument", () => {
  it("GIVEN a valid manifest, an index, or a document without mediaType THEN its kind comes from the document, the registry's type, or its shape", () => {
    expect(parseManifestDocument(json(manifest), "m").kind).toBe("manifest");
    const { mediaType: _omit, ...bare } = manifest;
    expect(parseManifestDocument(json(bare), "m", MediaType.dockerManifest).mediaType).toBe(MediaType.dockerManifest);
    expect(parseManifestDocument(json({ schemaVersion: 2, manifests: [{ ...desc, mediaType: MediaType.ociManifest }] }), "i").kind).toBe("index");
  });

  it("GIVEN documents that are wrong in one field THEN the error names the document and the field", () => {
    const fails = (doc: unknown, declared?: string) => () => parseManifestDocument(Buffer.isBuffer(doc) ? doc : json(doc), "manifest r:1", declared);
    expect(fails(Buffer.from("not json"))).toThrow('manifest r:1: not JSON (it starts with "not json")');
    expect(fails({ ...manifest, layers: undefined })).toThrow("manifest r:1: layers: Invalid input: expected array, received undefined");
    expect(fails({ ...manifest, layers: [{ ...desc, size: -1 }] })).toThrow(/^manifest r:1: layers\[0\]\.size: /);
    expect(fails({ ...manifest, config: { ...desc, digest: "sha256:ABC" } })).toThrow('manifest r:1: config.digest: "sha256:ABC" is not a digest');
    expect(fails({ ...manifest, schemaVersion: 1 })).toThrow(/^manifest r:1: schemaVersion: /);
    expect(fails({ ...manifest, mediaType: 7 })).toThrow("manifest r:1: mediaType: expected a string, got 7");
    expect(fails(manifest, MediaType.ociIndex)).toThrow(
      /mediaType: the document says ".*manifest.v1\+json" but it was served or described as ".*index.v1\+json"/,
    );
  });

  it("GIVEN an index where a manifest is wanted, or the other way round THEN it says which it got", () => {
    const index = json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
    expect(() => parseManifest(index, "m")).toThrow("m: mediaType: expected an image manifest, got an index (application/vnd.oci.image.index.v1+json)");
    expect(() => parseIndex(json(manifest), "i")).toThrow(/^i: mediaType: expected an index, got an image manifest/);
  });
});

describe("parseImageConfig", () => {
  it("GIVEN Docker's nulls for empty lists and maps THEN they read as absent", () => {
    const config = parseImageConfig(
      json({
        architecture: "amd64",
        os: "linux",
        config: { Env: null, Labels: null, Cmd: ["sh"] },
        rootfs: { type: "layers", diff_ids: [digest] },
        history: null,
      }),
      "c",
    );
    expect(config.config?.Labels).toBeUndefined();
    expect(config.config?.Cmd).toEqual(["sh"]);
  });

  it("GIVEN a config without rootfs or with a label that is not a string THEN the field is named", () => {
    expect(() => parseImageConfig(json({ architecture: "amd64", os: "linux" }), "config c")).toThrow(
      "config c: rootfs: Invalid input: expected object, received undefined",
    );
    expect(() =>
      parseImageConfig(json({ architecture: "amd64", os: "linux", config: { Labels: { a: 1 } }, rootfs: { type: "layers", diff_ids: [] } }), "config c"),
    ).toThrow(/^config c: config\.Labels\.a: /);
  });
});

describe("checkDocumentSize", () => {
  it("GIVEN a descriptor over 4 MiB THEN it is refused before anything is read", () => {
    expect(() => checkDocumentSize(4 * 1024 * 1024, "m")).not.toThrow();
    expect(() => checkDocumentSize(4 * 1024 * 1024 + 1, "config c")).toThrow("config c: its descriptor says 4194305 bytes, more than the limit of 4194304");
  });
});
