import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // Two cores: two test files at a time keeps servers and Redis responsive.
    maxWorkers: 2,
    testTimeout: 20_000,
    // Starting a Redis Cluster or Sentinel set on a busy two-core machine can take a while.
    hookTimeout: 120_000,
  },
});
