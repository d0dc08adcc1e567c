import { resolve } from "node:path";
import { build as buildWith } from "../../engine/build";
import { parsePlatform } from "../../engine/image/types";
import { parseMirrors, Session } from "../../engine/session";
import { keyValues, parse, REGISTRY_HELP, registryOptions, registrySessionOptions } from "../args";
import { UsageError } from "../errors";
import { formatBytes, printJson, shortDigest } from "../format";
import { Progress } from "../progress";
import type { Command } from "./command";

const usage = `Usage: sealant build -t REF [-f Kubefile] [OPTIONS] CONTEXT

Build a cluster image from a Kubefile and the files of CONTEXT.

  -f, --file FILE              the Kubefile (default: CONTEXT/Kubefile)
  -t, --tag REF                the name of the image (required)
      --build-arg K=V          a value for an ARG (repeatable)
      --platform OS/ARCH       a platform to build (repeatable; several make an index)
      --no-cache               rebuild every layer
      --image-list FILE        extra container images to cache, one per line
      --ignored-image-list F   container images not to cache, one per line
      --download-max-size SIZE ADD/APP http(s) downloads larger than SIZE fail (default 4G;
                               bytes, or with K, M, G)
      --download-timeout SECS  a download taking longer fails (default 3600; one without a
                               byte for 60 s fails too)
${REGISTRY_HELP}
      --registry-mirror R=HOST fetch images of registry R from HOST (repeatable; also
                               SEALANT_REGISTRY_MIRRORS="docker.io=host:5000,...")
      --json                   print the result as JSON
  -q, --quiet                  no progress`;

export const build: Command = {
  usage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      {
        file: { type: "string", short: "f" },
        tag: { type: "string", short: "t" },
        "build-arg": { type: "string", multiple: true },
        platform: { type: "string", multiple: true },
        "no-cache": { type: "boolean", default: false },
        "image-list": { type: "string", multiple: true },
        "ignored-image-list": { type: "string", multiple: true },
        ...registryOptions,
        "download-max-size": { type: "string" },
        "download-timeout": { type: "string" },
        "registry-mirror": { type: "string", multiple: true },
        json: { type: "boolean", default: false },
        quiet: { type: "boolean", short: "q", default: false },
      },
      usage,
    );
    if (!values.tag) throw new UsageError(`build needs -t REF\n\n${usage}`);
    if (positionals.length !== 1) throw new UsageError(`build needs exactly one CONTEXT directory, got ${positionals.length}\n\n${usage}`);
    const context = resolve(positionals[0]!);
    const downloads = {
      ...(values["download-max-size"] !== undefined ? { maxBytes: byteSize(values["download-max-size"], "--download-max-size") } : {}),
      ...(values["download-timeout"] !== undefined ? { timeoutMs: positiveSeconds(values["download-timeout"], "--download-timeout") * 1000 } : {}),
    };
    const progress = new Progress(values.quiet || values.json);
    const session = await Session.open({ ...registrySessionOptions(values), mirrors: parseMirrors((values["registry-mirror"] ?? []).join(",")) });
    const started = Date.now();
    try {
      const result = await buildWith(session, {
        context,
        ...(values.file ? { kubefile: resolve(values.file) } : {}),
        tag: values.tag,
        buildArgs: keyValues(values["build-arg"], "--build-arg"),
        platforms: (values.platform ?? []).flatMap((p) => p.split(",")).map(parsePlatform),
        noCache: values["no-cache"],
        downloads,
        ...(values["image-list"] ? { imageListFiles: values["image-list"].map((f) => resolve(f)) } : {}),
        ...(values["ignored-image-list"] ? { ignoredImageListFiles: values["ignored-image-list"].map((f) => resolve(f)) } : {}),
        signal,
        onEvent: (e) => {
          if (e.type === "step") progress.line(`[${e.platform}] ${e.index}/${e.total} ${e.text}${e.cached === true ? "  (cached)" : ""}`);
          else if (e.type === "images")
            progress.line(
              `[${e.platform}] ${e.images.length} container image(s)${e.cached ? " (cached)" : ""}${e.images.length ? `: ${e.images.join(", ")}` : ""}`,
            );
          else if (e.type === "image-progress") {
            if (e.done) progress.line(`[${e.platform}]   cached ${e.image} (${formatBytes(e.bytes)} fetched)`);
            else progress.status(`[${e.platform}]   ${e.image}: ${formatBytes(e.bytes)}`);
          } else if (e.type === "image-retry") progress.line(`[${e.platform}]   ${e.image}: ${e.text}`);
          else if (e.type === "warning") progress.line(`[${e.platform}] warning: ${e.text}`);
          else if (e.type === "output") progress.status(e.text.trimEnd().split("\n").pop() ?? "");
        },
      });
      if (values.json) {
        printJson(result);
      } else {
        const layers = result.platforms.flatMap((p) => p.layers);
        const reused = layers.filter((l) => l.cached).length;
        process.stdout.write(
          `built ${result.ref} ${shortDigest(result.digest)} (${layers.length} layers, ${reused} reused, ${formatBytes(layers.reduce((n, l) => n + l.size, 0))}) in ${((Date.now() - started) / 1000).toFixed(2)} s\n`,
        );
      }
    } finally {
      session.close();
    }
  },
};

/** `512M`, `4G`, `1048576`: a size in bytes (K, M, G are powers of 1024). */
function byteSize(text: string, flag: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m || Number(m[1]) === 0) throw new UsageError(`${flag} ${text}: expected a size such as 512M, 4G or a number of bytes`);
  return Number(m[1]) * 1024 ** " KMG".indexOf((m[2] || " ").toUpperCase());
}

function positiveSeconds(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} ${text}: expected a number of seconds greater than 0`);
  return n;
}
