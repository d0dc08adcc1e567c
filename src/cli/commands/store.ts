import { inspectImage, listImages } from "../../engine/image/inspect";
import { Session } from "../../engine/session";
import { parse } from "../args";
import { UsageError } from "../errors";
import { formatBytes, printJson, shortDigest, table } from "../format";
import type { Command } from "./command";

const imagesUsage = `Usage: sealant images [--json]

List the images in the local store ($SEALANT_HOME).`;

export const images: Command = {
  usage: imagesUsage,
  async run(args) {
    const { values, positionals } = parse(args, { json: { type: "boolean", default: false } }, imagesUsage);
    if (positionals.length) throw new UsageError(`images takes no arguments\n\n${imagesUsage}`);
    const session = await Session.open();
    const list = await listImages(session.store);
    if (values.json) return printJson(list);
    process.stdout.write(
      `${table(
        ["REFERENCE", "DIGEST", "KIND", "PLATFORMS", "SIZE"],
        list.map((i) => [i.ref, shortDigest(i.digest), i.kind, i.platforms.join(","), formatBytes(i.size)]),
      )}\n`,
    );
  },
};

const inspectUsage = `Usage: sealant inspect REF [--json]

Show an image: digest, platforms, layers with sizes, labels, apps, launch list and the
container images inside. --json prints everything, with the digest at the top level.`;

export const inspect: Command = {
  usage: inspectUsage,
  async run(args) {
    const { values, positionals } = parse(args, { json: { type: "boolean", default: false } }, inspectUsage);
    if (positionals.length !== 1) throw new UsageError(`inspect needs exactly one REF\n\n${inspectUsage}`);
    const session = await Session.open();
    const info = await inspectImage(session.store, positionals[0]!);
    if (values.json) return printJson(info);
    const out: string[] = [
      `Reference:  ${info.ref}`,
      `Digest:     ${info.digest}`,
      `Media type: ${info.mediaType}`,
      `Total size: ${formatBytes(info.totalSize)}`,
    ];
    for (const p of info.platforms) {
      const m = p.metadata;
      out.push(
        "",
        `Platform ${p.platform} (manifest ${p.manifestDigest})`,
        `  Kind:    ${m.kind}${m.runtime ? `, runtime ${m.runtime.type}${m.runtime.version ? ` ${m.runtime.version}` : ""}` : ""}`,
      );
      out.push("  Layers:");
      for (const l of p.layers) out.push(`    ${shortDigest(l.digest)}  ${formatBytes(l.size).padStart(9)}  ${l.createdBy ?? ""}`);
      const labels = Object.entries(p.labels);
      if (labels.length) out.push("  Labels:", ...labels.map(([k, v]) => `    ${k}=${v}`));
      if (Object.keys(m.env).length) out.push("  Env:", ...Object.entries(m.env).map(([k, v]) => `    ${k}=${v}`));
      if (m.applications.length)
        out.push("  Apps:", ...m.applications.map((a) => `    ${a.name} (${a.type}${a.role ? `, ${a.role}` : ""}): ${a.files.join(", ")}`));
      if (m.launch.apps) out.push(`  Launch:  ${m.launch.apps.join(", ")}`);
      if (m.launch.cmds) out.push(`  Cmds:    ${m.launch.cmds.join(" && ")}`);
    }
    out.push("", `Container images (${info.containerImages.length}):`, ...info.containerImages.map((c) => `  ${c}`));
    process.stdout.write(`${out.join("\n")}\n`);
  },
};

const tagUsage = `Usage: sealant tag SOURCE TARGET

Give the image SOURCE the additional name TARGET.`;

export const tag: Command = {
  usage: tagUsage,
  async run(args) {
    const { positionals } = parse(args, {}, tagUsage);
    if (positionals.length !== 2) throw new UsageError(`tag needs SOURCE and TARGET\n\n${tagUsage}`);
    const session = await Session.open();
    const src = await session.store.resolve(positionals[0]!);
    const name = await session.store.setTag(positionals[1]!, src.descriptor);
    process.stdout.write(`tagged ${src.ref} as ${name}\n`);
  },
};

const rmiUsage = `Usage: sealant rmi REF...

Remove image names; blobs no remaining image or build cache entry uses are deleted.`;

export const rmi: Command = {
  usage: rmiUsage,
  async run(args) {
    const { positionals } = parse(args, {}, rmiUsage);
    if (positionals.length === 0) throw new UsageError(`rmi needs at least one REF\n\n${rmiUsage}`);
    const session = await Session.open();
    for (const ref of positionals) {
      const removed = await session.store.removeTag(ref);
      process.stdout.write(`untagged ${removed.ref}\n`);
    }
    const gc = await session.store.gc();
    if (gc.removed) process.stdout.write(`deleted ${gc.removed} blob(s), ${formatBytes(gc.bytes)}\n`);
  },
};

const pruneUsage = `Usage: sealant prune

Drop the build cache and delete every blob no image name uses. The next build of any image
rebuilds its layers (and gets the same digests).`;

export const prune: Command = {
  usage: pruneUsage,
  async run(args) {
    const { positionals } = parse(args, {}, pruneUsage);
    if (positionals.length) throw new UsageError(`prune takes no arguments\n\n${pruneUsage}`);
    const session = await Session.open();
    const pins = await session.store.clearPins();
    const gc = await session.store.gc();
    process.stdout.write(`dropped ${pins} build cache record(s); deleted ${gc.removed} blob(s), ${formatBytes(gc.bytes)}\n`);
  },
};
