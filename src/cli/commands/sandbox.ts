import { KUBE_MAX_INDEX, sandboxAdd, sandboxDown, sandboxList, sandboxUp, startHost, stopHost, type Sandbox, type SandboxHost } from "../../engine/sandbox";
import { parse } from "../args";
import { UsageError } from "../errors";
import { printJson, table } from "../format";
import type { Command } from "./command";

const usage = `Usage: sealant sandbox up N [--name NAME] [--first-index I] [--user NAME [--sudo password|nopasswd]]
                          [--kubernetes [--subnet CIDR]] [--json]
       sealant sandbox add N [--name NAME] [--json]
       sealant sandbox stop HOST [--name NAME]
       sealant sandbox start HOST [--name NAME]
       sealant sandbox down [--name NAME]
       sealant sandbox ls [--json]

Local SSH hosts for trying cluster images on one machine (needs root): each host is a process
tree in its own mount, PID and UTS namespaces on an overlay of this machine's / (it sees the
machine's programs; what it writes stays its own), with sshd as its PID 1 on 127.0.10.N:22,
hostname hostN. root logs in by key or password. The hosts keep running after this command
exits; 'down' stops them and deletes their files.

With --user NAME the hosts are as production has them: SSH logs in as NAME (by the sandbox's key
or its password), who becomes root with sudo asking for that same password (--sudo nopasswd: no
password), and sshd refuses root logins. The password is in the sandbox's passwd file (mode
0600); the output names the file, only --json prints it.

With --kubernetes each host is a Kubernetes-capable node instead: its own network namespace with
eth0 at 10.231.S.(10+N) on a private bridge that leads nowhere else (this machine reaches it by a
veth at 10.231.S.254), its own cgroup and IPC namespaces, real directories for
/var/lib/{containerd,kubelet,etcd}, the kubelet's sysctls (the machine's stay unchanged), and a
systemctl stand-in (no systemd here) whose enabled units start when the host boots.

  up N                 start a sandbox of N hosts (fails if one of that name is up)
  add N                start N more hosts in a running sandbox
  stop HOST            power a host off (HOST: hostN, its IP, or N); its disk is kept
  start HOST           boot a stopped host again, with its disk and host key
  down                 stop every host and remove the sandbox
  ls                   list sandboxes and their hosts

      --name NAME      the sandbox (default "default"; files in $SEALANT_HOME/sandbox/NAME)
      --first-index I  number the hosts from I: 127.0.10.I, hostI (default: first free range)
      --user NAME      log in as NAME, not root (see above); recorded, so added hosts have it too
      --sudo MODE      with --user: password (default) or nopasswd
      --kubernetes     Kubernetes-capable hosts (see above); recorded, so add/stop/start follow
      --subnet CIDR    with --kubernetes: the sandbox's /24 (default: the first free 10.231.S.0/24)
      --json           print {"hosts":[{"ip","hostname"}...],"ssh":{"user","sudo","pk","passwd",...}}`;

const options = {
  name: { type: "string", default: "default" },
  "first-index": { type: "string" },
  kubernetes: { type: "boolean", default: false },
  subnet: { type: "string" },
  user: { type: "string" },
  sudo: { type: "string" },
  json: { type: "boolean", default: false },
} as const;

function count(text: string | undefined, what: string): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || n < 1)
    throw new UsageError(`${what} needs a number of hosts (at least 1), got ${text === undefined ? "nothing" : `"${text}"`}\n\n${usage}`);
  return n;
}

function toJson(sb: Sandbox) {
  const out: Record<string, unknown> = {
    name: sb.name,
    dir: sb.dir,
    hosts: sb.hosts.map((h) =>
      sb.kubernetes ? { ip: h.ip, hostname: h.hostname, running: h.running, netns: h.netns } : { ip: h.ip, hostname: h.hostname, running: h.running },
    ),
    ssh: { user: sb.ssh.user, ...(sb.ssh.sudo ? { sudo: sb.ssh.sudo } : {}), pk: sb.ssh.pk, passwd: sb.ssh.passwd, knownHosts: sb.ssh.knownHosts },
  };
  if (sb.kubernetes) out["kubernetes"] = sb.kubernetes;
  return out;
}

