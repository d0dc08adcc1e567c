import type { Action, PlannedHost } from "../plan/types";

/** What every lifecycle command of a runtime gets to know about the cluster and the change. */
export interface RuntimeContext {
  cluster: string;
  action: Action;
  /** The desired hosts, in order (the first master anchors the cluster). */
  hosts: PlannedHost[];
  /** IPs joining in this apply. */
  added: string[];
  /** IPs leaving in this apply. */
  removed: string[];
  /** Cluster env (host env merged on top per host by the caller). */
  env: Record<string, string>;
  /** Where the image's rootfs lives on every host. */
  rootfs: string;
  /** The cluster's data root on every host, e.g. /var/lib/sealant/<cluster>. */
  dataRoot: string;
}

export interface RuntimeCommand {
  /** Shell command run on the host (no secrets inside: those go through `env`). */
  command: string;
  env: Record<string, string>;
}

/**
 * A cluster runtime: how an image's lifecycle steps become commands on hosts. The hooks
 * runtime (image-declared scripts) is the first; the kubeadm runtime implements the same
 * steps with kubeadm and adds a kubeconfig.
 */
export interface Runtime {
  readonly kind: string;
  /** The command for step `hook:<name>` on `host` (hosts without anything to do still run it: the command decides). */
  command(step: LifecycleStep, host: PlannedHost & { env?: Record<string, string> }, ctx: RuntimeContext): RuntimeCommand;
  /**
   * What the cluster offers its users once it is up, read from the first master through
   * `readFile` (undefined: no such file) — e.g. Kubernetes: the admin kubeconfig, a secret, and
   * the API endpoint. Runtimes with nothing to offer leave it out.
   */
  outputs?(readFile: (path: string) => Promise<string | undefined>, ctx: RuntimeContext): Promise<RuntimeOutputs>;
}

export interface RuntimeOutputs {
  /** Secret: never logged, a Pulumi secret output. */
  kubeconfig?: string;
  endpoint?: string;
  caCertificate?: string;
}

/** The lifecycle every runtime implements, in the order a cluster meets it. */
export const LIFECYCLE = ["init-host", "bootstrap", "join", "leave", "upgrade", "check", "reset"] as const;
export type LifecycleStep = (typeof LIFECYCLE)[number];
