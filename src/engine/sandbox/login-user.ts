import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { mkdirLike } from "./host";
import type { LoginUser } from "./types";

// Hosts as production has them: SSH logs in as a user that is not root, who becomes root with
// sudo (asking for the user's own password, or not), and sshd refuses root logins.

/** How a sandbox's hosts are logged in to. */

export const ROOT_LOGIN: LoginUser = { name: "root" };

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Checks a requested login user; `undefined` means root. */
export function checkLoginUser(requested: { name?: string; sudo?: "password" | "nopasswd" } | undefined): LoginUser {
  if (requested === undefined) return ROOT_LOGIN;
  const name = requested.name ?? "deploy";
  if (name === "root") throw new Error(`login user "root": leave the option out for root logins; it is for a user that becomes root with sudo`);
  if (!USER_NAME.test(name)) throw new Error(`login user ${JSON.stringify(name)}: expected a Unix user name (lower-case letters, digits, _ and -; at most 32)`);
  const sudo = requested.sudo ?? "password";
  if (sudo !== "password" && sudo !== "nopasswd") throw new Error(`login user's sudo ${JSON.stringify(sudo)}: expected "password" or "nopasswd"`);
  return { name, sudo };
}

/** Where sudo writes its own log on the host (every command line it ran, as sudo logs them). */
export const SUDO_LOG = "/var/log/sudo.log";

/**
 * Writes the user's sudoers rule into the host's upper layer (the user itself is made by the
 * launcher, inside the host, with the machine's useradd). sudo's log goes to a file of the host's
 * own, not the machine's syslog. Debian's `Defaults use_pty` and sudo's first-time lecture stay: they are what users have.
 */
export async function prepareLoginUser(upper: string, user: LoginUser): Promise<void> {
  if (user.name === "root") return;
  const dir = await mkdirLike(upper, "etc/sudoers.d");
  const rule = user.sudo === "nopasswd" ? "NOPASSWD: ALL" : "ALL";
  const text = [
    "# sealant sandbox host: the login user becomes root with sudo (written by sealant)",
    `Defaults logfile=${SUDO_LOG}`,
    "Defaults !syslog",
    // One line per entry (sudo wraps at 80 columns by default): a test can grep it.
    "Defaults loglinelen=0",
    `${user.name} ALL=(ALL:ALL) ${rule}`,
    "",
  ].join("\n");
  // sudo ignores a sudoers file that anyone but root can write.
  await writeFile(join(dir, "sealant-sandbox"), text, { mode: 0o440 });
}
