import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * The init-system stand-in installed into every Kubernetes-mode host (written into its disk at
 * every start, so a host always runs the stand-in of the sealant that started it):
 *   /usr/lib/sealant-sandbox/init        PID 1 (Perl, on every Debian): runs `boot`, reaps orphans
 *   /usr/lib/sealant-sandbox/boot        sshd on the node address, then every enabled unit
 *   /usr/lib/sealant-sandbox/supervise   one per started unit: runs it, restarts it per Restart=
 *   /usr/lib/sealant-sandbox/systemctl.* the systemctl stand-in (see systemctl.ts for what it emulates),
 *                                        beside its sibling modules (*.js or *.ts; see copy-stand-in.ts)
 *   /usr/bin/systemctl, /usr/bin/journalctl  wrappers (and /bin/... where /bin is not /usr/bin)
 */
export const LIB_DIR = "/usr/lib/sealant-sandbox";

/** The stand-in's own file: compiled JavaScript beside this module, or the TypeScript source (run with Node's type stripping). */
export function standInSource(): { file: string; name: string } {
  const js = join(__dirname, "systemctl.js");
  if (existsSync(js)) return { file: js, name: "systemctl.js" };
  return { file: join(__dirname, "systemctl.ts"), name: "systemctl.ts" };
}

/**
 * PID 1 of a host. A PID namespace's init must reap every process re-parented to it (containerd
 * shims, daemons, supervisors whose systemctl exited), or they stay zombies. Signals from inside
 * the host cannot stop it (the kernel drops those an init does not handle); sealant stops the host
 * by killing it from outside, and the kernel then kills everything in the host.
 */
export const INIT = `#!/usr/bin/perl
# sealant sandbox host (Kubernetes mode): PID 1. Runs the boot script, then reaps every process
# re-parented to it for as long as the host runs. Written by sealant at every start.
use strict;
use warnings;
$0 = "sealant-init";
my $boot = fork();
die "sealant-init: fork: $!\\n" unless defined $boot;
if ($boot == 0) {
  exec("/bin/sh", "${LIB_DIR}/boot") or die "sealant-init: boot: $!\\n";
}
for (;;) {
  my $pid = waitpid(-1, 0);
  sleep(1) if $pid < 0;    # no child at the moment
}
`;

export const BOOT = `#!/bin/sh
# sealant sandbox host (Kubernetes mode): boot, run once by the init: sshd on the host's address,
# then every enabled unit. Its output goes to the host's log on the machine (host.log).
echo "boot: $(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname)"
/usr/sbin/sshd -E /var/log/sshd.log || echo "boot: sshd failed to start (see /var/log/sshd.log)"
exec /usr/bin/systemctl __boot
`;

/**
 * The supervisor of one started unit (systemd's part for one service): before every start it asks
 * the stand-in for a fresh start script (environment files are read then), runs it with the
 * output appended to the unit's log, and restarts it per Restart=/RestartSec= until systemctl
 * stops the unit (the `stopping` flag). SIGTERM only cuts a restart delay short.
 */
