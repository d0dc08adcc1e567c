import { checkCluster, execOnCluster, resetCluster, unlockCluster, type ClusterEvent } from "../../engine/cluster";
import { clusterCertificates } from "../../engine/cluster/certificates";
import type { CertificateReport } from "../../engine/cluster/runtime";
import { parseIpList } from "../../engine/cluster/spec-edit";
import { HostsError } from "../../engine/ssh";
import { parse } from "../args";
import { UsageError } from "../errors";
import { printJson } from "../format";
import { seconds } from "../cluster-output";
import type { Command } from "./command";
import {
  CLUSTERFILE_HELP,
  SESSION_HELP,
  OUTPUT_HELP,
  common,
  withVerbose,
  withCluster,
  withDeadline,
  confirm,
  clusterOptions,
  noPositionals,
} from "./cluster-common";

/* The cluster commands that operate on a cluster as it is: reset, check, exec, unlock. */
const resetUsage = `Usage: sealant reset [-f Clusterfile] [--force] [--json] [OPTIONS]

Tear the cluster down: every host the Clusterfile or the cluster's record names runs the
runtime's reset, then loses sealant's files (images, registry, record, lock). Safe to re-run.

${CLUSTERFILE_HELP}
      --force                  leave out hosts that cannot be reached (their files stay)
      --json                   print {plan, skipped} as JSON on stdout
  -y, --yes                    do not ask for confirmation on a terminal
${SESSION_HELP}
${OUTPUT_HELP}`;

export const reset: Command = {
  usage: resetUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      {
        ...withVerbose,
        force: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        yes: { type: "boolean", short: "y", default: false },
      },
      resetUsage,
    );
    noPositionals(positionals, "reset", resetUsage);
    await withCluster(values, async ({ spec, session, events }) => {
      if (!(await confirm(`Reset cluster ${spec.name}? Its hosts lose the cluster and everything sealant put there.`, values.yes)))
        throw new Error("not confirmed: nothing changed");
      const started = Date.now();
      const r = await withDeadline(signal, spec, "the reset", (s) =>
        resetCluster({ ...clusterOptions(session, spec, events, s, "sealant reset"), force: values.force }),
      );
      if (values.json) return printJson(r);
      const hosts = [...new Set(r.plan.phases.flatMap((p) => p.steps.map((st) => st.host)))];
      process.stdout.write(
        `cluster ${spec.name} reset on ${hosts.length} host${hosts.length === 1 ? "" : "s"} in ${seconds(Date.now() - started)}${hosts.length ? `: ${hosts.join(", ")}` : ""}\n` +
          (r.skipped.length ? `  left out (unreachable, --force; their files stay): ${r.skipped.join(", ")}\n` : ""),
      );
    });
  },
};

// --- check -----------------------------------------------------------------------------------

const checkUsage = `Usage: sealant check [-f Clusterfile] [--json] [OPTIONS]

Check every host of the Clusterfile: reachable, a member of the cluster on its image, and the
runtime's own check passing; and every master's control-plane certificates with the time they
have left (Kubernetes: kubeadm's list, CAs included), those due for renewal marked (an apply
renews them). Exits 1 when a host is not healthy or a certificate has expired.

${CLUSTERFILE_HELP}
      --json                   print {healthy, record, hosts, certificates} as JSON on stdout
                               (certificatesUnread: why, when they could not be read)
${SESSION_HELP}
${OUTPUT_HELP}`;

export const check: Command = {
  usage: checkUsage,
  async run(args, signal) {
    const { values, positionals } = parse(args, { ...withVerbose, json: { type: "boolean", default: false } }, checkUsage);
    noPositionals(positionals, "check", checkUsage);
    return withCluster(values, async ({ spec, session, events }) => {
      const checked = await checkCluster(clusterOptions(session, spec, events, signal, "sealant check"));
      // A first master that cannot be reached is the check's finding already: the certificates are then only said to be unread.
      let unread: string | undefined;
      const certs = await clusterCertificates(clusterOptions(session, spec, events, signal, "sealant check")).catch((err: unknown) => {
        unread = (err as Error).message.split("\n")[0];
        return { observed: undefined, reports: [] };
      });
      const expired = certs.reports.filter((c) => Date.parse(c.notAfter) <= Date.now());
      const r = {
        ...checked,
        healthy: checked.healthy && expired.length === 0,
        certificates: certs.reports,
        ...(unread ? { certificatesUnread: unread } : {}),
      };
      if (values.json) printJson(r);
      else {
        const width = Math.max(...r.hosts.map((h) => h.ip.length));
        const bad = r.hosts.filter((h) => !h.ok).length;
        const lines = r.hosts.map(
          (h) => `${h.ip.padEnd(width)}  ${h.ok ? "ok" : `problem: ${(h.problem ?? "").replace(/\n/g, `\n${" ".repeat(width + 11)}`)}`}`,
        );
        lines.push(...certificateLines(certs.reports, certs.observed?.renewBeforeSeconds));
        if (unread !== undefined) lines.push(`certificates: not read (${unread})`);
        if (expired.length > 0) lines.push(`expired: ${expired.map((c) => `${c.name} on ${c.host}`).join(", ")}`);
        lines.push(
          r.healthy
            ? `cluster ${spec.name} is healthy (${r.hosts.length} host${r.hosts.length === 1 ? "" : "s"})`
            : `cluster ${spec.name} is not healthy: ${bad} of ${r.hosts.length} host${r.hosts.length === 1 ? "" : "s"} failed the check`,
        );
        process.stdout.write(`${lines.join("\n")}\n`);
      }
      return r.healthy ? 0 : 1;
    });
  },
};

