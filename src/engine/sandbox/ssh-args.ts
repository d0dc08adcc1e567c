import type { Sandbox, SandboxHost } from "./types";

/**
 * Arguments for the system `ssh` client to run `command` as root on a sandbox host by key,
 * verifying the host key against the sandbox's known_hosts and ignoring the user's own ssh
 * config: `spawn("ssh", sshArgs(sb, "host1", "hostname"))`.
 */
export function sshArgs(sb: Sandbox, host: SandboxHost | string, ...command: string[]): string[] {
  const h = typeof host === "string" ? sb.hosts.find((x) => x.hostname === host || x.ip === host) : host;
  if (!h) throw new Error(`sandbox "${sb.name}" has no host "${String(host)}"`);
  return [
    "-F",
    "/dev/null",
    "-i",
    sb.ssh.pk,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${sb.ssh.knownHosts}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "LogLevel=ERROR",
    `${sb.ssh.user}@${h.ip}`,
    ...command,
  ];
}
