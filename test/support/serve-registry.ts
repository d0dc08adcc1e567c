import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type TestRegistry } from "./registry";

/**
 * A stock docker-registry serving an existing storage directory read-only (a cluster image's
 * registry/ tree), as a cluster's registry host would.
 */
export async function startServingDirectory(root: string): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "sealant-serve-"));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  await writeFile(
    join(dir, "config.yml"),
    `version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\nstorage:\n  filesystem: { rootdirectory: ${root} }\n  maintenance: { readonly: { enabled: true } }\nhttp: { addr: ${host} }\n`,
  );
  const child = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    host,
    url: `http://${host}`,
    storageDir: root,
    dir,
    auth: "none",
    users: [],
    tokenRequests: () => 0,
    logTail: async () => "",
    async stop() {
      child.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
