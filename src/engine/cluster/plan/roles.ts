/**
 * Host roles as the cluster uses them. One predicate for "is a control-plane host": sealer's
 * `master`, and `control-plane` (the name Kubernetes and k0sctl use).
 */
export const MASTER = "master";

/** The roles that make a host a master. */
export const MASTER_ROLES: readonly string[] = [MASTER, "control-plane"];

/** Whether a host is a master (control plane). */
export function isMaster(host: { readonly roles: readonly string[] }): boolean {
  return host.roles.some((r) => MASTER_ROLES.includes(r));
}

/**
 * Whether a host has a role. A host without one (a sealer host group with no `roles`) is a host of
 * the cluster that sealer sets up — host aliases, the image's files, host plugins, the container
 * runtime, the registry's configuration — but never joins: its Kubernetes runtime joins `node`
 * hosts only (pkg/runtime/kubernetes/runtime.go, GetHostIPListByRole(NODE)). So here: it is
 * distributed to, rendered, pointed at the registry and prepared (init-host), and no bootstrap,
 * join, check, upgrade, label, taint or leave step is ever planned for it.
 */
export function hasRole(host: { readonly roles: readonly string[] }): boolean {
  return host.roles.length > 0;
}
