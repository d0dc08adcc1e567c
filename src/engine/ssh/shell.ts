/** Building the command lines sent to a host (POSIX sh quoting, env, sudo). */

/** Quotes one word for POSIX sh: `it's` -> `'it'\''s'`. */
export function shellQuote(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * How a command gets root on a host whose user is not root:
 * - `none`: run as the login user;
 * - `nopasswd`: `sudo -n` (fails instead of prompting);
 * - `password`: `sudo -k -S -p ''`, the password written as the first line of stdin (never on
 *   the command line). `-k` makes sudo ask even when it has cached credentials, so the
 *   password line is never left over for the command to read.
 */
export type SudoMode = "none" | "nopasswd" | "password";

/**
 * The command line for `command` with `env` set and, when asked, run through sudo. Without env
 * or sudo the command goes as written (the login shell runs it, as `ssh host cmd` does);
 * otherwise it becomes `[sudo ...] env K=V sh -c '<command>'`, which works whatever the
 * login shell is.
 */
export function wrapCommand(command: string, opts: { env?: Record<string, string>; sudo?: SudoMode } = {}): string {
  const env = Object.entries(opts.env ?? {});
  for (const [k] of env) if (!ENV_NAME.test(k)) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
  const sudo = opts.sudo ?? "none";
  if (env.length === 0 && sudo === "none") return command;
  const parts: string[] = [];
  if (sudo === "nopasswd") parts.push("sudo -n --");
  else if (sudo === "password") parts.push("sudo -k -S -p '' --");
  if (env.length > 0) parts.push("env", ...env.map(([k, v]) => shellQuote(`${k}=${v}`)));
  parts.push("sh -c", shellQuote(command));
  return parts.join(" ");
}

/**
 * The first line a command writes to stderr: the PID of the shell sshd started for it, which
 * leads the session's process group. OpenSSH refuses `signal` requests for root logins
 * ("session signalling requires privilege separation") and does not kill a command whose
 * channel is closed, so a timed-out or aborted command is killed with `kill -KILL -- -PID`
 * over a second channel. The line is taken out of stderr before anyone sees it.
 */
export const PID_MARKER = "@sealant-pid ";

export function withPidReport(wire: string): string {
  return `echo "${PID_MARKER}$$" >&2; ${wire}`;
}

/** Kills the process group a command runs in (its detached daemons, in their own groups, survive). */
export function killGroupCommand(pid: number): string {
  // `-s KILL --`: dash rejects `kill -KILL -- -PID` ("Illegal number: -"); POSIX form works in both.
  return `kill -s KILL -- -${pid} 2>/dev/null || kill -s KILL ${pid} 2>/dev/null || true`;
}
