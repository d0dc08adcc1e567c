import { readFile } from "node:fs/promises";
import { InvalidReferenceError, normaliseReference } from "../../image/reference";

/** An invalid line of an image list file, e.g. `imageList:3: invalid image reference "Nginx": ...`. */
export class ImageListError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    why: string,
  ) {
    super(`${file}:${line}: ${why}`);
    this.name = "ImageListError";
  }
}

export interface ImageListEntry {
  /** Normalised reference. */
  image: string;
  line: number;
}

/**
 * Parses sealer's image list format: one image reference per line; blank lines and `#`
 * comments ignored (a `#` starts a comment anywhere, since it cannot occur in a reference);
 * surrounding whitespace and quotes trimmed, as sealer's FormatImages does. Any other line
 * must be a valid reference: an invalid one is an error naming `file` and the line number,
 * never a silent skip (sealer drops such lines without a word).
 */
export function parseImageList(text: string, file: string): ImageListEntry[] {
  const out: ImageListEntry[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const hash = raw.indexOf("#");
    let line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    line = line.replace(/^['"]+|['"]+$/g, "").trim();
    if (line === "") return;
    try {
      out.push({ image: normaliseReference(line), line: i + 1 });
    } catch (err) {
      const why = err instanceof InvalidReferenceError ? err.message : `invalid image reference "${line}": ${(err as Error).message}`;
      throw new ImageListError(file, i + 1, why);
    }
  });
  return out;
}

/** Reads and parses an image list file; `label` names it in errors (defaults to the path). */
export async function readImageList(path: string, label: string = path): Promise<ImageListEntry[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`image list ${label}: ${(err as Error).message}`);
  }
  return parseImageList(text, label);
}
