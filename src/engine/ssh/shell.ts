/** Building the command lines sent to a host (POSIX sh quoting, env, sudo). */
import { randomBytes } from "node:crypto";

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

/** A command as sent: the command line, and what goes to its stdin before the caller's own input. */
export interface Wire {
  /** The command line (no secret inside: what every process on the host can read). */
  line: string;
  /** The environment block the line reads first from stdin (after sudo's password line, if any). */
  stdinPrefix?: string;
}

/**
 * The command line for `command` with `env` set and, when asked, run through sudo. Without env
 * or sudo the command goes as written (the login shell runs it, as `ssh host cmd` does);
 * otherwise it becomes `[sudo ...] sh -c '<command>'`, which works whatever the login shell is.
 * The env's values never appear in that line — a command line is readable by every user of the
 * host (`ps`) and sudo logs it — they travel on stdin (see `envReader`) ahead of the caller's
 * input, which the command then reads as if nothing came before it.
 */
export function wireCommand(command: string, opts: { env?: Record<string, string>; sudo?: SudoMode } = {}): Wire {
  const env = Object.entries(opts.env ?? {});
  for (const [k] of env) if (!ENV_NAME.test(k)) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
  const sudo = opts.sudo ?? "none";
  if (env.length === 0 && sudo === "none") return { line: command };
  const parts: string[] = [];
  if (sudo === "nopasswd") parts.push("sudo -n --");
  else if (sudo === "password") parts.push("sudo -k -S -p '' --");
  if (env.length === 0) return { line: [...parts, "sh -c", shellQuote(command)].join(" ") };
  const block = env.map(([k, v]) => `export ${k}=${shellQuote(v)}`).join("\n");
  const end = delimiterFor(block);
  return { line: [...parts, "sh -c", shellQuote(`${envReader(end)}\n${command}`)].join(" "), stdinPrefix: `${block}\n${end}\n` };
}

/** The command line alone (tests and callers that send no env). */
export function wrapCommand(command: string, opts: { env?: Record<string, string>; sudo?: SudoMode } = {}): string {
  return wireCommand(command, opts).line;
}

/**
 * A line that occurs nowhere in `text`: random (so nobody can plant it in a value ahead of time)
 * and checked, for heredocs and the env block.
 */
export function delimiterFor(text: string, prefix = "SEALANT_END_"): string {
  for (;;) {
    const d = `${prefix}${randomBytes(12).toString("hex")}`;
    if (!text.includes(d)) return d;
  }
}

/**
 * Shell that reads `export K='v'` lines from stdin up to the line `end` and runs them. `read`
 * takes one byte at a time from a pipe (POSIX requires it not to read past the line), so what
 * follows on stdin is left for the command. A block cut short fails instead of running half.
 */
function envReader(end: string): string {
  return [
    `sealant_env=; sealant_end=`,
    `while IFS= read -r sealant_line; do if [ "$sealant_line" = ${end} ]; then sealant_end=1; break; fi; sealant_env="$sealant_env$sealant_line`,
    `"; done`,
    `[ -n "$sealant_end" ] || { echo "sealant: the command's environment did not arrive on its stdin" >&2; exit 125; }`,
    `eval "$sealant_env"; unset sealant_env sealant_end sealant_line`,
  ].join("\n");
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
