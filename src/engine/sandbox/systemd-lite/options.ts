import { Fail } from "./errors";

/** What the command line asked for besides the verb and its units. */
export interface Options {
  now: boolean;
  quiet: boolean;
  noBlock: boolean;
  value: boolean;
  properties: string[];
  lines: number;
  signal: string;
}

const FLAGS = new Set([
  "--now",
  "-q",
  "--quiet",
  "--no-block",
  "--no-pager",
  "--system",
  "-l",
  "--full",
  "--value",
  "-a",
  "--all",
  "-f",
  "--force",
  "--no-reload",
  "--no-legend",
  "--plain",
  "--no-ask-password",
  "--runtime",
  "-r",
  "--recursive",
  "--wait",
]);
const WITH_VALUE = new Set([
  "-p",
  "--property",
  "-n",
  "--lines",
  "-t",
  "--type",
  "--state",
  "-s",
  "--signal",
  "--kill-whom",
  "--kill-who",
  "-o",
  "--output",
  "--job-mode",
  "-H",
  "--host",
  "-M",
  "--machine",
]);

/** The verb (default list-units), its units and the options; an unknown option or --user is a Fail with exit code 1. */
export function parseCommandLine(argv: string[]): { verb: string; units: string[]; opts: Options } {
  const opts: Options = { now: false, quiet: false, noBlock: false, value: false, properties: [], lines: 10, signal: "SIGTERM" };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      words.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const [flag, inline] = a.startsWith("--") && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (flag === "--user") throw new Fail("systemctl --user is not emulated in this sandbox host", 1);
    if (WITH_VALUE.has(flag)) {
      const v = inline ?? argv[++i] ?? "";
      if (flag === "-p" || flag === "--property") opts.properties.push(...v.split(",").filter(Boolean));
      else if (flag === "-n" || flag === "--lines") opts.lines = Number(v) || 0;
      else if (flag === "-s" || flag === "--signal") opts.signal = v.startsWith("SIG") ? v : `SIG${v}`;
      continue;
    }
    if (/^-[A-Za-z]{2,}$/.test(flag)) {
      // combined short flags, e.g. -ql
      for (const c of flag.slice(1)) if (!FLAGS.has(`-${c}`)) throw unknownOption(a);
      if (flag.includes("q")) opts.quiet = true;
      continue;
    }
    if (!FLAGS.has(flag)) throw unknownOption(a);
    if (flag === "--now") opts.now = true;
    else if (flag === "-q" || flag === "--quiet") opts.quiet = true;
    else if (flag === "--no-block") opts.noBlock = true;
    else if (flag === "--value") opts.value = true;
  }
  const [verb = "list-units", ...units] = words;
  return { verb, units, opts };
}

function unknownOption(a: string): Fail {
  return new Fail(`systemctl: unrecognized option '${a}'`, 1);
}
