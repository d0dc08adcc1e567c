import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests start real registries and spawn skopeo; give them room but keep failures fast.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    globalSetup: ["test/support/global-setup.ts"],
    // Two cores: files in parallel on two forks.
    pool: "forks",
    maxWorkers: 2,
  },
});
