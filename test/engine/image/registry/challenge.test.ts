import { describe, expect, it } from "vitest";
import { parseChallenges } from "../../../../src/engine/image/registry";
import { RegistryError, parseErrorBody } from "../../../../src/engine/image/registry/errors";

describe("parseChallenges", () => {
  it("GIVEN Docker Hub's bearer challenge THEN realm, service and scope are read", () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"')).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/nginx:pull" } },
    ]);
  });

  it("GIVEN an insufficient_scope challenge with several scopes THEN all survive", () => {
    const [c] = parseChallenges('Bearer realm="http://r/token", service="s", scope="repository:a:pull,push repository:b:pull", error="insufficient_scope"');
    expect(c!.params).toEqual({ realm: "http://r/token", service: "s", scope: "repository:a:pull,push repository:b:pull", error: "insufficient_scope" });
  });

  it("GIVEN several challenges and unquoted values THEN each is separate", () => {
    expect(parseChallenges('Basic realm="Registry Realm", Bearer realm=http://x/token,service=reg')).toEqual([
      { scheme: "basic", params: { realm: "Registry Realm" } },
      { scheme: "bearer", params: { realm: "http://x/token", service: "reg" } },
    ]);
  });

  it("GIVEN escaped quotes THEN they are unescaped", () => {
    expect(parseChallenges('Basic realm="a \\"quoted\\" realm"')[0]!.params["realm"]).toBe('a "quoted" realm');
  });
});

describe("RegistryError", () => {
  it("formats status, codes and messages like the registry reported them", () => {
    const errors = parseErrorBody(Buffer.from(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: "1.0" } }] })));
    const e = new RegistryError({ registry: "r:5000", method: "GET", path: "r:5000/v2/foo/manifests/1.0", status: 404, errors });
    expect(e.message).toBe("GET r:5000/v2/foo/manifests/1.0: 404 MANIFEST_UNKNOWN: manifest unknown");
    expect(e.codes).toEqual(["MANIFEST_UNKNOWN"]);
  });

  it("falls back to the status text for bodies that are not registry errors", () => {
    const e = new RegistryError({
      registry: "r",
      method: "HEAD",
      path: "r/v2/x/blobs/sha256:aa",
      status: 404,
      errors: parseErrorBody(Buffer.from("<html>nope</html>")),
    });
    expect(e.message).toBe("HEAD r/v2/x/blobs/sha256:aa: 404 Not Found");
  });
});
