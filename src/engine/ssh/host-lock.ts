import { shellQuote } from "./shell";

/**
 * Host-side locks for files several clusters edit on one host (/etc/hosts, containerd's
 * certs.d): flock(1) on a file under /run/lock, held by the shell that does the edit. The
 * kernel drops it when that shell ends, however it ends, so such a lock is never stale.
 */
export const HOST_LOCK_DIR = "/run/lock";

/** How long an edit waits for another sealant's edit of the same file. */
export const HOST_LOCK_TIMEOUT_S = 60;

/** The lock of /etc/hosts: every sealant edit of it takes this one, whichever cluster it is for. */
export const ETC_HOSTS_LOCK = "etc-hosts";

export function hostLockPath(name: string): string {
  return `${HOST_LOCK_DIR}/sealant-${name}.lock`;
}

/**
 * `script` (shell, run by `sh -c` on the host) wrapped so that it runs holding the host lock
 * `name`; `what` says in an error what the lock guards. The script keeps the caller's stdin.
 */
export function underHostLock(name: string, what: string, script: string, timeoutS = HOST_LOCK_TIMEOUT_S): string {
  const lock = hostLockPath(name);
  const missing = `flock (util-linux) is needed on this host to edit ${what} under a lock`;
  const busy = `the host lock ${lock} was not free within ${timeoutS}s: another sealant (another cluster's apply) is editing ${what}; the lock goes when that command ends`;
  return [
    `command -v flock > /dev/null 2>&1 || { echo ${shellQuote(missing)} >&2; exit 1; }`,
    `mkdir -p ${HOST_LOCK_DIR}`,
    `{ flock -w ${timeoutS} 9 || { echo ${shellQuote(busy)} >&2; exit 1; }`,
    script,
    `} 9>> ${shellQuote(lock)}`,
  ].join("\n");
}
