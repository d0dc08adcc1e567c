import { applyCluster, type ApplyResult } from "../../engine/cluster";
import { formatPlan } from "../../engine/cluster/plan";
import { type ClusterSpec } from "../../engine/cluster/spec";
import { parseIpList, removeHosts } from "../../engine/cluster/spec-edit";
import { Session } from "../../engine/session";
import { parse } from "../args";
import { UsageError } from "../errors";
import { printJson } from "../format";
import { applySummary, ClusterPrinter } from "../cluster-output";
import type { Command } from "./command";
import {
  CLUSTERFILE_HELP,
  SESSION_HELP,
  OUTPUT_HELP,
  withVerbose,
  withCluster,
  withDeadline,
  asking,
  confirm,
  clusterOptions,
  derivedSpec,
  noPositionals,
} from "./cluster-common";

/*
 * The cluster commands that change membership: apply (and plan, its dry run) and delete; the
 * others (reset, check, exec, unlock) are in cluster-ops.ts, what they share in cluster-common.ts.
 */
const applyUsage = `Usage: sealant apply [-f Clusterfile] [--dry-run] [--verify] [--force] [--retry-plugin NAME] [--json] [OPTIONS]

Make the cluster match the Clusterfile: create it, join and remove hosts, roll a new image or
configuration through the hosts. sealant reads the cluster's record from its masters, plans,
checks the hosts the plan touches, then runs the plan phase by phase; an interrupted apply
re-run resumes where it stopped. One apply at a time per cluster (see sealant unlock).

${CLUSTERFILE_HELP}
      --dry-run                print the plan and change nothing (same as sealant plan)
      --verify                 ask every member whether it still holds its files; a host reset
                               out of band is set up and joined again
      --force                  remove hosts the Clusterfile dropped even if they cannot be
                               reached: the cluster forgets them (e.g. their Kubernetes node
                               and etcd member, from the first master), their own files stay
      --retry-plugin NAME      run the MODULE plugin NAME anew although it is not idempotent and
                               its failed attempt saved no checkpoint (see what it did first)
      --json                   print {plan, record, sent, dryRun} as JSON on stdout
${SESSION_HELP}
${OUTPUT_HELP}`;

export const apply: Command = {
  usage: applyUsage,
  async run(args, signal) {
    const flags = {
      ...withVerbose,
      "dry-run": { type: "boolean", default: false },
      verify: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      "retry-plugin": { type: "string", multiple: true },
      json: { type: "boolean", default: false },
    } as const;
    const { values, positionals } = parse(args, flags, applyUsage);
    noPositionals(positionals, "apply", applyUsage);
    await withCluster(values, async ({ spec, session, events }) => {
      const verifyHosts = values.verify;
      const forceRemoval = values.force;
      if (values["dry-run"])
        return printPlan(
          await applyCluster({ ...clusterOptions(session, spec, events, signal, "sealant plan"), dryRun: true, verifyHosts, forceRemoval }),
          values.json,
        );
      await runApply(spec, session, events, signal, values.json, "sealant apply", "applied", verifyHosts, forceRemoval, values["retry-plugin"] ?? []);
    });
  },
};

async function runApply(
  spec: ClusterSpec,
  session: Session,
  events: ClusterPrinter,
  signal: AbortSignal,
  json: boolean,
  command: string,
  verb: string,
  verifyHosts = false,
  forceRemoval = false,
  retryPlugins: string[] = [],
): Promise<ApplyResult> {
  const started = Date.now();
  const result = await withDeadline(signal, spec, "the apply", (s) =>
    applyCluster({ ...clusterOptions(session, spec, events, s, command), verifyHosts, forceRemoval, retryPlugins }),
  );
  if (json) printJson(result);
  else process.stdout.write(applySummary(result, Date.now() - started, verb));
  return result;
}

function printPlan(r: ApplyResult, json: boolean): void {
  if (json) printJson(r);
  else process.stdout.write(`${formatPlan(r.plan)}\n`);
}

// --- plan ------------------------------------------------------------------------------------

