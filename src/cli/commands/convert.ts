import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { convertClusterfile, formatProblem } from "../../engine/cluster/spec";
import { writeFileAtomic } from "../../engine/util/fs";
import { parse } from "../args";
import { UsageError } from "../errors";
import type { Command } from "./command";

const usage = `Usage: sealant convert [-f Clusterfile] [-o FILE]

Write a Clusterfile sealant reads — sealer's first format (spec.masters/spec.nodes), sealer's
v2 with its Config, Plugin and Application documents, or sealant's own — as sealant's own
(apiVersion: sealant.io/v1), only what differs from sealant's defaults. What sealer ignored
is said on stderr; what applying would still refuse (no image, no master...) too.

  -f, --file FILE      the Clusterfile to read (default: ./Clusterfile)
  -o, --output FILE    where to write it (default: stdout); written whole or not at all,
                       readable by its owner only (it may hold passwords)`;

export const convert: Command = {
  usage,
  async run(args) {
    const { values, positionals } = parse(
      args,
      { file: { type: "string", short: "f", default: "Clusterfile" }, output: { type: "string", short: "o" } },
      usage,
    );
    if (positionals.length > 0) throw new UsageError(`convert takes no arguments (got ${positionals.join(" ")}); the Clusterfile is given with -f\n\n${usage}`);
    let text: string;
    try {
      text = await readFile(values.file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : (err as Error).message;
      throw new Error(`cannot read the Clusterfile ${resolve(values.file)}: ${why}`);
    }
    const result = convertClusterfile(text, { file: values.file });
    for (const w of result.warnings) process.stderr.write(`warning: ${formatProblem(w)}\n`);
    for (const p of result.unresolved) process.stderr.write(`to fix before apply: ${formatProblem(p)}\n`);
    if (result.text === "") throw new Error(`${values.file}: its Cluster document cannot be converted until the problems above are fixed`);
    if (values.output === undefined) process.stdout.write(result.text);
    else await writeFileAtomic(values.output, result.text, 0o600);
  },
};
