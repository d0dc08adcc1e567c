/** One `sealant` subcommand: its usage line and what it does. Its own module so the commands and
 * the table of them (index.ts) do not import each other. */
export interface Command {
  usage: string;
  run(args: string[], signal: AbortSignal): Promise<number | void>;
}
