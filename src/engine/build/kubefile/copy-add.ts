import { LineError } from "./errors";
import type { Instruction } from "./instructions";
import type { ParseState } from "./state";
import { listArgs } from "./words";

const CHECKSUM = /^(sha256|sha384|sha512):[0-9a-f]+$/;
const HEX_DIGITS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** COPY/ADD [--chown=<user>] [--chmod=<mode>] <src>... <dest>, or the JSON form. */
export function parseCopy(st: ParseState, kind: "COPY" | "ADD", flags: string[], rest: string, line: number): Instruction {
  let chown: string | undefined;
  let chmod: string | undefined;
  let checksum: string | undefined;
  for (const f of flags) {
    const eq = f.indexOf("=");
    const name = (eq < 0 ? f : f.slice(0, eq)).replace(/^-+/, "");
    if (name === "from") {
      throw new LineError(`${kind} --from is not supported: Kubefiles have a single stage (no multi-stage builds or copying from images)`);
    }
    const known = kind === "ADD" ? ["chown", "chmod", "checksum"] : ["chown", "chmod"];
    if (!known.includes(name)) {
      const expected = kind === "ADD" ? "--chown=<user>, --chmod=<mode> or --checksum=sha256:<hex>" : "--chown=<user> or --chmod=<mode>";
      throw new LineError(`unknown flag --${name} for ${kind} (expected ${expected})`);
    }
    if (eq < 0) throw new LineError(`--${name} needs a value: --${name}=<value>`);
    const value = st.expand(f.slice(eq + 1));
    if (name === "chown") chown = value;
    else if (name === "chmod") chmod = value;
    else checksum = value;
  }
  const words = commentAfterCopy(st, kind, listArgs(kind, rest, "glob"), line);
  const usage = `${kind} requires at least two arguments: ${kind} <src>... <dest>`;
  if (words.length < 2) throw new LineError(words.length === 0 ? usage : `${usage} (got only "${words[0].text}")`);
  const expanded = words.map((w) => {
    try {
      return st.expand(w.text, w.quotes);
    } catch (e) {
      if (e instanceof LineError && /matching (single|double)-quote/.test(e.message)) {
        throw new LineError(
          `${e.message}; ${kind} splits its arguments at blanks even inside quotes: use the JSON form ${kind} ["a b", "dest/"] for paths with blanks`,
        );
      }
      throw e;
    }
  });
  for (let i = 0; i < expanded.length; i++) {
    if (expanded[i] === "") throw new LineError(`${kind} argument "${words[i].text}" expands to an empty string`);
  }
  const sources = expanded.slice(0, -1);
  if (kind === "ADD") for (const src of sources) if (/^https?:\/\//i.test(src)) checkRemoteUrl("ADD", src);
  if (checksum !== undefined) {
    if (!CHECKSUM.test(checksum) || checksum.length - checksum.indexOf(":") - 1 !== HEX_DIGITS[checksum.slice(0, checksum.indexOf(":"))]) {
      throw new LineError(`ADD --checksum=${checksum}: expected sha256:<64 lowercase hex digits> (or sha384:<96>, sha512:<128>)`);
    }
    if (sources.length !== 1 || !/^https?:\/\//i.test(sources[0]!)) {
      throw new LineError(
        `ADD --checksum needs exactly one http(s) source (got ${sources.map((x) => `"${x}"`).join(", ")}): local files are pinned by the build context`,
      );
    }
  }
  const dest = expanded[expanded.length - 1];
  if (sources.length > 1 && !dest.endsWith("/")) {
    throw new LineError(`when ${kind} has more than one source, the destination must be a directory ending with "/" (got "${dest}")`);
  }
  return {
    kind,
    line,
    sources,
    dest,
    ...(chown !== undefined ? { chown } : {}),
    ...(chmod !== undefined ? { chmod } : {}),
    ...(checksum !== undefined ? { checksum } : {}),
  } as Instruction;
}

/**
 * sealer's COPY takes its first word as the source and its second as the destination and
 * ignores the rest, so its docs end COPY lines with `# a comment` (`COPY app.yaml.tmpl
 * manifests/ # only manifests, etc, charts are rendered`). A Kubefile comment is a whole line;
 * where a later word starts with "#", it and what follows are dropped with a warning, as sealer
 * drops them. Other extra words keep Docker's meaning (several sources into a directory).
 */
function commentAfterCopy<W extends { text: string }>(st: ParseState, kind: "COPY" | "ADD", words: W[], line: number): W[] {
  if (kind !== "COPY") return words;
  const hash = words.findIndex((w, i) => i >= 2 && w.text.startsWith("#"));
  if (hash < 0) return words;
  st.warn(
    line,
    `COPY: "${words
      .slice(hash)
      .map((w) => w.text)
      .join(" ")
      .slice(0, 80)}" is not a comment (a comment is a whole line): ignored, as sealer ignores words after the destination`,
  );
  return words.slice(0, hash);
}

/**
 * An http(s) source of ADD or APP/CNI/CSI, checked as the builder will use it: a URL that parses,
 * has a host, a path whose %-escapes decode (the file is named after its last part), and no
 * user or password (the URL is recorded in the image's history and shown in progress lines).
 */
export function checkRemoteUrl(kind: string, url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LineError(`${kind} source "${url}" is not a valid URL`);
  }
  if (parsed.hostname === "") throw new LineError(`${kind} source "${url}" has no host`);
  try {
    decodeURIComponent(parsed.pathname);
  } catch {
    throw new LineError(
      `${kind} source "${url}" has a malformed %-escape in its path (% must be followed by two hex digits of UTF-8; write a literal % as %25)`,
    );
  }
  if (parsed.username !== "" || parsed.password !== "") {
    throw new LineError(
      `${kind} source "${parsed.protocol}//***@${parsed.host}${parsed.pathname}" carries credentials: they would be recorded in the image's history; serve the file without them`,
    );
  }
}
