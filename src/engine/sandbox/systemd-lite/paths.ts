import { join } from "node:path";

// Paths inside a host (the stand-in runs there; these are not the machine's).

export const UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"];
export const ETC_UNITS = "/etc/systemd/system";
export const RUN_DIR = "/run/sealant-systemd";
export const LOG_DIR = "/var/log/units";
export const LIB_DIR = "/usr/lib/sealant-sandbox";
export const SUPERVISE = `${LIB_DIR}/supervise`;
export const BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const CGROUP_ROOTS = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"];

/** A started unit's runtime state (a tmpfs: a reboot forgets it), and its log file. */
export const stateDir = (unit: string) => join(RUN_DIR, unit);
export const logFile = (unit: string) => join(LOG_DIR, `${unit.replace(/\.service$/, "")}.log`);
