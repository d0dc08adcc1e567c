#!/usr/bin/env node
import { InterruptedError } from "../engine/util/abort";
import { commands } from "./commands";
import { UsageError, formatError } from "./errors";

const HELP = `sealant — build, share and run cluster images

Usage: sealant COMMAND [OPTIONS]

Images:
  build      Build a cluster image from a Kubefile
  images     List images in the local store
  inspect    Show an image's digest, layers, metadata and container images
  tag        Give an image another name
  rmi        Remove image names (and blobs nothing else uses)
  prune      Drop the build cache and blobs no image uses
  merge      Combine cluster images into one
Registries and archives:
  pull       Pull an image from a registry
  push       Push an image to a registry
  save       Write images to an OCI archive (tar)
  load       Read images from an OCI archive
  login      Store credentials for a registry
  logout     Remove stored credentials
Clusters (from a Clusterfile, -f; sealant's or any of sealer's):
  plan       Show what apply would do, host by host; change nothing
  apply      Create the cluster or make it match the Clusterfile (join, remove, upgrade)
  delete     Remove hosts from the cluster (--nodes IP,...)
  reset      Tear the cluster down on every host
  check      Check every host: reachable, a member, the runtime's check passing
  exec       Run a command on the cluster's hosts (-- COMMAND)
  unlock     Break a stale cluster lock
  backup     Back a Kubernetes cluster up: etcd snapshot, pki, kubeadm configuration (--to DIR)
  restore    Bring a Kubernetes cluster back from a backup, same or new hosts (--from ARCHIVE)
  convert    Write a sealer Clusterfile (any format) as sealant's own
Hosts:
  sandbox    Local test hosts (namespaces + sshd on 127.0.10.N; needs root)

Environment: SEALANT_HOME (default ~/.sealant) holds the store, credentials and known_hosts.
Run 'sealant COMMAND --help' for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${HELP}\n`);
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "version") {
    process.stdout.write(`sealant ${require("../../package.json").version}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}" (run 'sealant --help' for the list)`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  const controller = new AbortController();
  onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) {
      // A second signal: the user does not want to wait for the cleanup.
      process.stderr.write(`sealant: ${name} interrupted (${sig} again; stopped without cleaning up)\n`);
      return dieBy(sig);
    }
    interrupted = { command: name, signal: sig };
    controller.abort(new InterruptedError(sig));
    // Everything the command waits on takes the signal; should something not, the process still
    // ends: a stuck command must never outlive the user's Ctrl-C or a supervisor's SIGTERM.
    const grace = stopGraceMs(name);
    setTimeout(() => {
      process.stderr.write(`sealant: ${name} interrupted (${sig}; it did not stop within ${grace / 1000} s, so some temporary files may remain)\n`);
      dieBy(sig);
    }, grace);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return (await command.run(rest, controller.signal)) ?? 0;
}

/**
 * How long an interrupted command may take to stop: local work (a build, a pull) aborts and
 * removes its temporary files in well under a second; a cluster command may still have to
 * release its lock on the hosts over SSH.
 */
function stopGraceMs(command: string): number {
  return ["plan", "apply", "delete", "reset", "check", "exec", "unlock", "sandbox", "backup", "restore"].includes(command) ? 60_000 : 5000;
}
let interrupted: { command: string; signal: NodeJS.Signals } | undefined;
let onSignal: ((sig: NodeJS.Signals) => void) | undefined;

/**
 * Ends the process by the signal itself, its handler removed, as a program that caught SIGINT
 * should once it has cleaned up (so a shell running it as part of a script stops too; the exit
 * status reads 130 or 143). process.exit would instead first join libuv's worker threads, and
 * one blocked in a system call (an open() waiting for a FIFO's writer, a hung network file
 * system) would keep the process alive for ever.
 */
function dieBy(sig: NodeJS.Signals): void {
  finished = true;
  if (onSignal) {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  process.kill(process.pid, sig);
}

// If the event loop empties while a command is still pending, something never settled: that
// must not look like success.
let finished = false;
process.on("beforeExit", () => {
  if (!finished) {
    process.stderr.write("sealant: internal error: the operation stopped without finishing (please report this)\n");
    process.exit(70);
  }
});

main(process.argv.slice(2)).then(
  (code) => {
    finished = true;
    process.exit(code);
  },
  (err: unknown) => {
    finished = true;
    if (interrupted) {
      // Whatever the aborted work failed with, the cause was the signal: say that, once.
      process.stderr.write(`sealant: ${interrupted.command} interrupted (${interrupted.signal})\n`);
      return dieBy(interrupted.signal);
    }
    process.stderr.write(`sealant: ${formatError(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
