import * as pulumi from "@pulumi/pulumi";
import type { RegistryAuthArgs } from "./image-build";

export interface ClusterImageArgs {
  /** Any image reference: `registry/repo:tag`, `...@sha256:...`, or an ImageBuild's `repoDigest`. */
  readonly ref: pulumi.Input<string>;
  /** Credentials for the image's registry; made secret. @default the stored credentials (`sealant login`, docker config) */
  readonly registryAuth?: pulumi.Input<RegistryAuthArgs>;
  /** Pull the image into the local store when it is not there. @default true */
  readonly pull?: pulumi.Input<boolean>;
}

/** The dynamic provider: serialised into state, so it only `require`s the implementation at run time. */
export const clusterImageProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return require("sealant/provider/impl/cluster-image").check(olds, news);
  },
  async diff(id, olds, news) {
    return require("sealant/provider/impl/cluster-image").diff(id, olds, news);
  },
  async create(inputs) {
    return require("sealant/provider/impl/cluster-image").create(inputs);
  },
  async read(id, props) {
    return require("sealant/provider/impl/cluster-image").read(id, props);
  },
  async update(id, olds, news) {
    return require("sealant/provider/impl/cluster-image").update(id, olds, news);
  },
  async delete(id, props) {
    return require("sealant/provider/impl/cluster-image").delete(id, props);
  },
};

/**
 * A cluster image by reference, resolved to a digest with its metadata. The registry is asked
 * first (the local store when the registry does not have it or cannot be reached, or for a
 * digest already stored); `pulumi refresh` re-resolves, so a moved tag shows as a new digest.
 */
export class ClusterImage extends pulumi.dynamic.Resource {
  declare readonly ref: pulumi.Output<string>;
  declare readonly digest: pulumi.Output<string>;
  /** `registry/repo:tag@digest`: give this to a Cluster. */
  declare readonly repoDigest: pulumi.Output<string>;
  declare readonly labels: pulumi.Output<Record<string, string>>;
  /** kube-installer or app-installer. */
  declare readonly kind: pulumi.Output<string>;
  /** The runtime the image declares (kubernetes, hooks, ...), if any. */
  declare readonly runtime: pulumi.Output<string | undefined>;
  declare readonly runtimeVersion: pulumi.Output<string | undefined>;
  declare readonly containerImages: pulumi.Output<string[]>;
  /** e.g. `["linux/amd64"]`. */
  declare readonly platforms: pulumi.Output<string[]>;
  /** Where the digest came from: `registry` or `store`. */
  declare readonly source: pulumi.Output<string>;

  constructor(name: string, args: ClusterImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      clusterImageProvider,
      name,
      {
        ref: args.ref,
        registryAuth: args.registryAuth === undefined ? undefined : pulumi.secret(args.registryAuth),
        pull: args.pull,
        digest: undefined,
        repoDigest: undefined,
        labels: undefined,
        kind: undefined,
        runtime: undefined,
        runtimeVersion: undefined,
        containerImages: undefined,
        platforms: undefined,
        source: undefined,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["registryAuth"] }),
      "sealant",
      "ClusterImage",
    );
  }
}
