import type { Service } from "./unit-file";
import { parseExecLine, shQuote, type ExecLine } from "./unit-syntax";

/**
 * The shell script for one start attempt (the supervisor runs it): join the unit's cgroup, change
 * directory, ExecStartPre=, then the main process (exec'd, so its PID is the script's), ExecStartPost=.
 */
export function startScript(svc: Service, env: Map<string, string>, paths: { state: string; cgroup?: string }): string {
  const envArgs = [...env.entries()].map(([k, v]) => shQuote(`${k}=${v}`)).join(" ");
  const run = (line: ExecLine) => `env -i ${envArgs} ${line.argv.map(shQuote).join(" ")}`;
  const lines = [
    `# ${svc.name}: one start, written by systemctl at ${new Date().toISOString()} (environment files read then)`,
    `S=${shQuote(paths.state)}`,
    `echo $$ > "$S/main.pid"`,
  ];
  if (paths.cgroup) lines.push(`[ ! -w ${shQuote(`${paths.cgroup}/cgroup.procs`)} ] || echo $$ > ${shQuote(`${paths.cgroup}/cgroup.procs`)}`);
  let wd = svc.workingDirectory;
  const wdOptional = wd.startsWith("-");
  if (wdOptional) wd = wd.slice(1);
  if (wd === "~") wd = "/root";
  if (wd)
    lines.push(`cd ${shQuote(wd)}${wdOptional ? " 2> /dev/null || cd /" : " || { echo 'Changing to the requested working directory failed'; exit 200; }"}`);
  else lines.push("cd /");
  const step = (raw: string) => {
    const line = parseExecLine(raw, env);
    if (!line.argv.length) return;
    lines.push(`${run(line)} || ${line.ignoreFailure ? ":" : "exit $?"}`);
  };
  svc.execStartPre.forEach(step);
  const reached = `cat "$S/attempt" > "$S/reached" 2> /dev/null; echo 'active running' > "$S/state"`;
  if (svc.type === "oneshot") {
    svc.execStart.forEach(step);
    svc.execStartPost.forEach(step);
    lines.push("exit 0");
    return `${lines.join("\n")}\n`;
  }
  const main = parseExecLine(svc.execStart[0] ?? "", env);
  if (!main.argv.length) {
    lines.push(`echo '${svc.name} has no ExecStart= setting'`, "exit 1");
    return `${lines.join("\n")}\n`;
  }
  if (!svc.execStartPost.length) {
    lines.push(reached, `exec ${run(main)}`);
    return `${lines.join("\n")}\n`;
  }
  lines.push(`${run(main)} &`, "m=$!", `echo "$m" > "$S/main.pid"`, reached);
  for (const raw of svc.execStartPost) {
    const line = parseExecLine(raw, env);
    if (line.argv.length) lines.push(`${run(line)} || ${line.ignoreFailure ? ":" : '{ rc=$?; kill -TERM "$m"; wait "$m"; exit "$rc"; }'}`);
  }
  lines.push('wait "$m"', "exit $?");
  return `${lines.join("\n")}\n`;
}
