import { expect } from "vitest";
import { ClusterSpecError, parseClusterfile, parseClusterSpec } from "../../../../src/engine/cluster/spec";

/** The problem lines of a Clusterfile that must not parse. */
export function clusterfileProblems(text: string): string[] {
  try {
    parseClusterfile(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ClusterSpecError);
    return (err as ClusterSpecError).message
      .split("\n")
      .slice(1)
      .map((l) => l.trim());
  }
  throw new Error("expected the Clusterfile to be invalid");
}

/** The problem lines of inputs that must not parse. */
export function inputProblems(input: unknown): string[] {
  try {
    parseClusterSpec(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ClusterSpecError);
    return (err as ClusterSpecError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error("expected the inputs to be invalid");
}

/** A sealer v2 Cluster document around the given `spec.hosts` YAML (indented by 4). */
export function sealerCluster(hostsYaml: string, extraSpec = ""): string {
  return `apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: my-cluster
spec:
  image: docker.io/sealerio/kubernetes:v1.22.15
  ssh:
    passwd: s3cret-Pa55
  hosts:
${hostsYaml}
${extraSpec}`;
}
