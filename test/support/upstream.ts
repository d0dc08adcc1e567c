import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const SCRIPT = resolve(__dirname, "../../examples/upstream.sh");

export interface ExampleUpstream {
  /** e.g. { "docker.io": "127.0.0.1:40001", "quay.io": "127.0.0.1:40002" } */
  mirrors: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The example's "upstream" registries: the same script the demo uses, so tests build the
 * example exactly as a user does (real docker-registry instances seeded with umoci + skopeo).
 */
export async function startExampleUpstream(): Promise<ExampleUpstream> {
  const dir = await mkdtemp(join(tmpdir(), "sealant-upstream-"));
  const { stdout } = await run("bash", [SCRIPT, "up", dir], { timeout: 120_000 });
  const line = stdout.trim().split("\n").pop() ?? "";
  const mirrors = Object.fromEntries(line.split(",").map((kv) => kv.split("=") as [string, string]));
  return {
    mirrors,
    async stop() {
      await run("bash", [SCRIPT, "down", dir]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const EXAMPLE_APP = resolve(__dirname, "../../examples/app");
