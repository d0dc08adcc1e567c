import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { AppType } from "../image/metadata";

export type DetectedAppType = { type: AppType } | { type: "error"; message: string };

/**
 * sealer's rule for APP sources: a Helm chart directory is a helm app, files that are all
 * YAML make a kube app (kubectl apply), all shell scripts a shell app (bash). Anything else
 * has no launch command, so it is refused at build time rather than at run time.
 */
export async function detectAppType(paths: string[]): Promise<DetectedAppType> {
  if (paths.length === 1 && (await isChart(paths[0]!))) return { type: "helm" };
  const files: string[] = [];
  for (const p of paths) await collectFiles(p, files);
  if (files.length === 0) return { type: "error", message: "its sources contain no files" };
  const yaml = files.filter((f) => /\.ya?ml$/i.test(f));
  const shell = files.filter((f) => /\.sh$/i.test(f));
  if (yaml.length === files.length) return { type: "kube" };
  if (shell.length === files.length) return { type: "shell" };
  const others = files.filter((f) => !/\.(ya?ml|sh)$/i.test(f)).slice(0, 3);
  const reason =
    others.length > 0 ? `${others.join(", ")} ${others.length === 1 ? "is" : "are"} neither YAML nor .sh` : "it mixes YAML files and shell scripts";
  return {
    type: "error",
    message: `cannot tell the app type: expected a Helm chart directory, only YAML files, or only .sh scripts, but ${reason}`,
  };
}

async function isChart(path: string): Promise<boolean> {
  const st = await stat(path);
  return (
    st.isDirectory() &&
    (await stat(join(path, "Chart.yaml")).then(
      () => true,
      () => false,
    ))
  );
}

async function collectFiles(path: string, out: string[]): Promise<void> {
  const st = await stat(path);
  if (st.isFile()) {
    out.push(path);
    return;
  }
  if (!st.isDirectory()) return;
  for (const name of (await readdir(path)).sort()) await collectFiles(join(path, name), out);
}
