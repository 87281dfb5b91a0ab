import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Records every PostgreSQL statement the run makes and checks each names its user.
    globalSetup: ["test/support/sql-capture-setup.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file gets its own throwaway stores, so files run in parallel safely.
    fileParallelism: true,
  },
});
