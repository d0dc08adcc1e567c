import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterfile } from "../../src/engine/cluster/spec";

/**
 * `sealant convert` against the compiled CLI: sealer's Clusterfiles (its first format and v2)
 * written as sealant's own, which sealant then reads to the same cluster.
 */

const CLI = resolve(__dirname, "../../dist/cli/main.js");
const FIXTURES = resolve(__dirname, "../fixtures/sealer/clusterfiles");
let dir: string;

function sealant(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, SEALANT_HOME: join(dir, "home") } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end();
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sealant-convert-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const V1 = `apiVersion: sealer.aliyun.com/v1alpha1
kind: Cluster
metadata:
  name: my-cluster
spec:
  image: registry.cn-qingdao.aliyuncs.com/sealer-io/kubernetes:v1.19.8
  provider: BAREMETAL
  ssh:
    passwd: Pa55-word
    pk: /root/.ssh/id_rsa
    user: root
  network:
    podCIDR: 100.64.0.0/10
    svcCIDR: 10.96.0.0/22
  masters:
    ipList: [ 172.16.0.197 ]
  nodes:
    ipList: [ 172.16.0.196 ]
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: hostname
spec:
  type: HOSTNAME
  action: PreInit
  data: |
    172.16.0.197 master-0
    172.16.0.196 node-0
`;

describe("sealant convert", () => {
  it("writes sealer's first format as sealant's own, which reads to the same cluster", async () => {
    // GIVEN a sealer.aliyun.com/v1alpha1 Clusterfile with a plugin
    await writeFile(join(dir, "old.yaml"), V1);
    // WHEN converted to a file
    const r = await sealant(["convert", "-f", "old.yaml", "-o", "new.yaml"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    // THEN stderr says what sealer's conversion dropped, never the password
    expect(r.stderr).toContain(
      'warning: old.yaml (Cluster "my-cluster"): spec.network: ignored, as sealer v0.8 did: give the ranges as env PodCIDR=... and SvcCIDR=...',
    );
    expect(r.stderr).not.toContain("Pa55-word");
    // AND the new file is sealant's, readable by its owner only, with no temp file beside it
    const text = await readFile(join(dir, "new.yaml"), "utf8");
    expect(text).toMatch(/^apiVersion: sealant\.io\/v1\nkind: Cluster\n/);
    expect((await stat(join(dir, "new.yaml"))).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(["new.yaml", "old.yaml"]);
    // AND reading it gives the cluster the old file describes
    const before = parseClusterfile(V1).spec;
    const after = parseClusterfile(text).spec;
    expect(after).toEqual(before);
    expect(after.hosts.map((h) => [h.ips, h.roles])).toEqual([
      [["172.16.0.197"], ["master"]],
      [["172.16.0.196"], ["node"]],
    ]);
    expect(after.plugins.map((p) => [p.name, p.type])).toEqual([["hostname", "HOSTNAME"]]);
  });

  it("converts sealer's documented v2 Clusterfile (Cluster, Config, Plugin, kubeadm) to stdout, the same cluster again", async () => {
    const file = join(FIXTURES, "sealer-cool-src-docs-concept-clusterfile-md-25.yaml");
    const r = await sealant(["convert", "-f", file]);
    expect(r.code).toBe(0);
    expect(parseClusterfile(r.stdout).spec).toEqual(parseClusterfile(await readFile(file, "utf8")).spec);
  });

  it("says what applying would still refuse (no image here), and a missing file in one line", async () => {
    await writeFile(
      join(dir, "noimage.yaml"),
      "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  hosts: [{ips: [10.0.0.1], roles: [master]}]\n",
    );
    const r = await sealant(["convert", "-f", "noimage.yaml"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('to fix before apply: noimage.yaml (Cluster "c"): spec.image: not set');
    const missing = await sealant(["convert", "-f", "nope.yaml"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`sealant: cannot read the Clusterfile ${join(dir, "nope.yaml")}: no such file\n`);
  });
});
