import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setHostsBlock } from "../../../../src/engine/cluster/host/etc-hosts";
import { PRELUDE } from "../../../../src/engine/cluster/runtime/kubernetes/shell";
import { shellQuote, SshConnection } from "../../../../src/engine/ssh";
import { openBed, type Bed } from "../../../support/bed";
import { onHost, runOnHost } from "../../../support/hosts";

// This file's host: 127.0.10.120 (other test files use other ranges). Each "cluster" editing it
// has an SSH connection of its own, as separate applies would.
const FIRST = 120;
const IP = "127.0.10.120";
const ORIGINAL = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.9.9.9 kept-by-hand # the operator's own line\n";
let bed: Bed;
const conns: SshConnection[] = [];

async function connect(): Promise<SshConnection> {
  const c = await SshConnection.connect({ host: IP, privateKeyPath: bed.sandbox.ssh.pk, hostKey: { knownHosts: bed.sandbox.ssh.knownHosts } });
  conns.push(c);
  return c;
}

const hostsFile = () => onHost(bed.sandbox, IP, "cat /etc/hosts");

beforeAll(async () => {
  bed = await openBed(1, FIRST);
});

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await bed?.close();
});

describe("/etc/hosts blocks of several clusters on one host", () => {
  it("keeps every cluster's block when four clusters write theirs at the same moment, round after round", async () => {
    // GIVEN a host's /etc/hosts with the operator's own lines, and four clusters connected to it
    await onHost(bed.sandbox, IP, "cat > /etc/hosts", { input: ORIGINAL });
    const clusters = await Promise.all([0, 1, 2, 3].map(() => connect()));
    for (let round = 1; round <= 5; round++) {
      // WHEN all four set their block at once
      await Promise.all(clusters.map((c, i) => setHostsBlock(c, `sealant registry /var/lib/sealant/c${i}`, [`10.0.${i}.${round} hub-${i}.local`])));
      // THEN each block is there with this round's line, and the operator's lines are untouched
      const text = await hostsFile();
      for (let i = 0; i < 4; i++) {
        expect(text, `round ${round}, cluster ${i}`).toContain(`# BEGIN sealant registry /var/lib/sealant/c${i}\n10.0.${i}.${round} hub-${i}.local\n# END`);
      }
      expect(text.startsWith(ORIGINAL.trim())).toBe(true);
    }
    // AND no temp file is left in /etc
    expect(await onHost(bed.sandbox, IP, "ls -a /etc | grep -c sealant || true")).toBe("0");
  });

  it("loses no line when the kubernetes runtime's own /etc/hosts lines (hosts_line) are written on the host at the same time", async () => {
    // GIVEN the host's kubernetes script adding 30 lines one by one, while two clusters add 10 blocks each
    await onHost(bed.sandbox, IP, "cat > /etc/hosts", { input: ORIGINAL });
    const clusters = await Promise.all([0, 1].map(() => connect()));
    const script = `${PRELUDE}\nfor i in $(seq 1 30); do hosts_line api-$i.cluster.local 10.1.1.$i; done`;
    // WHEN all run at once
    const [kube] = await Promise.all([
      runOnHost(bed.sandbox, IP, "sh", { input: script }),
      ...clusters.map(async (c, i) => {
        for (let round = 1; round <= 10; round++) await setHostsBlock(c, `sealant aliases c${i}-${round}`, [`10.2.${i}.${round} alias.local`]);
      }),
    ]);
    // THEN every line and every block written is there
    expect(kube!.code, kube!.stderr).toBe(0);
    const text = await hostsFile();
    const missing = [
      ...Array.from({ length: 30 }, (_, k) => `10.1.1.${k + 1} api-${k + 1}.cluster.local # sealant-kubernetes`),
      ...[0, 1].flatMap((i) => Array.from({ length: 10 }, (_, k) => `# BEGIN sealant aliases c${i}-${k + 1}\n10.2.${i}.${k + 1} alias.local\n`)),
    ].filter((line) => !text.includes(line));
    expect(missing).toEqual([]);
    expect(text).toContain("10.9.9.9 kept-by-hand");
  });

  it("waits for the host lock held by another edit before it writes", async () => {
    // GIVEN another edit of /etc/hosts holding the host's lock for 2 seconds
    await onHost(bed.sandbox, IP, "cat > /etc/hosts", { input: ORIGINAL });
    await onHost(bed.sandbox, IP, "mkdir -p /run/lock; setsid -f flock /run/lock/sealant-etc-hosts.lock sleep 2 > /dev/null 2>&1 < /dev/null; sleep 0.2");
    const cluster = await connect();
    // WHEN a cluster sets its block
    const started = Date.now();
    await setHostsBlock(cluster, "sealant aliases /var/lib/sealant/w", ["10.3.3.3 waited.local"]);
    // THEN it wrote only once the other edit was over
    expect(Date.now() - started).toBeGreaterThan(1500);
    expect(await hostsFile()).toContain("10.3.3.3 waited.local");
  });
});

describe("one block, edited on the host", () => {
  it("replaces a block where it is, appends a new one, removes an emptied one, keeps the rest (an orphan BEGIN too), writes nothing when nothing changes", async () => {
    const c = await connect();
    // The file exactly, final newline included (onHost trims what it returns).
    const rawHostsFile = async () => (await onHost(bed.sandbox, IP, "cat /etc/hosts; echo .")).slice(0, -1);
    const put = async (text: string) => void (await onHost(bed.sandbox, IP, `printf %s ${shellQuote(text)} > /etc/hosts`));
    await put("a\n# BEGIN x\nold\n# END x\nb\n");
    await setHostsBlock(c, "x", ["new1", "new2"]);
    expect(await rawHostsFile()).toBe("a\n# BEGIN x\nnew1\nnew2\n# END x\nb\n");
    await setHostsBlock(c, "y", ["y1"]);
    expect(await rawHostsFile()).toBe("a\n# BEGIN x\nnew1\nnew2\n# END x\nb\n# BEGIN y\ny1\n# END y\n");
    await setHostsBlock(c, "x", []);
    expect(await rawHostsFile()).toBe("a\nb\n# BEGIN y\ny1\n# END y\n");
    await put("a\n# BEGIN z\norphan\n");
    await setHostsBlock(c, "z", ["z1"]);
    expect(await rawHostsFile()).toBe("a\n# BEGIN z\norphan\n# BEGIN z\nz1\n# END z\n");
    const before = await onHost(bed.sandbox, IP, "stat -c %i /etc/hosts");
    await setHostsBlock(c, "absent", []);
    expect(await onHost(bed.sandbox, IP, "stat -c %i /etc/hosts")).toBe(before);
    await put(ORIGINAL);
  });
});
