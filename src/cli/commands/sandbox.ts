import { sandboxAdd, sandboxDown, sandboxList, sandboxUp, startHost, stopHost, type Sandbox, type SandboxHost } from "../../engine/sandbox";
import { parse } from "../args";
import { UsageError } from "../errors";
import { printJson, table } from "../format";
import type { Command } from "./index";

const usage = `Usage: sealant sandbox up N [--name NAME] [--first-index I] [--json]
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

  up N                 start a sandbox of N hosts (fails if one of that name is up)
  add N                start N more hosts in a running sandbox
  stop HOST            power a host off (HOST: hostN, 127.0.10.N or N); its disk is kept
  start HOST           boot a stopped host again, with its disk and host key
  down                 stop every host and remove the sandbox
  ls                   list sandboxes and their hosts

      --name NAME      the sandbox (default "default"; files in $SEALANT_HOME/sandbox/NAME)
      --first-index I  number the hosts from I: 127.0.10.I, hostI (default: first free range)
      --json           print {"hosts":[{"ip","hostname"}...],"ssh":{"user","pk","passwd",...}}`;

const options = {
  name: { type: "string", default: "default" },
  "first-index": { type: "string" },
  json: { type: "boolean", default: false },
} as const;

function count(text: string | undefined, what: string): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || n < 1) throw new UsageError(`${what} needs a number of hosts (at least 1), got ${text === undefined ? "nothing" : `"${text}"`}\n\n${usage}`);
  return n;
}

function toJson(sb: Sandbox) {
  return {
    name: sb.name,
    dir: sb.dir,
    hosts: sb.hosts.map((h) => ({ ip: h.ip, hostname: h.hostname, running: h.running })),
    ssh: { user: sb.ssh.user, pk: sb.ssh.pk, passwd: sb.ssh.passwd, knownHosts: sb.ssh.knownHosts },
  };
}

function hostTable(hosts: SandboxHost[]): string {
  return table(
    ["HOST", "IP", "STATE", "PID"],
    hosts.map((h) => [h.hostname, h.ip, h.running ? "running" : "stopped", h.running ? String(h.pid) : "-"]),
  );
}

function printSandbox(sb: Sandbox, headline: string): void {
  const first = sb.hosts.find((h) => h.running) ?? sb.hosts[0];
  process.stdout.write(
    `${headline}\n\n${hostTable(sb.hosts)}\n\n` +
      `ssh as ${sb.ssh.user} with key ${sb.ssh.pk} (password in ${sb.dir}/passwd), host keys in ${sb.ssh.knownHosts}:\n` +
      `  ssh -i ${sb.ssh.pk} -o UserKnownHostsFile=${sb.ssh.knownHosts} ${sb.ssh.user}@${first?.ip ?? "IP"}\n`,
  );
}

export const sandbox: Command = {
  usage,
  async run(args, signal) {
    const { values, positionals } = parse(args, options, usage);
    const [sub, ...rest] = positionals;
    const name = values.name;
    if (values["first-index"] !== undefined && sub !== "up") throw new UsageError(`--first-index is for sandbox up\n\n${usage}`);
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
          if (!/^\d+$/.test(values["first-index"]) || firstIndex < 1 || firstIndex > 254) throw new UsageError(`--first-index "${values["first-index"]}": expected 1-254`);
        }
        const started = Date.now();
        const sb = await sandboxUp(n, { name, signal, ...(firstIndex !== undefined ? { firstIndex } : {}) });
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
            list.map((sb) => [sb.name, String(sb.hosts.length), String(sb.hosts.filter((h) => h.running).length), ipRange(sb.hosts), sb.dir]),
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
  const idx = hosts.map((h) => h.index).sort((a, b) => a - b);
  const contiguous = idx.every((v, i) => i === 0 || v === idx[i - 1]! + 1);
  return contiguous && idx.length > 1 ? `127.0.10.${idx[0]}-${idx[idx.length - 1]}` : idx.map((i) => `127.0.10.${i}`).join(",");
}