const planUsage = `Usage: sealant plan [-f Clusterfile] [--force] [--json] [OPTIONS]

Show what 'sealant apply' would do, phase by phase and host by host, and change nothing.
sealant connects to the hosts to read the cluster's record and check them.

${CLUSTERFILE_HELP}
      --force                  plan the removal of hosts that cannot be reached (apply --force)
      --json                   print the plan as JSON
${SESSION_HELP}
${OUTPUT_HELP}`;

export const plan: Command = {
  usage: planUsage,
  async run(args, signal) {
    const flags = { ...withVerbose, force: { type: "boolean", default: false }, json: { type: "boolean", default: false } } as const;
    const { values, positionals } = parse(args, flags, planUsage);
    noPositionals(positionals, "plan", planUsage);
    await withCluster(values, async ({ spec, session, events }) => {
      const r = await applyCluster({ ...clusterOptions(session, spec, events, signal, "sealant plan"), dryRun: true, forceRemoval: values.force });
      if (values.json) printJson(r.plan);
      else process.stdout.write(`${formatPlan(r.plan)}\n`);
    });
  },
};

// --- delete ----------------------------------------------------------------------------------

const deleteUsage = `Usage: sealant delete [-f Clusterfile] --nodes IP[,IP...] [--force] [--dry-run] [--json] [OPTIONS]

Remove hosts from the cluster: an apply of the Clusterfile without them (they leave the
cluster, are reset, and lose sealant's files). Groups left without hosts are dropped; the last
master cannot be removed (use sealant reset for the whole cluster). The Clusterfile itself is
not changed: take the hosts out of it too, or the next apply joins them again.

${CLUSTERFILE_HELP}
      --nodes IP[,IP...]       the hosts to remove, any role (repeatable; sealer's ranges
                               such as 192.168.0.2-192.168.0.5 work)
      --masters IP[,IP...]     the same (sealer's spelling for masters)
      --force                  remove hosts that cannot be reached anyway: the cluster forgets
                               them (e.g. their Kubernetes node and etcd member), their own
                               files stay; without it an unreachable host fails the delete
      --dry-run                print the plan and change nothing
      --json                   print {plan, record, sent, dryRun} as JSON on stdout
  -y, --yes                    do not ask for confirmation on a terminal
${SESSION_HELP}
${OUTPUT_HELP}`;

export const del: Command = {
  usage: deleteUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      {
        ...withVerbose,
        nodes: { type: "string", multiple: true },
        masters: { type: "string", multiple: true },
        force: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        yes: { type: "boolean", short: "y", default: false },
      },
      deleteUsage,
    );
    noPositionals(positionals, "delete", deleteUsage);
    let ips: string[];
    try {
      ips = parseIpList([...(values.nodes ?? []), ...(values.masters ?? [])]);
    } catch (err) {
      throw new UsageError(`--nodes: ${(err as Error).message}\n\n${deleteUsage}`);
    }
    if (ips.length === 0) throw new UsageError(`delete needs the hosts to remove: --nodes IP[,IP...]\n\n${deleteUsage}`);
    await withCluster(values, async ({ spec, session, events, progress }) => {
      const smaller = derivedSpec(spec, removeHosts(spec, ips));
      if (values["dry-run"] || asking(values.yes)) {
        const dry = await applyCluster({ ...clusterOptions(session, smaller, events, signal, "sealant plan"), dryRun: true, forceRemoval: values.force });
        if (values["dry-run"]) return printPlan(dry, values.json);
        if (!(await confirm(`${formatPlan(dry.plan)}\nRemove ${ips.join(", ")} from cluster ${spec.name}?`, values.yes)))
          throw new Error("not confirmed: nothing changed");
      }
      await runApply(smaller, session, events, signal, values.json, "sealant delete", "updated", false, values.force);
      progress.line(
        `note: ${values.file} still lists ${ips.join(", ")}: remove ${ips.length === 1 ? "it" : "them"} there too, or the next 'sealant apply' joins ${ips.length === 1 ? "it" : "them"} again`,
      );
    });
  },
};

// --- reset -----------------------------------------------------------------------------------