function hostTable(hosts: SandboxHost[]): string {
  return table(
    ["HOST", "IP", "STATE", "PID"],
    hosts.map((h) => [h.hostname, h.ip, h.running ? "running" : "stopped", h.running ? String(h.pid) : "-"]),
  );
}

function printSandbox(sb: Sandbox, headline: string): void {
  const first = sb.hosts.find((h) => h.running) ?? sb.hosts[0];
  const k = sb.kubernetes;
  const kube = k
    ? `Kubernetes mode: subnet ${k.subnet}, hub (gateway, dead end) ${k.hubIp} in netns ${k.hubNetns}, this machine ${k.rootIp} on ${k.rootVeth}\n` +
      k.warnings.map((w) => `warning: ${w}\n`).join("") +
      `a command inside a host without ssh: nsenter -t PID -a ...; its network: ip netns exec ${first?.netns ?? "NETNS"} ...\n\n`
    : "";
  process.stdout.write(
    `${headline}\n\n${hostTable(sb.hosts)}\n\n${kube}` +
      `ssh as ${sb.ssh.user} with key ${sb.ssh.pk} (password in ${sb.dir}/passwd), host keys in ${sb.ssh.knownHosts}:\n` +
      loginNote(sb) +
      `  ssh -i ${sb.ssh.pk} -o UserKnownHostsFile=${sb.ssh.knownHosts} ${sb.ssh.user}@${first?.ip ?? "IP"}\n`,
  );
}

/** For a login user other than root: how it becomes root, and how a Clusterfile logs in as it (the password never printed). */
function loginNote(sb: Sandbox): string {
  if (sb.ssh.user === "root") return "";
  const sudo = sb.ssh.sudo === "nopasswd" ? "sudo without a password" : "sudo asking for the same password";
  return (
    `  (root cannot log in; ${sb.ssh.user} becomes root with ${sudo}` +
    `${sb.ssh.sudo === "nopasswd" ? "" : `; give sealant that password as the Clusterfile's ssh.passwd, or as a Pulumi secret`})\n`
  );
}

