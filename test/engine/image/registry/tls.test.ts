import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../../../src/engine/image/credentials";
import { sha256 } from "../../../../src/engine/image/digest";
import { RegistryClient, RegistryError } from "../../../../src/engine/image/registry";
import { startRegistry, type TestRegistry } from "../../../support/registry";

describe("HTTPS registries (docker-registry with a self-signed certificate)", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ tls: true, auth: "htpasswd" });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  async function roundTrip(c: RegistryClient): Promise<void> {
    const bytes = randomBytes(3000);
    const desc = { digest: sha256(bytes), size: bytes.length };
    expect(await c.pushBlob("tls/test", desc, () => Readable.from([bytes]))).toBe("uploaded");
    expect((await c.getBlob("tls/test", desc.digest)).equals(bytes)).toBe(true);
  }

  it("GIVEN verification on and an unknown CA WHEN connecting THEN it fails, saying the certificate is not trusted", async () => {
    const c = new RegistryClient(reg.host, { scheme: "https", retries: 0, credentials: staticCredentials(reg.users[0]) });
    try {
      const err = (await c.checkLogin().catch((e: unknown) => e)) as RegistryError;
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.message).toMatch(
        new RegExp(`^GET ${reg.host}/v2/: TLS certificate of ${reg.host} not trusted: .*\\(trust its CA, or mark the registry insecure\\)$`),
      );
    } finally {
      c.close();
    }
  });

  it("GIVEN the registry's certificate as an extra CA WHEN pushing and pulling THEN TLS is verified and it works", async () => {
    const c = new RegistryClient(reg.host, { scheme: "https", ca: reg.tlsCert!, credentials: staticCredentials(reg.users[0]) });
    try {
      await c.checkLogin();
      await roundTrip(c);
    } finally {
      c.close();
    }
  });

  it("GIVEN insecure mode WHEN pushing and pulling THEN verification is skipped and it works", async () => {
    const c = new RegistryClient(reg.host, { scheme: "https", insecure: true, credentials: staticCredentials(reg.users[0]) });
    try {
      await roundTrip(c);
    } finally {
      c.close();
    }
  });

  it("GIVEN plain HTTP against the TLS port WHEN connecting THEN the registry's 400 comes back as an error", async () => {
    const c = new RegistryClient(reg.host, { retries: 0 });
    try {
      const err = (await c.checkLogin().catch((e: unknown) => e)) as RegistryError;
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.status).toBe(400);
    } finally {
      c.close();
    }
  });
});