/** The masters' certificates as a table: host, name, expiry, days left; those under the renewal threshold marked. */
function certificateLines(reports: CertificateReport[], renewBeforeSeconds: number | undefined): string[] {
  if (reports.length === 0) return [];
  const days = renewBeforeSeconds === undefined ? undefined : renewBeforeSeconds / 86400;
  const rows = reports.map((c) => [c.host, c.name + (c.ca ? " (CA)" : ""), c.notAfter.slice(0, 16).replace("T", " "), `${c.daysLeft}d`]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return [
    `certificates${days === undefined ? "" : ` (renewed by an apply when one has under ${Math.round(days)} days left)`}:`,
    ...rows.map((r, i) => {
      const c = reports[i]!;
      const due = !c.ca && days !== undefined && (Date.parse(c.notAfter) - Date.now()) / 86_400_000 < days ? "  renewal due" : "";
      return `  ${r.map((x, j) => (j < 3 ? x.padEnd(widths[j]!) : x)).join("  ")}${due}`;
    }),
  ];
}

// --- exec ------------------------------------------------------------------------------------

const execUsage = `Usage: sealant exec [-f Clusterfile] [--roles ROLE[,ROLE]] [--ips IP[,IP]] -- COMMAND [ARG...]

Run a shell command as root on the cluster's hosts, in parallel. Each line of output is
printed as it arrives, prefixed by the host's IP (stdout to stdout, stderr to stderr). The
words after -- are joined with spaces and run by the host's shell, as ssh does. Exits 1 when
the command fails on any host, naming every such host.

${CLUSTERFILE_HELP}
  -r, --roles ROLE[,ROLE]      only hosts with one of these roles (master, node, ...)
      --ips IP[,IP]            only these hosts (sealer's ranges work)
${SESSION_HELP}
  -q, --quiet                  no warnings`;

export const exec: Command = {
  usage: execUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      { ...common, roles: { type: "string", short: "r", multiple: true }, ips: { type: "string", multiple: true } },
      execUsage,
    );
    if (positionals.length === 0) throw new UsageError(`exec needs a command: sealant exec -f Clusterfile -- COMMAND [ARG...]\n\n${execUsage}`);
    const command = positionals.join(" ");
    const roles = (values.roles ?? [])
      .flatMap((r) => r.split(","))
      .map((r) => r.trim())
      .filter((r) => r !== "");
    let ips: string[];
    try {
      ips = parseIpList(values.ips ?? []);
    } catch (err) {
      throw new UsageError(`--ips: ${(err as Error).message}\n\n${execUsage}`);
    }
    await withCluster(values, async ({ spec, session, progress }) => {
      const out = (stream: "stdout" | "stderr", host: string, line: string): void => {
        (stream === "stdout" ? process.stdout : process.stderr).write(`${host}: ${line}\n`);
      };
      const onEvent = (e: ClusterEvent): void => {
        if (e.type === "output") out(e.stream, e.host, e.line);
        else if (e.type === "warning") progress.line(`warning: ${e.host ? `${e.host}: ` : ""}${e.text}`);
      };
      try {
        // Output arrives as events, line by line (a last line without a newline included).
        await execOnCluster({ session, spec, onEvent, signal, script: command, ...(roles.length ? { roles } : {}), ...(ips.length ? { ips } : {}) });
      } catch (err) {
        if (!(err instanceof HostsError)) throw err;
        const lines = err.message.split("\n").slice(1).join("\n");
        throw new Error(`the command failed on ${err.failures.length} of ${err.total} host${err.total === 1 ? "" : "s"}:\n${lines}`);
      }
    });
  },
};

// --- unlock ----------------------------------------------------------------------------------

const unlockUsage = `Usage: sealant unlock [-f Clusterfile] [OPTIONS]

Break the cluster's lock (held on its first master while an apply, delete or reset runs) when
what held it is gone, e.g. its machine crashed. Prints who held it. Breaking the lock of an
apply that is still running lets two applies change the cluster at once: check first.

${CLUSTERFILE_HELP}
${SESSION_HELP}
  -q, --quiet                  no warnings`;

export const unlock: Command = {
  usage: unlockUsage,
  async run(args, signal) {
    const { values, positionals } = parse(args, common, unlockUsage);
    noPositionals(positionals, "unlock", unlockUsage);
    await withCluster(values, async ({ spec, session, events }) => {
      const owner = await unlockCluster(clusterOptions(session, spec, events, signal, "sealant unlock"));
      process.stdout.write(
        owner
          ? `broke the lock of cluster ${spec.name}: it was held by ${owner.user}@${owner.machine} (pid ${owner.pid}, ${owner.command}) since ${owner.since}\n`
          : `cluster ${spec.name} was not locked (or its lock had no owner yet); it is unlocked now\n`,
      );
    });
  },
};
