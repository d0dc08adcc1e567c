/**
 * A pull-through upstream as the hosts get it (defaults filled in), and the checks of what lands
 * on hosts. Kept in spec/ (below host/): the Clusterfile reader fills these in and checks them,
 * and the host code that runs the caches takes them as they are.
 */
import { registryComponent } from "../../image/distribution-layout";

/** One upstream the cluster caches. */
export interface PullThroughUpstream {
  /** The registry domain images are named by: `docker.io`, `quay.io`, `registry.example.com:5000`. */
  domain: string;
  /** Where the cache fetches from: `https://registry-1.docker.io`, `https://quay.io`. */
  url: string;
  /** Secret, with password: the upstream's login. */
  username?: string;
  password?: string;
  /** The cache's port on every registry server. */
  port: number;
  /** What hosts try after the caches: nothing more, or the upstream itself. */
  fallback: "none" | "upstream";
}

/** Checks what lands on hosts: domains, URLs (no login in them: it belongs in username/password), ports, one line secrets. */
export function checkUpstreams(upstreams: readonly PullThroughUpstream[], registryPort: number): void {
  const seen = new Map<string, string>();
  const ports = new Map<number, string>([
    [registryPort, "the cluster registry"],
    [registryPort + 1, "the cluster registry's docker.io view"],
  ]);
  for (const u of upstreams) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/.test(u.domain))
      throw new Error(`pull-through upstream "${u.domain}": expected a registry domain such as quay.io or registry.example.com:5000`);
    registryComponent(u.domain); // throws for what cannot be stored
    if (seen.has(u.domain)) throw new Error(`pull-through upstream "${u.domain}" is listed twice`);
    seen.set(u.domain, u.url);
    let url: URL;
    try {
      url = new URL(u.url);
    } catch {
      throw new Error(`pull-through upstream "${u.domain}": url "${u.url}" is not a URL; expected https://host[:port]`);
    }
    if (!/^https?:$/.test(url.protocol) || url.username || url.password || url.search || url.hash || (url.pathname !== "/" && url.pathname !== ""))
      throw new Error(
        `pull-through upstream "${u.domain}": url must be http(s)://host[:port] with no path or login in it (the login goes in username/password)`,
      );
    if (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535) throw new Error(`pull-through upstream "${u.domain}": port ${u.port}: expected 1-65535`);
    const taken = ports.get(u.port);
    if (taken) throw new Error(`pull-through upstream "${u.domain}": port ${u.port} is already used by ${taken}`);
    ports.set(u.port, `the cache of ${u.domain}`);
    if ((u.username === undefined) !== (u.password === undefined))
      throw new Error(`pull-through upstream "${u.domain}": a login needs both username and password`);
    if (u.username !== undefined && (u.username === "" || /[\r\n]/.test(u.username)))
      throw new Error(`pull-through upstream "${u.domain}": username must not be empty or contain line breaks`);
    if (u.password !== undefined && (u.password === "" || /[\r\n]/.test(u.password)))
      throw new Error(`pull-through upstream "${u.domain}": password must not be empty or contain line breaks`);
  }
}
