import type { TestProject } from "vitest/node" with { "resolution-mode": "import" };
import { SHARED_ENV, startRegistry, type RegistryInfo, type SharedRegistries, type TestRegistry } from "./registry";

/**
 * vitest globalSetup: starts the registries shared by the whole run, once, in the main process:
 * - `upstream`: a plain docker-registry (anonymous pull/push);
 * - `basic`: a docker-registry with htpasswd (basic) auth and one user.
 * Tests get them with `sharedRegistries()` from ./registry (reads SEALANT_TEST_REGISTRIES, JSON,
 * inherited by the workers) or `inject("sealantRegistries")`; the bare hosts are also in
 * SEALANT_TEST_REGISTRY / SEALANT_TEST_REGISTRY_BASIC.
 * Teardown stops them and removes their storage.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started: TestRegistry[] = [];
  try {
    const [upstream, basic] = await Promise.all([startRegistry(), startRegistry({ auth: "htpasswd" })]);
    started.push(upstream, basic);
    const shared: SharedRegistries = { upstream: info(upstream), basic: info(basic) };
    project.provide("sealantRegistries", shared);
    process.env[SHARED_ENV] = JSON.stringify(shared);
    process.env["SEALANT_TEST_REGISTRY"] = upstream.host;
    process.env["SEALANT_TEST_REGISTRY_BASIC"] = basic.host;
  } catch (err) {
    await Promise.allSettled(started.map((r) => r.stop()));
    throw err;
  }
  return async () => {
    await Promise.allSettled(started.map((r) => r.stop()));
  };
}

function info(r: TestRegistry): RegistryInfo {
  const out: RegistryInfo = { host: r.host, storageDir: r.storageDir, auth: r.auth, users: r.users };
  if (r.tlsCert !== undefined) out.tlsCert = r.tlsCert;
  return out;
}
