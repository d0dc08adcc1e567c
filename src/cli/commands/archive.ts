import { resolve } from "node:path";
import { loadArchive, saveArchive } from "../../engine/image/archive";
import { Session } from "../../engine/session";
import { parse } from "../args";
import { UsageError } from "../errors";
import { formatBytes, printJson, shortDigest } from "../format";
import type { Command } from "./command";

const saveUsage = `Usage: sealant save -o FILE REF...

Write images to one OCI archive (readable by 'sealant load' and 'skopeo copy oci-archive:FILE:REF').`;

export const save: Command = {
  usage: saveUsage,
  async run(args, signal) {
    const { values, positionals } = parse(args, { output: { type: "string", short: "o" }, json: { type: "boolean", default: false } }, saveUsage);
    if (!values.output) throw new UsageError(`save needs -o FILE\n\n${saveUsage}`);
    if (positionals.length === 0) throw new UsageError(`save needs at least one REF\n\n${saveUsage}`);
    const session = await Session.open();
    const result = await saveArchive(session.store, positionals, resolve(values.output), { signal });
    if (values.json) return printJson(result);
    process.stdout.write(`saved ${result.images.map((i) => i.ref).join(", ")} to ${values.output} (${result.blobs} blobs, ${formatBytes(result.bytes)})\n`);
  },
};

const loadUsage = `Usage: sealant load -i FILE [--tag REF | --repository REPO] [--json]

Read images from an OCI archive (written by sealant or skopeo; gzip allowed).
  --tag REF          store the archive's only image under REF
  --repository REPO  repository for images the archive names by a bare tag (skopeo's oci-archive:x.tar:1.0)`;

export const load: Command = {
  usage: loadUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      { input: { type: "string", short: "i" }, tag: { type: "string" }, repository: { type: "string" }, json: { type: "boolean", default: false } },
      loadUsage,
    );
    if (!values.input) throw new UsageError(`load needs -i FILE\n\n${loadUsage}`);
    if (positionals.length) throw new UsageError(`load takes no positional arguments\n\n${loadUsage}`);
    const session = await Session.open();
    const loaded = await loadArchive(session.store, resolve(values.input), {
      ...(values.tag ? { tag: values.tag } : {}),
      ...(values.repository ? { repository: values.repository } : {}),
      signal,
    });
    if (values.json) return printJson(loaded);
    for (const l of loaded) process.stdout.write(`loaded ${l.ref} ${shortDigest(l.digest)}\n`);
  },
};
