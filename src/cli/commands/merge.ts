import { mergeImages } from "../../engine/image/merge";
import { Session } from "../../engine/session";
import { parse } from "../args";
import { UsageError } from "../errors";
import { printJson, shortDigest } from "../format";
import type { Command } from "./command";

const usage = `Usage: sealant merge -t TARGET REF REF...

Combine cluster images (e.g. a Kubernetes base, a CNI image and an app image) into one:
layers in order, apps, launch lists and container images united.`;

export const merge: Command = {
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { tag: { type: "string", short: "t" }, json: { type: "boolean", default: false } }, usage);
    if (!values.tag) throw new UsageError(`merge needs -t TARGET\n\n${usage}`);
    if (positionals.length < 2) throw new UsageError(`merge needs at least two images\n\n${usage}`);
    const session = await Session.open();
    const result = await mergeImages(session.store, positionals, values.tag);
    if (values.json) return printJson(result);
    process.stdout.write(`merged ${positionals.join(" + ")} into ${result.ref} ${shortDigest(result.digest)} (${result.platforms.join(", ")})\n`);
  },
};
