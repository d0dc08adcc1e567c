import { parseReference } from "../../image/reference";
import { checkVariableName } from "./env-label";
import { LineError } from "./errors";
import type { ArgDeclaration, FromInstruction, Instruction } from "./instructions";
import type { ParseState } from "./state";
import { parseWords, splitWhitespace } from "./words";

/** FROM [--platform=<platform>] <image> [AS <name>]: the single stage's base image. */
export function parseFrom(st: ParseState, flags: string[], rest: string, line: number): FromInstruction {
  if (st.from !== undefined) {
    throw new LineError(
      `only one FROM is allowed (the first is on line ${st.from.line}): Kubefiles build a single stage, multi-stage builds are not supported`,
    );
  }
  let platform: string | undefined;
  for (const f of flags) {
    const eq = f.indexOf("=");
    const name = (eq < 0 ? f : f.slice(0, eq)).replace(/^-+/, "");
    if (name !== "platform") throw new LineError(`flag --${name} is not available in FROM (only --platform=<os>/<arch>)`);
    if (eq < 0) throw new LineError(`flags should be like --platform=<value>, got "${f}"`);
    // sealer accepts --platform=a, --platform=a,b and --platform="[a, b]" and uses the first item.
    const items = st
      .expand(f.slice(eq + 1))
      .replace(/^["[]+/, "")
      .replace(/["\]]+$/, "")
      .split(",")
      .map((s) => s.trim());
    if (items[0] === "") throw new LineError(`--platform needs a value, e.g. --platform=linux/amd64`);
    platform = items[0];
  }
  const words = splitWhitespace(rest);
  if (words.length === 0) throw new LineError("FROM requires an image: FROM <image> (or FROM scratch)");
  if (words.length === 2 || words.length > 3 || (words.length === 3 && words[1].toLowerCase() !== "as")) {
    throw new LineError(`FROM expects "FROM [--platform=<platform>] <image> [AS <name>]", got "FROM ${rest}"`);
  }
  const image = st.expand(words[0]);
  if (image === "") throw new LineError(`FROM image "${words[0]}" expands to an empty string`);
  if (image !== "scratch") {
    try {
      parseReference(image);
    } catch (e) {
      throw new LineError(`FROM: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const from: FromInstruction = {
    kind: "FROM",
    line,
    image,
    ...(platform !== undefined ? { platform } : {}),
    ...(words.length === 3 ? { alias: words[2] } : {}),
  };
  st.from = from;
  return from;
}

/**
 * ARG <name>[=<default>] ...: before FROM a global ARG (usable in FROM), after it a stage ARG.
 * A `--build-arg` value wins over the default; a stage ARG without either takes the global value.
 */
export function parseArg(st: ParseState, rest: string, line: number): Instruction {
  const words = parseWords(rest, st.escape);
  if (words.length === 0) throw new LineError("ARG requires a name: ARG <name>[=<default>]");
  const decls: ArgDeclaration[] = [];
  const beforeFrom = st.from === undefined;
  const scope = beforeFrom ? st.globalArgs : st.stageArgs;
  const build = st.opts.buildArgs ?? {};
  for (const w of words) {
    const eq = w.indexOf("=");
    const name = eq < 0 ? w : w.slice(0, eq);
    if (name === "") throw new LineError(`ARG names can not be blank (in "${w}")`);
    checkVariableName("ARG", name);
    const def = eq < 0 ? undefined : st.expand(w.slice(eq + 1));
    st.declaredArgs.add(name);
    let value: string | undefined;
    if (Object.prototype.hasOwnProperty.call(build, name)) value = build[name];
    else if (def !== undefined) value = def;
    else if (!beforeFrom) value = st.globalArgs.get(name);
    scope.set(name, value);
    decls.push(def === undefined ? { name } : { name, default: def });
  }
  return { kind: "ARG", line, args: decls, beforeFrom };
}
