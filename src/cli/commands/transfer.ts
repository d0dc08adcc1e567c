import { pullImage, pushImage } from "../../engine/image/transfer";
import { parsePlatform } from "../../engine/image/types";
import { Session } from "../../engine/session";
import { REGISTRY_HELP, parse, registryOptions, registrySessionOptions } from "../args";
import { UsageError } from "../errors";
import { printJson, shortDigest } from "../format";
import { Progress } from "../progress";
import type { Command } from "./command";

const pullUsage = `Usage: sealant pull REF [--platform OS/ARCH] [--insecure] [--timeout DURATION] [--json]

Pull an image (every platform unless --platform) from its registry into the local store.

      --platform OS/ARCH       only this platform of a multi-platform image
${REGISTRY_HELP}
      --json                   print the result as JSON
  -q, --quiet                  no progress`;

export const pull: Command = {
  usage: pullUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      {
        platform: { type: "string" },
        ...registryOptions,
        json: { type: "boolean", default: false },
        quiet: { type: "boolean", short: "q", default: false },
      },
      pullUsage,
    );
    if (positionals.length !== 1) throw new UsageError(`pull needs exactly one REF\n\n${pullUsage}`);
    const registry = registrySessionOptions(values);
    const progress = new Progress(values.quiet || values.json);
    const session = await Session.open(registry);
    try {
      const result = await pullImage(session.store, positionals[0]!, {
        clientFor: session.clientFor,
        ...(values.platform ? { platform: parsePlatform(values.platform) } : {}),
        signal,
        onEvent: progress.transfer,
      });
      if (values.json) return printJson(result);
      process.stdout.write(
        `pulled ${result.ref} ${shortDigest(result.digest)}: ${result.blobs.transferred} blob(s) fetched, ${result.blobs.skipped} already present, ${progress.rate()}\n`,
      );
    } finally {
      session.close();
    }
  },
};

const pushUsage = `Usage: sealant push REF [DESTINATION] [--insecure] [--timeout DURATION] [--json]

Push an image to its registry (or to DESTINATION, a full reference).

${REGISTRY_HELP}
      --json                   print the result as JSON
  -q, --quiet                  no progress`;

export const push: Command = {
  usage: pushUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      { ...registryOptions, json: { type: "boolean", default: false }, quiet: { type: "boolean", short: "q", default: false } },
      pushUsage,
    );
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError(`push needs REF [DESTINATION]\n\n${pushUsage}`);
    const registry = registrySessionOptions(values);
    const progress = new Progress(values.quiet || values.json);
    const session = await Session.open(registry);
    try {
      const result = await pushImage(session.store, positionals[0]!, {
        clientFor: session.clientFor,
        ...(positionals[1] ? { destination: positionals[1] } : {}),
        signal,
        onEvent: progress.transfer,
      });
      if (values.json) return printJson(result);
      process.stdout.write(`pushed ${result.ref}: ${result.blobs.transferred} blob(s) sent, ${result.blobs.skipped} already there, ${progress.rate()}\n`);
    } finally {
      session.close();
    }
  },
};
