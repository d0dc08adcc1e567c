import * as pulumi from "@pulumi/pulumi";

/** Credentials for one registry; the whole object is kept secret in state. */
export interface RegistryAuthArgs {
  /** host[:port]. @default the registry of the image concerned (for ImageBuild: the push target, else the tag) */
  readonly registry?: pulumi.Input<string>;
  readonly username: pulumi.Input<string>;
  readonly password: pulumi.Input<string>;
}

export interface ImageBuildArgs {
  /** The build context directory; relative paths are relative to the Pulumi program's directory. */
  readonly context: pulumi.Input<string>;
  /**
   * A path relative to the context, or the Kubefile's text as `{ text }`.
   * @default "Kubefile" in the context
   */
  readonly kubefile?: pulumi.Input<string | { text: pulumi.Input<string> }>;
  /** The image's name in the local store, e.g. `registry.example.com/team/etcd:3.4`. */
  readonly tag: pulumi.Input<string>;
  /** Values for the Kubefile's ARGs. @default {} */
  readonly buildArgs?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** e.g. `["linux/amd64", "linux/arm64"]` (several make an OCI index). @default this machine's platform */
  readonly platforms?: pulumi.Input<pulumi.Input<string>[]>;
  /** Push after building: `true` pushes to `tag`; a reference pushes there. @default false */
  readonly push?: pulumi.Input<boolean | string>;
  /** Credentials for the push (and FROM) registry; made secret. @default the stored credentials (`sealant login`, docker config) */
  readonly registryAuth?: pulumi.Input<RegistryAuthArgs>;
  /** Build every layer afresh (not part of the diff). @default false */
  readonly noCache?: pulumi.Input<boolean>;
}

export interface ImageBuildLayer {
  platform: string;
  digest: string;
  size: number;
  createdBy: string;
}

/**
 * The dynamic provider. It is serialised into the stack's state as a closure, so each method
 * only `require`s the compiled implementation at run time (resolved from the program's
 * node_modules) and captures nothing else.
 */
export const imageBuildProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return require("sealant/provider/impl/image-build").check(olds, news);
  },
  async diff(id, olds, news) {
    return require("sealant/provider/impl/image-build").diff(id, olds, news);
  },
  async create(inputs) {
    return require("sealant/provider/impl/image-build").create(inputs);
  },
  async read(id, props) {
    return require("sealant/provider/impl/image-build").read(id, props);
  },
  async update(id, olds, news) {
    return require("sealant/provider/impl/image-build").update(id, olds, news);
  },
  async delete(id, props) {
    return require("sealant/provider/impl/image-build").delete(id, props);
  },
};

/**
 * A cluster image built from a Kubefile into the local store (and pushed when asked). `check`
 * hashes the whole context, so editing any file is a diff; every change is an update: a
 * rebuild that reuses the cached layers, then the push. Deleting it removes nothing (images
 * are a shared cache; see `sealant prune`).
 */
export class ImageBuild extends pulumi.dynamic.Resource {
  /** The normalised local reference, e.g. `docker.io/library/etcd:3.4`. */
  declare readonly ref: pulumi.Output<string>;
  declare readonly tag: pulumi.Output<string>;
  /** The image's digest (an index for several platforms). */
  declare readonly digest: pulumi.Output<string>;
  /** `ref@digest`: the exact image in the local store. */
  declare readonly repoDigest: pulumi.Output<string>;
  /** `pushed-ref@digest`, when pushed: give this to a Cluster whose hosts pull from the registry. */
  declare readonly pushedRepoDigest: pulumi.Output<string | undefined>;
  /** The hash of the context, Kubefile, build args and platforms. */
  declare readonly contextHash: pulumi.Output<string>;
  declare readonly labels: pulumi.Output<Record<string, string>>;
  /** kube-installer or app-installer. */
  declare readonly kind: pulumi.Output<string>;
  declare readonly runtime: pulumi.Output<string | undefined>;
  declare readonly runtimeVersion: pulumi.Output<string | undefined>;
  /** The container images cached inside. */
  declare readonly containerImages: pulumi.Output<string[]>;
  declare readonly layers: pulumi.Output<ImageBuildLayer[]>;

  constructor(name: string, args: ImageBuildArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      imageBuildProvider,
      name,
      {
        context: args.context,
        kubefile: args.kubefile,
        tag: args.tag,
        buildArgs: args.buildArgs,
        platforms: args.platforms,
        push: args.push,
        registryAuth: args.registryAuth === undefined ? undefined : pulumi.secret(args.registryAuth),
        noCache: args.noCache,
        contextHash: undefined,
        ref: undefined,
        digest: undefined,
        repoDigest: undefined,
        pushedRepoDigest: undefined,
        labels: undefined,
        kind: undefined,
        runtime: undefined,
        runtimeVersion: undefined,
        containerImages: undefined,
        layers: undefined,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["registryAuth"] }),
      "sealant",
      "ImageBuild",
    );
  }
}
