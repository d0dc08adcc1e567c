import type { KubefileWarning } from "./errors";

/**
 * Typed Kubefile instructions. Every value that Docker/sealer expand (`$VAR`, `${VAR:-x}`,
 * `${ARCH}`) is already expanded; shell commands (RUN, CMD, CMDS, APPCMDS) are kept verbatim,
 * because a shell expands them when they run.
 */

/** Every instruction a Kubefile may contain (sealer's `build/kubefile/command` list). */
export const KUBEFILE_INSTRUCTIONS = [
  "FROM",
  "ARG",
  "COPY",
  "ADD",
  "RUN",
  "ENV",
  "LABEL",
  "MAINTAINER",
  "APP",
  "APPCMDS",
  "APPENV",
  "CNI",
  "CSI",
  "KUBEVERSION",
  "LAUNCH",
  "CMDS",
  "CMD",
] as const;

export type InstructionKind = (typeof KUBEFILE_INSTRUCTIONS)[number];

/** Label that KUBEVERSION sets (sealer `command.LabelSupportedKubeVersionAlpha`). */
export const LABEL_SUPPORTED_KUBE_VERSION = "app.alpha.sealer.io/supported-kube-version";
/** CNI <name> sets `<prefix><name>="true"` (sealer `command.LabelKubeCNIPrefix`). */
export const LABEL_KUBE_CNI_PREFIX = "cluster.alpha.sealer.io/kube-cni-";
/** CSI <name> sets `<prefix><name>="true"` (sealer `command.LabelKubeCSIPrefix`). */
export const LABEL_KUBE_CSI_PREFIX = "cluster.alpha.sealer.io/kube-csi-";

interface At {
  /** 1-based line of the instruction's first physical line. */
  readonly line: number;
}

export interface FromInstruction extends At {
  readonly kind: "FROM";
  /** `scratch` or an image reference as written (after substitution). */
  readonly image: string;
  /** `--platform=<os/arch>`; for sealer's list form `--platform=a,b` the first item. */
  readonly platform?: string;
  /** `FROM <image> AS <name>`: accepted (sealer's own tests use it) but meaningless with one stage. */
  readonly alias?: string;
}

export interface ArgDeclaration {
  readonly name: string;
  /** The expanded default, when the ARG has `=...`. */
  readonly default?: string;
}

/** `ARG a[=x] [b[=y] ...]`. Effective values (build args applied) are in `Kubefile.args`. */
export interface ArgInstruction extends At {
  readonly kind: "ARG";
  readonly args: readonly ArgDeclaration[];
  /** True for ARGs before FROM: Docker scopes them to FROM; a later `ARG NAME` re-imports them. */
  readonly beforeFrom: boolean;
}

interface CopyLike extends At {
  /** As written (after substitution): paths relative to the build context, globs, or (ADD) URLs. */
  readonly sources: readonly string[];
  readonly dest: string;
  readonly chown?: string;
  readonly chmod?: string;
}

export interface CopyInstruction extends CopyLike {
  readonly kind: "COPY";
}

/** ADD: like COPY, but sources may also be archives (extracted) or http(s) URLs; the builder decides. */
export interface AddInstruction extends CopyLike {
  readonly kind: "ADD";
  /** `--checksum=sha256:<hex>` (or sha384/sha512): the one http(s) source must have this digest. */
  readonly checksum?: string;
}

export interface RunInstruction extends At {
  readonly kind: "RUN";
  /** Shell form: one string for `/bin/sh -c`; JSON (exec) form: argv. Not expanded. */
  readonly command: string | readonly string[];
  /** Builder flags as written, e.g. `--network=host`; the builder decides what it supports. */
  readonly flags: readonly string[];
  /** Environment for the command: ARGs in scope, then ENV above (ENV wins), plus ARCH when known. */
  readonly env: Readonly<Record<string, string>>;
}

export interface EnvInstruction extends At {
  readonly kind: "ENV";
  readonly pairs: Readonly<Record<string, string>>;
}

export interface LabelInstruction extends At {
  readonly kind: "LABEL";
  readonly pairs: Readonly<Record<string, string>>;
}

export interface MaintainerInstruction extends At {
  readonly kind: "MAINTAINER";
  /** Verbatim (Docker does not expand MAINTAINER). */
  readonly maintainer: string;
}

/** Where an app's files come from. `local://x` is `x` relative to the build context. */
export type AppSource = { readonly type: "local"; readonly path: string } | { readonly type: "remote"; readonly url: string };

