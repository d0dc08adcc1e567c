import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApplyError, applyCluster, resetCluster, type ApplyOptions } from "../../../../src/engine/cluster";
import { formatPlan } from "../../../../src/engine/cluster/plan";
import { parseClusterSpec, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { openBed, type Bed } from "../../../support/bed";
import { onHost } from "../../../support/hosts";
import { buildTinyImage, clusterWithPlugins, failure, fileOn, PLUGIN_FIXTURES, pluginSteps, stepsDone } from "../../../support/plugins";

/**
 * Out-of-tree plugins (the user's own TypeScript modules, test/fixtures/plugins/*.ts, loaded by
 * Node as they are) on sandbox hosts 127.0.10.47-49: two masters and a node of a cluster whose
 * image has no hooks, so the plugins are all that runs. Judged on the hosts: which files the
 * plugins wrote where, how often, and what sealant recorded of a failed attempt.
 */
const FIRST = 47;
const DIR = "/root/plugins-e2e";

describe("out-of-tree plugins on sandbox hosts", () => {
  let bed: Bed;
  let image: string;
  let m1: string;
  let m2: string;
  let node: string;

  beforeAll(async () => {
    bed = await openBed(3, FIRST);
    [m1, m2, node] = bed.ips as [string, string, string];
    image = await buildTinyImage(bed, "example/tiny:plugins");
  }, 120_000);
  afterAll(async () => {
    await bed?.close();
  });

  const apply = (spec: ClusterSpec, extra: Partial<ApplyOptions> = {}) =>
    applyCluster({ session: bed.session, spec, pluginBase: PLUGIN_FIXTURES, onEvent: (e) => bed.events.push(e), ...extra });
  const reset = (spec: ClusterSpec) => resetCluster({ session: bed.session, spec, pluginBase: PLUGIN_FIXTURES });
  const cleanHosts = () => Promise.all(bed.ips.map((ip) => onHost(bed.sandbox, ip, `rm -rf ${DIR}`)));

  /** masters-file at post-install (a cluster phase: once, from the first master, onto every master); by-ip on the second master only. */
  const mainSpec = () =>
    clusterWithPlugins(bed, "plugins-e2e", image, [
      { name: "masters-file", type: "MODULE", module: "./masters-file.ts", config: { path: `${DIR}/masters.txt` } },
      { name: "by-ip", type: "MODULE", module: "./by-ip.ts", scope: [m2] },
    ]);
  /** inode and content of a file, or "absent": a rewrite (atomic rename) changes the inode. */
  const version = async (ip: string, path: string) => {
    const r = await fileOn(bed, ip, path);
    return r === "absent" ? r : `${await onHost(bed.sandbox, ip, `stat -c %i ${path}`)} ${r}`;
  };

  it("GIVEN two module plugins WHEN planned as a dry run THEN each plugin step shows its host and the plugin's describe() line, and no plugin ran", async () => {
    const r = await apply(mainSpec(), { dryRun: true });
    expect(r.dryRun).toBe(true);
    // The host phase on the one IP in its scope; the cluster phase once, on the first master.
    expect(pluginSteps(r.plan)).toEqual([`${m2} plugin:by-ip:post-init-host`, `${m1} plugin:masters-file:post-install`]);
    const text = formatPlan(r.plan);
    expect(text).toMatch(new RegExp(`run plugin by-ip .*on ${esc(m2)}: mark this host \\(master\\) in ${DIR}/by-ip`));
    expect(text).toMatch(new RegExp(`run plugin masters-file .*on ${esc(m1)}: write ${DIR}/masters.txt on every master`));
    // run() would have written these; nothing of the cluster exists either.
    for (const ip of bed.ips) expect(await onHost(bed.sandbox, ip, `ls -A ${DIR} 2>/dev/null; ls -A /var/lib/sealant 2>/dev/null; true`), ip).toBe("");
  }, 60_000);

  it("GIVEN the same plugins WHEN applied THEN the post-install plugin wrote its file on both masters (not the node) from the first master, and by-ip ran on its IP only", async () => {
    const from = bed.events.length;
    const r = await apply(mainSpec());
    expect(r.plan.actions).toEqual(["create"]);
    for (const ip of [m1, m2]) expect(await fileOn(bed, ip, `${DIR}/masters.txt`)).toBe(`plugins-e2e ${ip} from ${m1} at post-install attempt 1`);
    expect(await fileOn(bed, node, `${DIR}/masters.txt`)).toBe("absent");
    expect(await fileOn(bed, m2, `${DIR}/by-ip`)).toBe(`${m2} post-init-host`);
    for (const ip of [m1, node]) expect(await fileOn(bed, ip, `${DIR}/by-ip`)).toBe("absent");
    // Each ran as one step, recorded as done where it ran; its log reached the caller.
    expect(stepsDone(bed.events, from).filter((s) => s.includes(" plugin:"))).toEqual([
      `${m2} plugin:by-ip:post-init-host`,
      `${m1} plugin:masters-file:post-install`,
    ]);
    const done = (ip: string) => r.record!.hosts.find((h) => h.ip === ip)!.done.filter((id) => id.startsWith("plugin:"));
    expect([done(m1), done(m2), done(node)]).toEqual([["plugin:masters-file:post-install"], ["plugin:by-ip:post-init-host"], []]);
    expect(JSON.stringify(bed.events.slice(from))).toContain(`wrote ${DIR}/masters.txt on ${m1}, ${m2}`);
  }, 120_000);

  it("GIVEN the applied cluster WHEN applied again THEN no plugin runs again: nothing is planned and the files are the same files", async () => {
    const before = await Promise.all([m1, m2].map((ip) => version(ip, `${DIR}/masters.txt`)));
    const byIp = await version(m2, `${DIR}/by-ip`);
    const r = await apply(mainSpec());
    expect(r.plan.phases).toEqual([]);
    expect(await Promise.all([m1, m2].map((ip) => version(ip, `${DIR}/masters.txt`)))).toEqual(before);
    expect(await version(m2, `${DIR}/by-ip`)).toBe(byIp);
    await reset(mainSpec());
    await cleanHosts();
  }, 120_000);

  it("GIVEN a plugin that is not idempotent and fails after its checkpoint WHEN applied THEN the apply fails naming the plugin, its phase and host, and the record keeps the checkpoint", async () => {
    const spec = clusterWithPlugins(bed, "plugins-resume", image, [{ name: "resume", type: "MODULE", module: "./resume.ts" }]);
    await onHost(bed.sandbox, m1, `mkdir -p ${DIR} && touch ${DIR}/resume.fail`);
    const err = await failure(apply(spec));
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).hosts).toEqual([m1]);
    expect(err.message).toContain(`plugin resume (module ./resume.ts) at post-install on ${m1}: part B refused: ${DIR}/resume.fail is there`);
    // Its message only: no stack trace.
    expect(err.message).not.toMatch(/\n\s+at /);
    expect(await fileOn(bed, m1, `${DIR}/resume.log`)).toBe("A attempt=1");
    const record = JSON.parse(await onHost(bed.sandbox, m1, "cat /var/lib/sealant/plugins-resume/state.json")) as {
      hosts: { ip: string; done: string[]; pluginRuns?: Record<string, { attempts: number; checkpoints: Record<string, unknown>; error?: string }> }[];
    };
    const first = record.hosts.find((h) => h.ip === m1)!;
    expect(first.done).not.toContain("plugin:resume:post-install");
    expect(first.pluginRuns?.["plugin:resume:post-install"]).toMatchObject({ attempts: 1, checkpoints: { a: { attempt: 1 } } });
    expect(first.pluginRuns?.["plugin:resume:post-install"]?.error).toContain("part B refused");

    // The cause is fixed; the re-run plans that one step, which sees attempt 2 and its checkpoint and does part B only.
    await onHost(bed.sandbox, m1, `rm ${DIR}/resume.fail`);
    const from = bed.events.length;
    const r = await apply(spec);
    expect(r.plan.phases.flatMap((p) => p.steps.map((s) => `${s.host} ${s.id}`))).toEqual([`${m1} plugin:resume:post-install`]);
    expect(stepsDone(bed.events, from)).toEqual([`${m1} plugin:resume:post-install`]);
    expect(await fileOn(bed, m1, `${DIR}/resume.log`)).toBe("A attempt=1\nB attempt=2 checkpoints=a");
    const after = r.record!.hosts.find((h) => h.ip === m1)!;
    expect(after.done).toContain("plugin:resume:post-install");
    expect(after.pluginRuns?.["plugin:resume:post-install"]).toBeUndefined();
    expect((await apply(spec)).plan.phases).toEqual([]);
    await reset(spec);
    await cleanHosts();
  }, 120_000);

  it("GIVEN a plugin that is not idempotent and failed without a checkpoint WHEN applied again THEN sealant refuses to run it, says why and what to do, and runs it when told to", async () => {
    const spec = clusterWithPlugins(bed, "plugins-refuse", image, [{ name: "refuse", type: "MODULE", module: "./refuse.ts" }]);
    await onHost(bed.sandbox, m1, `mkdir -p ${DIR} && touch ${DIR}/refuse.fail`);
    const first = await failure(apply(spec));
    expect(first.message).toContain(`plugin refuse (module ./refuse.ts) at post-install on ${m1}: the CMDB refused the registration`);
    // Even with the cause gone, sealant cannot know what the failed attempt left: it refuses.
    await onHost(bed.sandbox, m1, `rm ${DIR}/refuse.fail`);
    const again = await failure(apply(spec));
    expect(again.message).toContain(`plugin refuse (module ./refuse.ts) at post-install on ${m1}`);
    expect(again.message).toMatch(/not idempotent/);
    expect(again.message).toMatch(/checkpoint/);
    expect(again.message).toContain("--retry-plugin refuse");
    expect(await fileOn(bed, m1, `${DIR}/refuse.log`)).toBe("ran attempt=1");
    console.log(`the refusal, as the user reads it:\n${again.message}`);

    // The user checked the host and asks for the plugin to run anew: it does, as its second attempt.
    const from = bed.events.length;
    await apply(spec, { retryPlugins: ["refuse"] });
    expect(stepsDone(bed.events, from)).toEqual([`${m1} plugin:refuse:post-install`]);
    expect(await fileOn(bed, m1, `${DIR}/refuse.log`)).toBe("ran attempt=1\nran attempt=2");
    await reset(spec);
    await cleanHosts();
  }, 120_000);

  it("GIVEN a cluster logging in by password with a secret env value WHEN a plugin looks at its context THEN it sees the cluster, its host and scope, and the secrets only when its document gives them", async () => {
    const password = bed.sandbox.ssh.passwd;
    const spec = parseClusterSpec({
      name: "plugins-context",
      image,
      env: { GREETING: "hello", DB_PASSWORD: "s3cr3t-from-env" },
      hosts: [
        { ips: [m1], roles: ["master"] },
        { ips: [node], roles: ["node"], env: { ZONE: "b" } },
      ],
      ssh: { password, knownHosts: bed.sandbox.ssh.knownHosts },
      plugins: [
        { name: "plain", type: "MODULE", module: "./context.ts", scope: ["node"], config: { level: 2, tags: ["a"] } },
        { name: "trusted", type: "MODULE", module: "./context.ts", scope: ["node"], secrets: true },
      ],
    });
    try {
      await apply(spec);
      const hostname = await onHost(bed.sandbox, node, "hostname");
      const plainText = await onHost(bed.sandbox, node, `cat ${DIR}/context-plain.json`);
      const plain = JSON.parse(plainText) as Seen;
      expect(plain).toMatchObject({
        name: "plain",
        phase: "post-init-host",
        config: { level: 2, tags: ["a"] },
        attempt: 1,
        checkpoints: {},
        cluster: { name: "plugins-context", action: "create", env: { GREETING: "hello" } },
        host: { ip: node, roles: ["node"], hostname, env: { GREETING: "hello", ZONE: "b" } },
        hosts: [node],
        aborted: false,
      });
      expect(plain.cluster.image).toContain(image.split("@")[1]);
      expect(plain.cluster.spec).toMatchObject({ name: "plugins-context", hosts: [{ ips: [m1] }, { ips: [node] }] });
      // Without `secrets: true` no secret is in anything it was given: the spec's, the env's.
      expect(plain.cluster.spec.ssh.password).not.toBe(password);
      expect(plainText).not.toContain(password);
      expect(plainText).not.toContain("s3cr3t-from-env");
      const trusted = JSON.parse(await onHost(bed.sandbox, node, `cat ${DIR}/context-trusted.json`)) as Seen;
      expect(trusted.cluster.spec.ssh.password).toBe(password);
      expect(trusted.cluster.spec.env.DB_PASSWORD).toBe("s3cr3t-from-env");
      expect(await fileOn(bed, m1, `${DIR}/context-plain.json`)).toBe("absent");
    } finally {
      await reset(spec);
      await cleanHosts();
    }
  }, 120_000);
});

/** What test/fixtures/plugins/context.ts writes (the parts read here). */
interface Seen {
  cluster: { image: string; spec: { ssh: { password?: string }; env: Record<string, string> } };
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
