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