export const sandbox: Command = {
  usage,
  async run(args, signal) {
    const { values, positionals } = parse(args, options, usage);
    const [sub, ...rest] = positionals;
    const name = values.name;
    if (values["first-index"] !== undefined && sub !== "up") throw new UsageError(`--first-index is for sandbox up\n\n${usage}`);
    if ((values.kubernetes || values.subnet !== undefined) && sub !== "up")
      throw new UsageError(`--kubernetes and --subnet are for sandbox up (a sandbox keeps its mode)\n\n${usage}`);
    if (values.subnet !== undefined && !values.kubernetes) throw new UsageError(`--subnet needs --kubernetes\n\n${usage}`);
    if ((values.user !== undefined || values.sudo !== undefined) && sub !== "up")
      throw new UsageError(`--user and --sudo are for sandbox up (a sandbox keeps its login user)\n\n${usage}`);
    if (values.sudo !== undefined && values.user === undefined) throw new UsageError(`--sudo needs --user\n\n${usage}`);
    if (values.sudo !== undefined && values.sudo !== "password" && values.sudo !== "nopasswd")
      throw new UsageError(`--sudo "${values.sudo}": expected password or nopasswd`);
    if (values.user !== undefined && values.kubernetes) throw new UsageError(`--user: Kubernetes-mode hosts log in as root only`);
    const one = (what: string) => {
      if (rest.length !== 1) throw new UsageError(`sandbox ${what} needs exactly one argument\n\n${usage}`);
      return rest[0]!;
    };
    const none = (what: string) => {
      if (rest.length) throw new UsageError(`sandbox ${what} takes no arguments (got ${rest.join(" ")})\n\n${usage}`);
    };
    switch (sub) {
      case "up": {
        const n = count(one("up"), "sandbox up");
        let firstIndex: number | undefined;
        if (values["first-index"] !== undefined) {
          firstIndex = Number(values["first-index"]);
          const max = values.kubernetes ? KUBE_MAX_INDEX : 254;
          if (!/^\d+$/.test(values["first-index"]) || firstIndex < 1 || firstIndex > max)
            throw new UsageError(`--first-index "${values["first-index"]}": expected 1-${max}`);
        }
        const started = Date.now();
        const kubernetes = values.kubernetes ? (values.subnet !== undefined ? { subnet: values.subnet } : true) : false;
        const user = values.user !== undefined ? { user: { name: values.user, ...(values.sudo ? { sudo: values.sudo as "password" | "nopasswd" } : {}) } } : {};
        const sb = await sandboxUp(n, { name, signal, kubernetes, ...user, ...(firstIndex !== undefined ? { firstIndex } : {}) });
        if (values.json) return printJson(toJson(sb));
        printSandbox(sb, `sandbox "${sb.name}": ${sb.hosts.length} host(s) up in ${((Date.now() - started) / 1000).toFixed(2)} s (${sb.dir})`);
        return;
      }
      case "add": {
        const n = count(one("add"), "sandbox add");
        const sb = await sandboxAdd(name, n, { signal });
        if (values.json) return printJson(toJson(sb));
        printSandbox(sb, `sandbox "${sb.name}": now ${sb.hosts.length} host(s)`);
        return;
      }
      case "stop": {
        const h = await stopHost(name, one("stop"));
        process.stdout.write(`${h.hostname} (${h.ip}) stopped; its disk is kept in ${h.upper}\n`);
        return;
      }
      case "start": {
        const h = await startHost(name, one("start"), { signal });
        process.stdout.write(`${h.hostname} (${h.ip}) running (pid ${h.pid})\n`);
        return;
      }
      case "down": {
        none("down");
        if (!(await sandboxDown(name))) throw new Error(`no sandbox named "${name}"`);
        process.stdout.write(`sandbox "${name}" is down and removed\n`);
        return;
      }
      case "ls": {
        none("ls");
        const list = await sandboxList();
        if (values.json) return printJson(list.map(toJson));
        if (!list.length) {
          process.stdout.write("no sandboxes\n");
          return;
        }
        process.stdout.write(
          `${table(
            ["NAME", "HOSTS", "RUNNING", "IPS", "DIR"],
            list.map((sb) => [
              sb.kubernetes ? `${sb.name} (kubernetes)` : sb.name,
              String(sb.hosts.length),
              String(sb.hosts.filter((h) => h.running).length),
              ipRange(sb.hosts),
              sb.dir,
            ]),
          )}\n`,
        );
        return;
      }
      case undefined:
        throw new UsageError(`sandbox needs a subcommand: up, add, stop, start, down or ls\n\n${usage}`);
      default:
        throw new UsageError(`unknown sandbox subcommand "${sub}" (expected up, add, stop, start, down or ls)\n\n${usage}`);
    }
  },
};

function ipRange(hosts: SandboxHost[]): string {
  if (!hosts.length) return "-";
  const sorted = [...hosts].sort((a, b) => a.index - b.index);
  const prefix = sorted[0]!.ip.replace(/\d+$/, "");
  const last = sorted.map((h) => Number(h.ip.slice(prefix.length)));
  const contiguous = sorted.every((h, i) => h.ip.startsWith(prefix) && (i === 0 || last[i] === last[i - 1]! + 1));
  return contiguous && sorted.length > 1 ? `${prefix}${last[0]}-${last[last.length - 1]}` : sorted.map((h) => h.ip).join(",");
}
