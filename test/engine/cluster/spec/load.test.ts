import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ClusterSpecError, loadClusterfile } from "../../../../src/engine/cluster/spec";
import { sealerCluster } from "./helpers";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

describe("loadClusterfile", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealant-spec-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the key files that pk names, relative to the Clusterfile", async () => {
    // GIVEN a Clusterfile in a directory with keys/id_ed25519 and a per-group key under ~
    await mkdir(join(dir, "keys"));
    await writeFile(join(dir, "keys", "id_ed25519"), KEY);
    await mkdir(join(dir, "home", ".ssh"), { recursive: true });
    await writeFile(join(dir, "home", ".ssh", "node_key"), KEY.replace("AAAA", "BBBB"));
    const file = join(dir, "Clusterfile");
    await writeFile(
      file,
      sealerCluster(`    - ips: [ 10.0.0.1 ]
      roles: [ master ]
    - ips: [ 10.0.0.2 ]
      roles: [ node ]
      ssh:
        pk: ~/.ssh/node_key`).replace("passwd: s3cret-Pa55", "pk: keys/id_ed25519"),
    );
    // WHEN it is loaded
    const { spec } = await loadClusterfile(file, { homeDir: join(dir, "home") });
    // THEN each privateKey holds its file's content and the paths are absolute
    expect(spec.ssh.privateKey).toBe(KEY);
    expect(spec.ssh.privateKeyPath).toBe(join(dir, "keys", "id_ed25519"));
    expect(spec.hosts[1]?.ssh?.privateKey).toBe(KEY.replace("AAAA", "BBBB"));
    expect(spec.hosts[1]?.ssh?.privateKeyPath).toBe(join(dir, "home", ".ssh", "node_key"));
  });

  it("names a key file that is missing or holds no key, at sealer's field, without its content", async () => {
    // GIVEN pk pointing nowhere, and a host pk pointing at a file that is no key
    await writeFile(join(dir, "notes.txt"), "hunter2\n");
    const file = join(dir, "Clusterfile");
    await writeFile(
      file,
      sealerCluster(`    - ips: [ 10.0.0.1 ]
      roles: [ master ]
      ssh: { pk: notes.txt }`).replace("passwd: s3cret-Pa55", "pk: missing_key"),
    );
    // WHEN it is loaded THEN both are reported at once, in the file's terms
    const err = await loadClusterfile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterSpecError);
    expect((err as ClusterSpecError).problems.map((p) => `${p.source}: ${p.path}: ${p.message}`)).toEqual([
      `${file} (Cluster "my-cluster"): spec.hosts[0].ssh.pk: "${join(dir, "notes.txt")}" holds no PEM or OpenSSH private key`,
      `${file} (Cluster "my-cluster"): spec.ssh.pk: cannot read private key file "${join(dir, "missing_key")}": no such file`,
    ]);
    expect((err as Error).message).not.toContain("hunter2");
    expect((err as Error).message.split("\n")[0]).toBe(`${file} is invalid (2 problems):`);
  });
});
