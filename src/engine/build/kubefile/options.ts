import type { KubefileError, KubefileWarning } from "./errors";
import type { Kubefile } from "./instructions";

export interface ParseKubefileOptions {
  /** Name used in messages. @default "Kubefile" */
  readonly file?: string;
  /** `--build-arg` values; they override ARG defaults, and only reach ARGs the Kubefile declares. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Target architecture, e.g. "amd64": the value of `$ARCH`/`${ARCH}` unless an ARG/ENV sets ARCH. */
  readonly arch?: string;
  /**
   * Names of the apps the FROM image already holds. When given (or when FROM is scratch),
   * LAUNCH/APPCMDS/APPENV references are checked completely; otherwise references to apps this
   * Kubefile does not declare are returned in `Kubefile.baseAppRefs` for the caller to check.
   */
  readonly baseApps?: readonly string[];
}

export type ParseKubefileResult =
  | { readonly ok: true; readonly kubefile: Kubefile }
  | { readonly ok: false; readonly errors: readonly KubefileError[]; readonly warnings: readonly KubefileWarning[] };
