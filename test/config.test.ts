import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { usage } from "../src/cli/usage.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { DEFAULTS, SETTINGS } from "../src/settings.js";

/** Pure checks of configuration parsing: no server, no store. */
describe("loadConfig", () => {
  it("is DEFAULTS when the environment sets nothing (and empty values count as unset)", () => {
    expect(loadConfig({})).toEqual(DEFAULTS);
    expect(loadConfig(Object.fromEntries(SETTINGS.map((s) => [s.name, ""])))).toEqual(DEFAULTS);
  });

  it.each<[Record<string, string>, (c: ReturnType<typeof loadConfig>) => unknown, unknown]>([
    [{ DATABASE_URL: "postgres://db/belfry" }, (c) => c.databaseUrl, "postgres://db/belfry"],
    [{ PORT: "0" }, (c) => c.port, 0],
    [{ PORT: "65535" }, (c) => c.port, 65535],
    [{ HOST: "0.0.0.0" }, (c) => c.host, "0.0.0.0"],
    [{ BELFRY_ADMIN_TOKEN: "adm_x" }, (c) => c.adminToken, "adm_x"],
    [{ BELFRY_LOG_LEVEL: "silent" }, (c) => c.logLevel, "silent"],
    [{ BELFRY_PG_POOL_SIZE: "25" }, (c) => c.pgPoolSize, 25],
    [{ BELFRY_POLL_INTERVAL_S: "5" }, (c) => c.pollIntervalS, 5],
    [{ BELFRY_SSE_HEARTBEAT_S: "1" }, (c) => c.sseHeartbeatS, 1],
    [
      { BELFRY_CORS_ORIGINS: "https://a.example, https://a.example" },
      (c) => c.corsOrigins,
      ["https://a.example"],
    ],
    [{ BELFRY_RETENTION_DAYS: "90" }, (c) => c.retentionDays, 90],
    [{ BELFRY_RETENTION_DAYS: "1" }, (c) => c.retentionDays, 1],
    [{ BELFRY_WEBHOOK_WORKER: "0" }, (c) => c.webhooks.runWorker, false],
    [{ BELFRY_WEBHOOK_ALLOW_HTTP: "true" }, (c) => c.webhooks.allowHttp, true],
    [{ BELFRY_WEBHOOK_CONCURRENCY: "3" }, (c) => c.webhooks.concurrency, 3],
    [{ BELFRY_WEBHOOK_ENDPOINT_CONCURRENCY: "1" }, (c) => c.webhooks.endpointConcurrency, 1],
    [{ BELFRY_WEBHOOK_KEEPALIVE_MS: "0" }, (c) => c.webhooks.keepAliveMs, 0],
    [{ BELFRY_WEBHOOK_KEEPALIVE_MS: "60000" }, (c) => c.webhooks.keepAliveMs, 60_000],
    [{ BELFRY_WEBHOOK_POLL_MS: "10" }, (c) => c.webhooks.pollMs, 10],
    [{ BELFRY_WEBHOOK_TIMEOUT_MS: "100" }, (c) => c.webhooks.timeoutMs, 100],
    [{ BELFRY_WEBHOOK_RETRY_SCHEDULE: "0, 1,1 ,1" }, (c) => c.webhooks.scheduleS, [0, 1, 1, 1]],
    [{ BELFRY_WEBHOOK_DISABLE_AFTER: "60" }, (c) => c.webhooks.disableAfterS, 60],
    [{ BELFRY_WEBHOOK_ROTATION_OVERLAP: "0" }, (c) => c.webhooks.rotationOverlapS, 0],
    [
      { BELFRY_WEBHOOK_ALLOW_NETWORKS: "127.0.0.0/8, ::1/128," },
      (c) => c.webhooks.allowNetworks,
      ["127.0.0.0/8", "::1/128"],
    ],
    [{ BELFRY_RATE_LIMIT: "0" }, (c) => c.limits.ratePerMinute, 0],
    [{ BELFRY_AUTH_FAILURE_LIMIT: "5" }, (c) => c.limits.authFailuresPerMinute, 5],
    [{ BELFRY_REDIS_URL: "rediss://cache:6380" }, (c) => c.limits.redisUrl, "rediss://cache:6380"],
    [{ BELFRY_STREAMS_PER_KEY: "2" }, (c) => c.limits.streamsPerCredential, 2],
    [{ BELFRY_MAX_CONNECTIONS: "50" }, (c) => c.limits.maxConnections, 50],
    [{ BELFRY_HEADERS_TIMEOUT_MS: "100" }, (c) => c.limits.headersTimeoutMs, 100],
    [{ BELFRY_BODY_TIMEOUT_MS: "3600000" }, (c) => c.limits.bodyTimeoutMs, 3_600_000],
    [{ BELFRY_TRUST_PROXY: "true" }, (c) => c.limits.trustProxy, true],
    [{ BELFRY_TRUST_PROXY: "10.0.0.0/8, 192.168.1.1" }, (c) => c.limits.trustProxy, "10.0.0.0/8,192.168.1.1"],
  ])("reads %j", (env, pick, expected) => {
    expect(pick(loadConfig(env))).toEqual(expected);
  });

  it.each<[string, string, RegExp]>([
    ["PORT", "http", /^PORT must be an integer from 0 to 65535, got "http"$/],
    ["PORT", "65536", /^PORT must be an integer/],
    ["PORT", "-1", /^PORT must be an integer/],
    ["PORT", "8080.5", /^PORT must be an integer/],
    ["BELFRY_LOG_LEVEL", "loud", /^BELFRY_LOG_LEVEL must be one of fatal, error/],
    ["BELFRY_PG_POOL_SIZE", "0", /^BELFRY_PG_POOL_SIZE must be an integer from 1 to 1000/],
    ["BELFRY_POLL_INTERVAL_S", "0", /^BELFRY_POLL_INTERVAL_S must be an integer/],
    ["BELFRY_SSE_HEARTBEAT_S", "3601", /^BELFRY_SSE_HEARTBEAT_S must be an integer/],
    ["BELFRY_CORS_ORIGINS", "*", /^BELFRY_CORS_ORIGINS: "\*" is not allowed/],
    ["BELFRY_RETENTION_DAYS", "0", /^BELFRY_RETENTION_DAYS must be an integer from 1 to 36500, got "0"$/],
    ["BELFRY_RETENTION_DAYS", "30d", /^BELFRY_RETENTION_DAYS must be an integer from 1 to 36500/],
    ["BELFRY_RETENTION_DAYS", "-7", /^BELFRY_RETENTION_DAYS must be an integer/],
    ["BELFRY_WEBHOOK_WORKER", "yes", /^BELFRY_WEBHOOK_WORKER must be true or false, got "yes"$/],
    ["BELFRY_WEBHOOK_ALLOW_HTTP", "on", /^BELFRY_WEBHOOK_ALLOW_HTTP must be true or false/],
    ["BELFRY_WEBHOOK_CONCURRENCY", "0", /^BELFRY_WEBHOOK_CONCURRENCY must be an integer from 1/],
    [
      "BELFRY_WEBHOOK_ENDPOINT_CONCURRENCY",
      "0",
      /^BELFRY_WEBHOOK_ENDPOINT_CONCURRENCY must be an integer from 1 to 1000, got "0"$/,
    ],
    ["BELFRY_WEBHOOK_KEEPALIVE_MS", "4s", /^BELFRY_WEBHOOK_KEEPALIVE_MS must be an integer from 0 to 300000/],
    ["BELFRY_WEBHOOK_KEEPALIVE_MS", "300001", /^BELFRY_WEBHOOK_KEEPALIVE_MS must be an integer/],
    ["BELFRY_WEBHOOK_POLL_MS", "9", /^BELFRY_WEBHOOK_POLL_MS must be an integer from 10/],
    ["BELFRY_WEBHOOK_TIMEOUT_MS", "lots", /^BELFRY_WEBHOOK_TIMEOUT_MS must be an integer/],
    ["BELFRY_WEBHOOK_RETRY_SCHEDULE", "0,soon", /^BELFRY_WEBHOOK_RETRY_SCHEDULE entries must be an integer/],
    [
      "BELFRY_WEBHOOK_RETRY_SCHEDULE",
      Array(51).fill("1").join(","),
      /^BELFRY_WEBHOOK_RETRY_SCHEDULE must list 1 to 50/,
    ],
    ["BELFRY_WEBHOOK_DISABLE_AFTER", "0", /^BELFRY_WEBHOOK_DISABLE_AFTER must be an integer from 1/],
    ["BELFRY_WEBHOOK_ROTATION_OVERLAP", "-5", /^BELFRY_WEBHOOK_ROTATION_OVERLAP must be an integer/],
    [
      "BELFRY_WEBHOOK_ALLOW_NETWORKS",
      "10.0.0.0/33",
      /^BELFRY_WEBHOOK_ALLOW_NETWORKS: "10.0.0.0\/33" is not a CIDR/,
    ],
    ["BELFRY_RATE_LIMIT", "lots", /^BELFRY_RATE_LIMIT must be an integer from 0 to 1000000, got "lots"$/],
    ["BELFRY_AUTH_FAILURE_LIMIT", "1e3", /^BELFRY_AUTH_FAILURE_LIMIT must be an integer/],
    ["BELFRY_REDIS_URL", "localhost:6379", /^BELFRY_REDIS_URL must be redis:\/\/host:port/],
    ["BELFRY_STREAMS_PER_KEY", "0", /^BELFRY_STREAMS_PER_KEY must be an integer from 1/],
    ["BELFRY_MAX_CONNECTIONS", "0", /^BELFRY_MAX_CONNECTIONS must be an integer from 1/],
    ["BELFRY_HEADERS_TIMEOUT_MS", "99", /^BELFRY_HEADERS_TIMEOUT_MS must be an integer from 100/],
    ["BELFRY_BODY_TIMEOUT_MS", "3600001", /^BELFRY_BODY_TIMEOUT_MS must be an integer/],
    ["BELFRY_TRUST_PROXY", "the-lb", /^BELFRY_TRUST_PROXY must be true, false, or the addresses/],
  ])("refuses %s=%j with a ConfigError naming the variable", (name, value, message) => {
    const load = () => loadConfig({ [name]: value });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });

  it("lets explicit overrides win over the environment", () => {
    expect(loadConfig({ PORT: "9000" }, { port: 0 }).port).toBe(0);
  });
});

describe("the list of settings", () => {
  const configSource = readFileSync(join(import.meta.dirname, "../src/config.ts"), "utf8");
  const read = [
    ...new Set([...configSource.matchAll(/"((?:BELFRY_[A-Z_]+)|DATABASE_URL|PORT|HOST)"/g)].map((m) => m[1])),
  ];
  const names = SETTINGS.map((s) => s.name);

  it("names every variable config.ts reads, once each", () => {
    expect(read.length).toBeGreaterThan(20);
    expect([...read].sort()).toEqual([...names].sort());
    expect(new Set(names).size).toBe(names.length);
  });

  it("is what `belfry --help` prints and docs/configuration.md documents", () => {
    const doc = readFileSync(join(import.meta.dirname, "../docs/configuration.md"), "utf8");
    const help = usage();
    for (const s of SETTINGS) {
      expect(doc).toContain(`\`${s.name}\``);
      expect(help).toMatch(
        new RegExp(`^  ${s.name} .*\\(default: ${s.default.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\)$`, "m"),
      );
    }
  });
});