export function supervise(nodePath: string, standIn: string): string {
  return `#!/bin/sh
# sealant sandbox host: the supervisor of one started unit, spawned by the systemctl stand-in
# (${LIB_DIR}/${standIn}), which writes $S/policy. Written by sealant at every host start.
U=$1
S=/run/sealant-systemd/$U
NODE='${nodePath.replace(/'/g, `'\\''`)}'
CTL='${LIB_DIR}/${standIn}'
. "$S/policy"
note() { printf '%s %s: %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$U" "$*" >> "$LOG"; }
echo $$ > "$S/supervisor.pid"
sp=
trap '[ -z "$sp" ] || kill "$sp" 2> /dev/null' TERM
n=0
while [ ! -e "$S/stopping" ]; do
  n=$((n + 1))
  echo "$n" > "$S/attempt"
  if ! "$NODE" --disable-warning=ExperimentalWarning "$CTL" __prepare "$U" > "$S/run.sh.new" 2>> "$LOG"; then
    note "Failed to prepare the start (see above)."
    echo "exit 1" > "$S/run.sh.new"
  fi
  mv -f "$S/run.sh.new" "$S/run.sh"
  [ ! -e "$S/stopping" ] || break
  note "Starting $DESC..."
  sh "$S/run.sh" >> "$LOG" 2>&1 < /dev/null &
  pid=$!
  while :; do
    wait "$pid" 2> /dev/null # (no "Killed" notes from sh in the unit's log)
    rc=$?
    kill -0 "$pid" 2> /dev/null || break
  done
  rm -f "$S/main.pid"
  echo "$rc" > "$S/exit"
  if [ "$rc" -eq 0 ]; then
    result=success how="code=exited, status=0/SUCCESS"
  elif [ "$rc" -gt 128 ]; then
    result=signal how="code=killed, signal=$(kill -l $((rc - 128)) 2> /dev/null || echo $((rc - 128)))"
  else
    result=exit-code how="code=exited, status=$rc/FAILURE"
  fi
  # systemd's "clean" exits: status 0 and SIGHUP, SIGINT, SIGPIPE, SIGTERM
  case $rc in 0 | 129 | 130 | 141 | 143) clean=yes ;; *) clean=no ;; esac
  note "Main process exited, $how"
  [ ! -e "$S/stopping" ] || break
  echo "$result" > "$S/result"
  restart=no
  case $RESTART in
    always) restart=yes ;;
    on-success) [ "$clean" = no ] || restart=yes ;;
    on-failure) [ "$clean" = yes ] || restart=yes ;;
    on-abnormal | on-abort) [ "$result" != signal ] || [ "$clean" = yes ] || restart=yes ;;
  esac
  if [ "$restart" = no ]; then
    if [ "$TYPE" = oneshot ] && [ "$rc" -eq 0 ] && [ "$REMAIN" = yes ]; then
      echo "active exited" > "$S/state"
    elif [ "$clean" = yes ]; then
      echo "inactive dead" > "$S/state"
      note "Deactivated successfully."
    else
      echo "failed failed" > "$S/state"
      note "Failed with result '$result'."
    fi
    rm -f "$S/supervisor.pid"
    exit 0
  fi
  echo "activating auto-restart" > "$S/state"
  note "Failed with result '$result'; restarting in \${RESTART_SEC}s."
  sleep "$RESTART_SEC" &
  sp=$!
  wait "$sp"
  sp=
  [ ! -e "$S/stopping" ] || break
  note "Scheduled restart job, restart counter is at $n."
done
echo "inactive dead" > "$S/state"
note "Stopped $DESC."
rm -f "$S/supervisor.pid" "$S/stopping"
`;
}

export function systemctlWrapper(nodePath: string, standIn: string): string {
  return `#!/bin/sh
# sealant sandbox host: no systemd here; this is a stand-in (see ${LIB_DIR}/${standIn})
exec '${nodePath.replace(/'/g, `'\\''`)}' --disable-warning=ExperimentalWarning ${LIB_DIR}/${standIn} "$@"
`;
}

/** journalctl for the units' log files (no journal here): -u UNIT, -n N, -f; other options are accepted and ignored. */
export const JOURNALCTL = `#!/bin/sh
# sealant sandbox host: journalctl stand-in; each unit's log is /var/log/units/<unit>.log
units= lines=200 follow=
while [ $# -gt 0 ]; do
  case $1 in
    --unit=*) units="$units \${1#--unit=}" ;;
    --lines=*) lines=\${1#--lines=} ;;
    --follow) follow=-f ;;
    --*) ;;
    -*)
      flags=\${1#-}
      case $flags in *f*) follow=-f ;; esac
      case $flags in
        *u) units="$units $2"; shift ;;
        *n) lines=$2; shift ;;
        *u?*) units="$units \${flags#*u}" ;;
      esac
      ;;
  esac
  shift
done
files=
for u in $units; do files="$files /var/log/units/\${u%.service}.log"; done
[ -n "$files" ] || files=$(ls /var/log/units/*.log 2> /dev/null)
[ -n "$files" ] || { echo "-- No entries --"; exit 0; }
# shellcheck disable=SC2086
exec tail -q -n "$lines" $follow $files
`;
