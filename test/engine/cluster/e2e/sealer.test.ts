import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApplyError, applyCluster, resetCluster, type ClusterEvent } from "../../../../src/engine/cluster";
import { loadClusterfile, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { openBed, trustSandboxHosts, type Bed } from "../../../support/bed";
import { buildEtcd, etcdHealthy, etcdMembers } from "../../../support/etcd";
import { onHost, runOnHost } from "../../../support/hosts";

/**
 * A sealer v2 Clusterfile, written as sealer users write it (Cluster + Plugin + Config
 * documents, password login, port as a string, env as a KEY=VALUE list), read with
 * loadClusterfile and applied onto sandbox hosts 127.0.10.73-75: two masters run the etcd
 * example, one node has nothing to do. Judged on the hosts: where the plugin ran, with which
 * env, what the Configs wrote, and what etcd itself runs with.
 */
const FIRST = 73;
const MARKER = "/root/sealer-e2e-post-install";
const COUNTER = "/root/sealer-e2e-post-install.count";

describe("a sealer Clusterfile applied onto sandbox hosts", () => {
  let bed: Bed;
  let image: string;
  let masters: string[];
  let node: string;

  beforeAll(async () => {
    bed = await openBed(3, FIRST);
    masters = bed.ips.slice(0, 2);
    node = bed.ips[2]!;
    image = await buildEtcd(bed, "example/etcd:sealer");
  }, 120_000);
  afterAll(async () => {
    await bed?.close();
  });

  /** The Clusterfile as a sealer user writes it; `plugins` are extra Plugin documents. */
  const clusterfile = (plugins: string[] = [MARK_MASTERS]): string =>
    [
      `apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: sealer-e2e
spec:
  image: ${image}
  ssh:
    user: root
    passwd: "${bed.sandbox.ssh.passwd}"
    port: "22"
  hosts:
    - ips: [ ${masters.join(", ")} ]
      roles: [ master ]
      env:
        - GROUP_NOTE=masters-group
    - ips: [ ${node} ]
      roles: [ node ]
  env:
    - MARKER_TEXT=hello from spec.env`,
      ...plugins,
      // Overwrites the image's etc/etcd.env (the hooks source it before starting etcd).
      `apiVersion: sealer.io/v1
kind: Config
metadata:
  name: etcd-tuning
spec:
  path: etc/etcd.env
  data: |
    ETCD_HEARTBEAT_INTERVAL=100
    ETCD_ELECTION_TIMEOUT=1000
    ETCD_SNAPSHOT_COUNT=4242`,
      // A new YAML file (data is text: sealer's decoder refuses the mapping form some of its docs show).
      `apiVersion: sealer.io/v1
kind: Config
metadata:
  name: app-settings
spec:
  path: etc/app-settings.yaml
  strategy: merge
  data: |
    app:
      replicas: 3
      version: "1.10"`,
      // Merged into the file the Config before it wrote: replicas replaced, version kept.
      `apiVersion: sealer.io/v1
kind: Config
metadata:
  name: app-settings-prod
spec:
  path: etc/app-settings.yaml
  strategy: merge
  data: |
    app:
      replicas: 5
    tier: prod`,
    ].join("\n---\n") + "\n";

  const write = async (text: string): Promise<string> => {
    const path = join(bed.home, "Clusterfile");
    await writeFile(path, text);
    return path;
  };
  const load = async (plugins?: string[]): Promise<ClusterSpec> => (await loadClusterfile(await write(clusterfile(plugins)))).spec;
  const apply = async (spec: ClusterSpec) => applyCluster({ session: bed.session, spec, onEvent: (e) => bed.events.push(e) });
  const dataRoot = "/var/lib/sealant/sealer-e2e";
  /** `content|mtime` of the marker, or "absent". */
  const marker = (ip: string) =>
    onHost(bed.sandbox, ip, `if [ -f ${MARKER} ]; then printf '%s|' "$(cat ${MARKER})"; stat -c %Y.%i ${MARKER}; wc -l < ${COUNTER}; else echo absent; fi`);

  it("GIVEN the Clusterfile WHEN loaded THEN sealer's fields map to sealant's: legacy PostInstall, scope, env list, string port, password", async () => {
    const parsed = await loadClusterfile(await write(clusterfile()));
    expect(parsed.format).toBe("sealer");
    const spec = parsed.spec;
    expect(spec.name).toBe("sealer-e2e");
    expect(spec.ssh).toMatchObject({ user: "root", port: 22, password: bed.sandbox.ssh.passwd, hostKeyPolicy: "strict" });
    expect(spec.ssh.knownHosts).toBeUndefined();
    expect(spec.env).toEqual({ MARKER_TEXT: "hello from spec.env" });
    expect(spec.hosts.map((h) => [h.ips, h.roles])).toEqual([
      [masters, ["master"]],
      [[node], ["node"]],
    ]);
    expect(spec.plugins).toEqual([expect.objectContaining({ name: "mark-masters", type: "SHELL", action: ["post-install"], scope: ["master"] })]);
    expect(spec.configs.map((c) => [c.name, c.path, c.strategy])).toEqual([
      ["etcd-tuning", "etc/etcd.env", "overwrite"],
      ["app-settings", "etc/app-settings.yaml", "merge"],
      ["app-settings-prod", "etc/app-settings.yaml", "merge"],
    ]);
  });

  it("GIVEN hosts whose keys sealant has never seen WHEN applied THEN the default strict policy refuses them before changing anything", async () => {
    const err = await apply(await load()).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/host key/i);
    expect(err?.message).toContain(masters[0]!);
    expect((await runOnHost(bed.sandbox, masters[0]!, `ls ${dataRoot}`)).code).not.toBe(0);
  });

  it("GIVEN the hosts trusted in sealant's known_hosts WHEN applied THEN etcd runs on the masters, the plugin ran on the masters only with spec.env, and the Configs are rendered everywhere", async () => {
    // sealer's Clusterfile has no known_hosts field: the user records the hosts' keys in sealant's own known_hosts once.
    await trustSandboxHosts(bed);
    const r = await apply(await load());
    expect(r.plan.actions).toEqual(["create"]);
    expect(r.plan.phases.map((p) => p.title)).toContain("Plugin mark-masters (post-install)");

    expect(await etcdMembers(masters[0]!)).toEqual(masters.map((ip) => `etcd-${ip.replace(/\./g, "-")}`));
    expect(await etcdHealthy(masters)).toBe(true);
    expect(await onHost(bed.sandbox, node, "pgrep -x etcd || echo none")).toBe("none");

    // The plugin: masters only, once each, with the cluster env, the group env and sealant's own variables.
    for (const ip of masters) {
      // It runs in the image's rootfs, as hooks do.
      expect(await onHost(bed.sandbox, ip, `cat ${MARKER}`)).toMatch(
        new RegExp(`^hello from spec\\.env\\|masters-group\\|${esc(ip)}\\|master\\|post-install\\|${esc(dataRoot)}/images/[0-9a-f]{64}/rootfs$`),
      );
      expect(await onHost(bed.sandbox, ip, `wc -l < ${COUNTER}`)).toBe("1");
    }
    expect(await marker(node)).toBe("absent");
    const pluginSteps = bed.events.filter(
      (e): e is Extract<ClusterEvent, { type: "step" }> => e.type === "step" && e.status === "done" && e.id.startsWith("plugin:"),
    );
    expect(pluginSteps.map((e) => `${e.host} ${e.id}`).sort()).toEqual(masters.map((ip) => `${ip} plugin:mark-masters:post-install`));

    // The Configs, on every host (the node too: it got the image).
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `cat ${dataRoot}/rootfs/etc/etcd.env`)).toBe(
        "ETCD_HEARTBEAT_INTERVAL=100\nETCD_ELECTION_TIMEOUT=1000\nETCD_SNAPSHOT_COUNT=4242",
      );
      // "1.10" stays the string it was written as (not the number 1.1).
      expect(await onHost(bed.sandbox, ip, `cat ${dataRoot}/rootfs/etc/app-settings.yaml`)).toMatch(
        /^app:\n  replicas: 5\n  version: (['"])1\.10\1\ntier: prod$/,
      );
    }
    // ... and etcd really runs with the overwritten file.
    for (const ip of masters) {
      expect(await onHost(bed.sandbox, ip, `tr '\\0' '\\n' < /proc/$(cat ${dataRoot}/run/etcd.pid)/environ | grep ^ETCD_SNAPSHOT_COUNT=`)).toBe(
        "ETCD_SNAPSHOT_COUNT=4242",
      );
    }
    // The layers on the hosts were not changed through the hard links: the image's own file is intact.
    expect(await onHost(bed.sandbox, masters[0]!, `cat ${dataRoot}/layers/*/etc/etcd.env | grep -c '^ETCD_SNAPSHOT_COUNT=10000$'`)).toBe("1");
  }, 180_000);

  it("GIVEN the applied cluster WHEN the same Clusterfile is applied again THEN nothing runs: the plugin does not run a second time", async () => {
    const before = await Promise.all(masters.map(marker));
    const from = bed.events.length;
    const r = await apply(await load());
    expect(r.plan.phases).toEqual([]);
    expect(r.plan.summary).toEqual(["no changes to cluster sealer-e2e"]);
    expect(bed.events.slice(from).filter((e) => e.type === "step")).toEqual([]);
    expect(await Promise.all(masters.map(marker))).toEqual(before);
    expect(await marker(node)).toBe("absent");
  }, 120_000);

  it("GIVEN the cluster WHEN reset THEN etcd and sealant's files are gone from every host", async () => {
    await resetCluster({ session: bed.session, spec: await load() });
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `ls -A /var/lib/sealant/ 2>/dev/null; pgrep -x etcd || true`), ip).toBe("");
      await onHost(bed.sandbox, ip, `rm -f ${MARKER} ${COUNTER}`);
    }
  }, 120_000);

  it("GIVEN a plugin that fails (exit 3, stderr boom) WHEN applied THEN apply fails naming the hosts, the plugin phase and boom; fixed, a re-apply converges", async () => {
    const failing = FAIL_LOUD("echo boom >&2; exit 3");
    const from = bed.events.length;
    const err = await apply(await load([MARK_MASTERS, failing])).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplyError);
    const e = err as ApplyError;
    expect(e.hosts.sort()).toEqual(masters);
    expect(e.message).toContain("Plugin fail-loud (post-install) failed");
    for (const ip of masters) expect(e.message).toMatch(new RegExp(`${esc(ip)}: .*exited 3: boom`));
    const failed = bed.events.slice(from).filter((ev): ev is Extract<ClusterEvent, { type: "step" }> => ev.type === "step" && ev.status === "failed");
    expect(failed.map((ev) => `${ev.host} ${ev.id}`).sort()).toEqual(masters.map((ip) => `${ip} plugin:fail-loud:post-install`));
    expect(failed.every((ev) => ev.error?.includes("boom"))).toBe(true);
    // The phases before it did their work: etcd is up, the first plugin ran.
    expect(await etcdHealthy(masters)).toBe(true);
    for (const ip of masters) expect(await onHost(bed.sandbox, ip, `wc -l < ${COUNTER}`)).toBe("1");

    // The user fixes the plugin and applies again: only what did not finish runs.
    const fixed = FAIL_LOUD('echo "fixed on $SEALANT_HOST_IP" > /root/sealer-e2e-fixed');
    const after = bed.events.length;
    const r = await apply(await load([MARK_MASTERS, fixed]));
    const ran = bed.events.slice(after).filter((ev): ev is Extract<ClusterEvent, { type: "step" }> => ev.type === "step" && ev.status === "done");
    expect(ran.some((ev) => ev.id === "hook:bootstrap" || ev.id.startsWith("distribute"))).toBe(false);
    expect(
      ran
        .filter((ev) => ev.id.startsWith("plugin:"))
        .map((ev) => `${ev.host} ${ev.id}`)
        .sort(),
    ).toEqual(masters.map((ip) => `${ip} plugin:fail-loud:post-install`));
    expect(r.record?.hosts.every((h) => h.member)).toBe(true);
    for (const ip of masters) {
      expect(await onHost(bed.sandbox, ip, "cat /root/sealer-e2e-fixed")).toBe(`fixed on ${ip}`);
      expect(await onHost(bed.sandbox, ip, `wc -l < ${COUNTER}`)).toBe("1");
    }
    expect(await etcdHealthy(masters)).toBe(true);
    const again = await apply(await load([MARK_MASTERS, fixed]));
    expect(again.plan.phases).toEqual([]);
  }, 180_000);

  it("GIVEN the cluster WHEN reset at the end THEN nothing of sealant or etcd is left on any host", async () => {
    await resetCluster({ session: bed.session, spec: await load([MARK_MASTERS, FAIL_LOUD("true")]) });
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `ls -A /var/lib/sealant/ 2>/dev/null; pgrep -x etcd || true`), ip).toBe("");
      await onHost(bed.sandbox, ip, `rm -f ${MARKER} ${COUNTER} /root/sealer-e2e-fixed`);
    }
  }, 120_000);
});

/** sealer v0.8's action name (PostInstall) and current sealer's scope; the script sees spec.env and the group's env. */
const MARK_MASTERS = `apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: mark-masters
spec:
  type: SHELL
  action: PostInstall
  scope: master
  data: |
    set -e
    echo "$MARKER_TEXT|$GROUP_NOTE|$SEALANT_HOST_IP|$SEALANT_ROLES|$SEALANT_PLUGIN_ACTION|$(pwd)" > ${MARKER}
    echo ran >> ${COUNTER}`;

const FAIL_LOUD = (script: string): string => `apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: fail-loud
spec:
  type: SHELL
  action: post-install
  scope: master
  data: |
    ${script}`;

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