interface AppLike extends At {
  readonly name: string;
  readonly sources: readonly AppSource[];
}

/** `APP <name> local://<path>|http(s)://<url> ...` */
export interface AppInstruction extends AppLike {
  readonly kind: "APP";
}

/** Like APP, and labels the image `cluster.alpha.sealer.io/kube-cni-<name>="true"`. */
export interface CniInstruction extends AppLike {
  readonly kind: "CNI";
}

/** Like APP, and labels the image `cluster.alpha.sealer.io/kube-csi-<name>="true"`. */
export interface CsiInstruction extends AppLike {
  readonly kind: "CSI";
}

/** `APPCMDS <app> ["cmd", ...]`: replaces the app's default launch commands (last one wins). */
export interface AppCmdsInstruction extends At {
  readonly kind: "APPCMDS";
  readonly app: string;
  readonly commands: readonly string[];
}

/** `APPENV <app> k=v ...`: env for rendering/launching that app only (merged across APPENVs). */
export interface AppEnvInstruction extends At {
  readonly kind: "APPENV";
  readonly app: string;
  readonly pairs: Readonly<Record<string, string>>;
}

/** `LAUNCH ["app1", "app2"]` (or `LAUNCH app1 app2`). */
export interface LaunchInstruction extends At {
  readonly kind: "LAUNCH";
  readonly apps: readonly string[];
}

/** `CMDS ["cmd1", "cmd2"]`: commands run by `sealer run`. */
export interface CmdsInstruction extends At {
  readonly kind: "CMDS";
  readonly commands: readonly string[];
}

/** Deprecated `CMD <command>` (or `CMD ["c1", "c2"]`); every CMD's commands are appended. */
export interface CmdInstruction extends At {
  readonly kind: "CMD";
  readonly commands: readonly string[];
}

/** `KUBEVERSION <semver range>`, e.g. `1.22 - 1.24`, kept verbatim. */
export interface KubeVersionInstruction extends At {
  readonly kind: "KUBEVERSION";
  readonly version: string;
}

export type Instruction =
  | FromInstruction
  | ArgInstruction
  | CopyInstruction
  | AddInstruction
  | RunInstruction
  | EnvInstruction
  | LabelInstruction
  | MaintainerInstruction
  | AppInstruction
  | CniInstruction
  | CsiInstruction
  | AppCmdsInstruction
  | AppEnvInstruction
  | LaunchInstruction
  | CmdsInstruction
  | CmdInstruction
  | KubeVersionInstruction;

/** An application this Kubefile declares (APP, CNI or CSI). */
export interface KubefileApp {
  readonly name: string;
  readonly kind: "APP" | "CNI" | "CSI";
  readonly sources: readonly AppSource[];
  readonly line: number;
}

/** A reference (LAUNCH/APPCMDS/APPENV) to an app this Kubefile does not declare above it. */
export interface BaseAppRef {
  readonly name: string;
  readonly line: number;
  readonly instruction: "LAUNCH" | "APPCMDS" | "APPENV";
}

export interface Kubefile {
  /** File name used in messages. */
  readonly file: string;
  readonly from: FromInstruction;
  /** Every instruction in order, FROM and ARGs before it included. */
  readonly instructions: readonly Instruction[];
  /** Final values of the ARGs declared after FROM (build args applied; unset ARGs absent). */
  readonly args: Readonly<Record<string, string>>;
  /** Final ENV (the image's global env). */
  readonly env: Readonly<Record<string, string>>;
  /** LABELs, plus the labels sealer derives from KUBEVERSION, CNI and CSI, later ones winning. */
  readonly labels: Readonly<Record<string, string>>;
  readonly maintainer?: string;
  readonly kubeVersion?: string;
  /** Apps declared here, in order; a redeclared name keeps its first position, the last declaration wins. */
  readonly apps: readonly KubefileApp[];
  /** APPCMDS per app (last one wins). May name apps of the base image. */
  readonly appCmds: Readonly<Record<string, readonly string[]>>;
  /** APPENV per app (merged). May name apps of the base image. */
  readonly appEnv: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** LAUNCH's app names; absent without LAUNCH. */
  readonly launch?: readonly string[];
  /** Commands from every CMD, then CMDS, in order. */
  readonly cmds: readonly string[];
  /**
   * App references that must be satisfied by the FROM image (only when FROM is not scratch and
   * `baseApps` was not given): check them with `checkBaseAppRefs` once the base image is known.
   */
  readonly baseAppRefs: readonly BaseAppRef[];
  readonly warnings: readonly KubefileWarning[];
}
