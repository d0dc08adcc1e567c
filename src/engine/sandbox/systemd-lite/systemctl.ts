/**
 * `systemctl` for Kubernetes-capable sandbox hosts, which have no systemd: a stand-in emulating the
 * host's init system for what Kubernetes' set-up drives (kubeadm's initsystem, sealer-style
 * scripts). It is a sandbox feature, not part of sealant's product. Inside a host it is
 * /usr/lib/sealant-sandbox/systemctl.{js,ts}, run by the machine's Node through /usr/bin/systemctl,
 * beside the sibling modules it imports (this directory's unit-file, runtime, start-stop, verbs,
 * ...). They import only Node's built-in modules and each other, so they run as files copied into
 * the host (compiled, or as TypeScript with Node's type stripping; see copy-stand-in.ts).
 *
 * EMULATED
 * - Unit files: `<name>.service` from /etc/systemd/system, /run/systemd/system, /lib/systemd/system
 *   (first found wins; a link to /dev/null is a mask), template units (`foo@bar.service` from
 *   `foo@.service`), drop-ins `<name>.service.d/*.conf` from the same directories (ordered by file
 *   name; /etc beats /lib for the same name), `\` line continuation, `#`/`;` comments, the
 *   specifiers %n %N %p %i %I %t %h %H %%.
 * - [Service]: Type= simple|exec|notify|idle (running once the main process is spawned; no
 *   READY=1 protocol) and oneshot (+ RemainAfterExit=); ExecStartPre=, ExecStart=, ExecStartPost=,
 *   ExecStop=, ExecReload= with the `-` prefix (failure ignored), an empty assignment resetting the
 *   list (a drop-in replacing ExecStart=), systemd's quoting and escapes, `${VAR}` (one word) and
 *   `$VAR` (split at whitespace) from the unit's environment; Environment=, EnvironmentFile= (`-`:
 *   optional; read anew at every start, overriding Environment=); WorkingDirectory= (`-`, `~`);
 *   Restart= no|always|on-success|on-failure|on-abnormal|on-abort with RestartSec=; KillMode=
 *   control-group|mixed|process|none, KillSignal=, TimeoutStopSec= (then SIGKILL).
 * - [Install]: WantedBy=, RequiredBy=, Alias= as real links under /etc/systemd/system; units linked
 *   from any `/etc/systemd/system/*.wants|*.requires` start when the host boots (`__boot`, run by
 *   the host's init), so a restarted host brings its services back.
 * - Commands: start, stop, restart, try-restart, reload, reload-or-restart, enable [--now],
 *   disable [--now], reenable, mask, unmask, is-active, is-enabled, is-failed, status, show
 *   [-p P,...] [--value], cat, kill [-s SIG], reset-failed, daemon-reload (a no-op: unit files are
 *   read afresh by every command), list-units, list-unit-files; options -q, --now, --no-block,
 *   --no-pager and other display options (accepted, ignored). Exit codes as systemctl's (0; 1;
 *   3 = not active; 4 = no such unit for status; 5 = unit not found for start/stop).
 * - A supervisor per started unit (/usr/lib/sealant-sandbox/supervise, POSIX sh): runs the unit's
 *   commands, restarts it per Restart=, and appends its output and journal-like lines to
 *   /var/log/units/<unit without .service>.log. Each unit's processes are tracked in a cgroup
 *   `/system.slice/<unit>` of the name=systemd hierarchy (or the unified one), as systemd does.
 *   Runtime state lives in /run/sealant-systemd/<unit>/ (a tmpfs: a reboot forgets it).
 *
 * NOT EMULATED: targets, sockets, timers, paths, mounts and other unit types; dependencies and
 * ordering (Requires=, Wants=, After= only order the boot); Type=forking and Type=dbus (refused);
 * the sd_notify protocol; User=/Group= and every sandboxing, resource and limit setting (Limit*=,
 * OOMScoreAdjust=, TasksMax=, Delegate=, Protect*=, ...: the service runs as root with the host's
 * limits); StandardOutput=/StandardError= (always the unit's log file); StartLimit*= (a unit
 * restarts for ever); conditions and asserts; timeouts for starting; `systemctl --user`; the
 * journal itself (use the log files); log rotation. Concurrent systemctl calls on the same unit
 * are serialised by a lock directory.
 */
import { Fail } from "./errors";
import { parseCommandLine } from "./options";
import { run } from "./verbs";

export function main(argv: string[]): number {
  try {
    const { verb, units, opts } = parseCommandLine(argv);
    return run(verb, units, opts);
  } catch (err) {
    if (err instanceof Fail) {
      if (err.message) process.stderr.write(`${err.message}\n`);
      return err.code;
    }
    throw err;
  }
}

// Run as a program only when installed in a host (never when imported, e.g. by tests).
if (/\/sealant-sandbox\/systemctl\.[jt]s$/.test(process.argv[1] ?? "")) process.exitCode = main(process.argv.slice(2));
