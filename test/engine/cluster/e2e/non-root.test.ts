/**
 * Hosts as production has them: root login refused, a `deploy` user whose real sudo (Debian's)
 * asks for its password. The etcd example applied through that user, directly and through a
 * bastion, on sandbox hosts 127.0.10.80-84 (83 is the bastion); judged by etcd itself, by
 * what every process on the hosts showed while it ran (`ps` reads the same /proc), by sudo's log
 * and by everything sealant said.
 */
import { copyFile, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, resetCluster, type ClusterEvent } from "../../../../src/engine/cluster";
import { parseClusterfile, parseClusterSpec, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { hostExec, sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { Session } from "../../../../src/engine/session";
import type { Bed } from "../../../support/bed";
import { buildEtcd, etcdHealthy, etcdMembers } from "../../../support/etcd";
import { execP } from "../../../support/tools";

const FIRST = 80;
let bed: Bed;
let sb: Sandbox;
let image: string;
let cluster: string[];
let bastion: string;

beforeAll(async () => {
  const home = await mkdtemp(join(tmpdir(), "sealant-non-root-"));
  const session = await Session.open({ home });
  sb = await sandboxUp(5, { name: `e2e${FIRST}`, dir: join(home, "sandbox"), firstIndex: FIRST, user: { name: "deploy", sudo: "password" } });
  bed = {
    home,
    session,
    sandbox: sb,
    ips: sb.hosts.map((h) => h.ip),
    events: [],
    close: async () => {
      session.close();
      await sandboxDown(sb).catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
  cluster = [bed.ips[0]!, bed.ips[1]!, bed.ips[2]!];
  bastion = bed.ips[3]!;
  image = await buildEtcd(bed, "example/etcd:non-root");
}, 120_000);
afterAll(async () => {
  await bed?.close();
});

/** deploy's login and sudo password (the sandbox's), as sealer's Clusterfile gives it: `ssh.passwd`. */
const sshBlock = (extra: Record<string, unknown> = {}) => ({
  user: "deploy",
  password: sb.ssh.passwd,
  privateKeyPath: sb.ssh.pk,
  knownHosts: sb.ssh.knownHosts,
  ...extra,
});
const spec = (name: string, ips: string[], ssh: Record<string, unknown> = sshBlock()): ClusterSpec =>
  parseClusterSpec({ name, image, hosts: [{ ips, roles: ["master"] }], ssh });

/**
 * Every command line and environment of every process on the machine — the sandbox hosts' too
 * (their PID namespaces are inside the machine's) — sampled every few ms until stopped: what
 * `ps -eo args` or `/proc/PID/environ` on a host could have shown anyone while sealant worked.
 */
function watchProcesses(secret: string): { stop(): Promise<{ samples: number; seen: string[] }> } {
  let running = true;
  const seen = new Set<string>();
  let samples = 0;
  const loop = (async () => {
    while (running) {
      for (const pid of await readdir("/proc").catch(() => [] as string[])) {
        if (!/^\d+$/.test(pid)) continue;
        for (const what of ["cmdline", "environ"]) {
          const text = await readFile(`/proc/${pid}/${what}`, "latin1").catch(() => "");
          if (text.includes(secret)) seen.add(`${pid} ${what}: ${text.replace(/\0/g, " ")}`);
        }
      }
      samples++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { samples, seen: [...seen] };
    },
  };
}

const hostSh = async (ip: string, script: string) => (await hostExec(sb, ip, ["/bin/sh", "-c", script], { timeoutMs: 60_000 })).stdout;

describe("a non-root user whose sudo asks for a password, root login refused", () => {
  it("GIVEN deploy with password sudo WHEN the etcd example is applied THEN it is healthy, and no password showed in any process, sudo's log, sealant's events or the hosts' files", async () => {
    // The hosts really refuse root.
    const root = await execP("ssh", [
      "-F",
      "/dev/null",
      "-i",
      sb.ssh.pk,
      "-o",
      "BatchMode=yes",
      "-o",
      `UserKnownHostsFile=${sb.ssh.knownHosts}`,
      `root@${cluster[0]}`,
      "true",
    ]).catch((e: unknown) => e);
    expect(String(root)).toMatch(/Permission denied/);

    const watch = watchProcesses(sb.ssh.passwd);
    const events: ClusterEvent[] = [];
    const r = await applyCluster({ session: bed.session, spec: spec("etcd-deploy", cluster), onEvent: (e) => events.push(e) });
    const { samples, seen } = await watch.stop();
    expect(r.plan.actions).toEqual(["create"]);
    expect(await etcdMembers(cluster[0]!)).toEqual(["etcd-127-0-10-80", "etcd-127-0-10-81", "etcd-127-0-10-82"]);
    expect(await etcdHealthy(cluster)).toBe(true);

    expect(samples).toBeGreaterThan(5);
    expect(seen).toEqual([]);
    expect(JSON.stringify(events)).not.toContain(sb.ssh.passwd);
    expect(JSON.stringify(r)).not.toContain(sb.ssh.passwd);
    for (const ip of cluster) {
      // sudo ran sealant's commands as root (its log names them), and the password is nowhere on the host's disk.
      const log = await hostSh(ip, "cat /var/log/sudo.log");
      expect(log).toMatch(/: deploy : PWD=\/home\/deploy ; USER=root ; COMMAND=\/usr\/bin\/sh -c /);
      expect(log).not.toMatch(/incorrect password/);
      expect(log).not.toContain(sb.ssh.passwd);
      const host = sb.hosts.find((h) => h.ip === ip)!;
      const found = await execP("grep", [
        "-rlF",
        "--",
        sb.ssh.passwd,
        host.upper,
        ...host.realDirs.map((d) => join(host.dir, "real", d.slice(1).replace(/\//g, "-"))),
      ]).catch((e: { code?: number }) => (e.code === 1 ? { stdout: "" } : Promise.reject(e as Error)));
      expect(found.stdout).toBe("");
      // What was uploaded is root's, as the image has it, not deploy's; deploy's home holds nothing of it.
      expect(await hostSh(ip, "stat -c '%U %a' /var/lib/sealant/etcd-deploy /var/lib/sealant/etcd-deploy/rootfs/ 2>&1; ls -A /home/deploy")).toBe(
        "root 755\nroot 755\n.bash_logout\n.bashrc\n.profile\n.ssh\n",
      );
    }
  }, 180_000);

  it("GIVEN a bastion (deploy there too) WHEN a host joins through it THEN it is a member, every connection went through the bastion, and no password showed", async () => {
    const joining = bed.ips[4]!;
    const logins = async () => (await readFile(join(sb.hosts[3]!.dir, "host.log"), "utf8")).split("\n").filter((l) => /Accepted \w+ for deploy/.test(l)).length;
    const before = await logins();
    const watch = watchProcesses(sb.ssh.passwd);
    const events: ClusterEvent[] = [];
    const viaBastion = sshBlock({ bastion: { host: bastion, privateKeyPath: sb.ssh.pk } });
    const r = await applyCluster({ session: bed.session, spec: spec("etcd-deploy", [...cluster, joining], viaBastion), onEvent: (e) => events.push(e) });
    const { seen } = await watch.stop();
    expect(r.plan.summary).toEqual([`join ${joining} (master)`]);
    expect(await etcdMembers(cluster[0]!)).toHaveLength(4);
    expect(await etcdHealthy([...cluster, joining])).toBe(true);
    // One bastion login per host reached: the first master (lock, record) and the joining host.
    expect((await logins()) - before).toBeGreaterThanOrEqual(2);
    expect(seen).toEqual([]);
    expect(JSON.stringify(events)).not.toContain(sb.ssh.passwd);
    expect(await hostSh(joining, "cat /var/log/sudo.log")).not.toContain(sb.ssh.passwd);
  }, 180_000);

  it("GIVEN a wrong sudo password (the key still logs in) WHEN applied THEN one clear error names the host and says sudo refused the password, without it (sudo never saw the command's input)", async () => {
    const wrong = "wrong-sudo-password-7f3a";
    const err = await applyCluster({ session: bed.session, spec: spec("etcd-deploy", [...cluster, bed.ips[4]!], sshBlock({ password: wrong })) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toBe(`1 host failed:\n  ${cluster[0]}: sudo refused the password given for user "deploy" (sudo: 1 incorrect password attempt)`);
    expect(message).not.toContain(wrong);
    // sudo judged the password on a check of its own: no command of sealant's was fed to it as attempts.
    const attempts = (await hostSh(cluster[0]!, "grep 'incorrect password' /var/log/sudo.log")).trim().split("\n");
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatch(/COMMAND=\/usr\/bin\/sh -c true$/);
  }, 60_000);

  it("resets the cluster through the same user", async () => {
    await resetCluster({ session: bed.session, spec: spec("etcd-deploy", [...cluster, bed.ips[4]!]) });
    for (const ip of [...cluster, bed.ips[4]!]) expect(await hostSh(ip, "ls /var/lib/sealant 2>/dev/null; pgrep -x etcd || true")).toBe("");
  }, 60_000);

  it("GIVEN sealer's Clusterfile for such hosts (user deploy, passwd, pk) WHEN applied THEN the same healthy cluster, and no password anywhere sealant or the hosts show", async () => {
    // sealer's Clusterfile names no known_hosts: the user trusts the hosts once in sealant's own.
    await copyFile(sb.ssh.knownHosts, join(bed.home, "known_hosts"));
    const text = [
      "apiVersion: sealer.io/v2",
      "kind: Cluster",
      "metadata: {name: etcd-sealer}",
      "spec:",
      `  image: ${image}`,
      "  hosts:",
      `    - {ips: [${cluster.join(", ")}], roles: [master]}`,
      `  ssh: {user: deploy, passwd: "${sb.ssh.passwd}", pk: ${sb.ssh.pk}}`,
      "",
    ].join("\n");
    const sealerSpec = parseClusterfile(text).spec;
    const watch = watchProcesses(sb.ssh.passwd);
    const events: ClusterEvent[] = [];
    await applyCluster({ session: bed.session, spec: sealerSpec, onEvent: (e) => events.push(e) });
    const { seen } = await watch.stop();
    expect(await etcdHealthy(cluster)).toBe(true);
    expect(seen).toEqual([]);
    expect(JSON.stringify(events)).not.toContain(sb.ssh.passwd);
    await resetCluster({ session: bed.session, spec: sealerSpec });
    for (const ip of cluster) expect(await hostSh(ip, "ls /var/lib/sealant 2>/dev/null; pgrep -x etcd || true")).toBe("");
  }, 120_000);
});
