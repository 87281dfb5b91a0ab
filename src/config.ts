import { DEFAULT_BUS_SUBJECT, parseNatsUrl, subjectProblem } from "./bus/nats-bus.js";
import { isIpAddress, parseCidr } from "./network/cidr.js";
import { type BusConfig, type Config, DEFAULTS, type LimitConfig, type WebhookConfig } from "./settings.js";

export type { BusConfig, Config, LimitConfig, WebhookConfig } from "./settings.js";

/** The webhook defaults (`DEFAULTS.webhooks`), for callers that start from them. */
export const DEFAULT_WEBHOOKS: WebhookConfig = DEFAULTS.webhooks;
/** The limit defaults (`DEFAULTS.limits`). */
export const DEFAULT_LIMITS: LimitConfig = DEFAULTS.limits;

/** A setting the environment gives a value it cannot take: the start stops, naming the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const text = (name: string) => (env[name] === undefined || env[name] === "" ? undefined : env[name]);
  const logLevel = text("BELFRY_LOG_LEVEL") ?? DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(`BELFRY_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  return {
    databaseUrl: text("DATABASE_URL"),
    port: integer("PORT", text("PORT"), DEFAULTS.port, 0, 65535),
    host: text("HOST") ?? DEFAULTS.host,
    adminToken: text("BELFRY_ADMIN_TOKEN"),
    logLevel,
    pgPoolSize: integer("BELFRY_PG_POOL_SIZE", text("BELFRY_PG_POOL_SIZE"), DEFAULTS.pgPoolSize, 1, 1000),
    pollIntervalS: integer(
      "BELFRY_POLL_INTERVAL_S",
      text("BELFRY_POLL_INTERVAL_S"),
      DEFAULTS.pollIntervalS,
      1,
      86400,
    ),
    sseHeartbeatS: integer(
      "BELFRY_SSE_HEARTBEAT_S",
      text("BELFRY_SSE_HEARTBEAT_S"),
      DEFAULTS.sseHeartbeatS,
      1,
      3600,
    ),
    corsOrigins: corsOrigins(text("BELFRY_CORS_ORIGINS")),
    bus: busConfig(text("BELFRY_BUS_URL"), text("BELFRY_BUS_SUBJECT")),
    retentionDays: retentionDays(text("BELFRY_RETENTION_DAYS")),
    webhooks: loadWebhookConfig(text),
    limits: loadLimits(text),
    ...overrides,
  };
}

function loadWebhookConfig(text: (name: string) => string | undefined): WebhookConfig {
  const d = DEFAULTS.webhooks;
  const int = (name: string, fallback: number, min: number, max: number) =>
    integer(name, text(name), fallback, min, max);
  const schedule = text("BELFRY_WEBHOOK_RETRY_SCHEDULE");
  const scheduleS =
    schedule === undefined
      ? d.scheduleS
      : schedule
          .split(",")
          .map((v) => integer("BELFRY_WEBHOOK_RETRY_SCHEDULE entries", v.trim(), 0, 0, 7 * 86400));
  if (scheduleS.length === 0 || scheduleS.length > 50)
    throw new ConfigError("BELFRY_WEBHOOK_RETRY_SCHEDULE must list 1 to 50 delays");
  const networks = text("BELFRY_WEBHOOK_ALLOW_NETWORKS");
  const allowNetworks =
    networks === undefined
      ? []
      : networks
          .split(",")
          .map((n) => n.trim())
          .filter(Boolean);
  for (const cidr of allowNetworks) {
    if (parseCidr(cidr) === undefined)
      throw new ConfigError(
        `BELFRY_WEBHOOK_ALLOW_NETWORKS: "${cidr}" is not a CIDR such as 127.0.0.0/8 or ::1/128`,
      );
  }
  return {
    allowHttp: boolean("BELFRY_WEBHOOK_ALLOW_HTTP", text("BELFRY_WEBHOOK_ALLOW_HTTP"), d.allowHttp),
    timeoutMs: int("BELFRY_WEBHOOK_TIMEOUT_MS", d.timeoutMs, 100, 120_000),
    scheduleS,
    disableAfterS: int("BELFRY_WEBHOOK_DISABLE_AFTER", d.disableAfterS, 1, 365 * 86400),
    rotationOverlapS: int("BELFRY_WEBHOOK_ROTATION_OVERLAP", d.rotationOverlapS, 0, 30 * 86400),
    allowNetworks,
    concurrency: int("BELFRY_WEBHOOK_CONCURRENCY", d.concurrency, 1, 1000),
    endpointConcurrency: int("BELFRY_WEBHOOK_ENDPOINT_CONCURRENCY", d.endpointConcurrency, 1, 1000),
    keepAliveMs: int("BELFRY_WEBHOOK_KEEPALIVE_MS", d.keepAliveMs, 0, 300_000),
    pollMs: int("BELFRY_WEBHOOK_POLL_MS", d.pollMs, 10, 60_000),
    runWorker: boolean("BELFRY_WEBHOOK_WORKER", text("BELFRY_WEBHOOK_WORKER"), d.runWorker),
  };
}

function loadLimits(text: (name: string) => string | undefined): LimitConfig {
  const d = DEFAULTS.limits;
  const int = (name: string, fallback: number, min: number, max: number) =>
    integer(name, text(name), fallback, min, max);
  const redisUrl = text("BELFRY_REDIS_URL");
  if (redisUrl !== undefined && !/^rediss?:\/\/[^\s]+$/.test(redisUrl))
    throw new ConfigError("BELFRY_REDIS_URL must be redis://host:port or rediss://…");
  return {
    ratePerMinute: int("BELFRY_RATE_LIMIT", d.ratePerMinute, 0, 1_000_000),
    authFailuresPerMinute: int("BELFRY_AUTH_FAILURE_LIMIT", d.authFailuresPerMinute, 0, 1_000_000),
    redisUrl,
    streamsPerCredential: int("BELFRY_STREAMS_PER_KEY", d.streamsPerCredential, 1, 10_000),
    maxConnections: int("BELFRY_MAX_CONNECTIONS", d.maxConnections, 1, 1_000_000),
    headersTimeoutMs: int("BELFRY_HEADERS_TIMEOUT_MS", d.headersTimeoutMs, 100, 600_000),
    bodyTimeoutMs: int("BELFRY_BODY_TIMEOUT_MS", d.bodyTimeoutMs, 100, 3_600_000),
    trustProxy: trustProxy(text("BELFRY_TRUST_PROXY")),
  };
}

/** `BELFRY_BUS_URL` and `BELFRY_BUS_SUBJECT`, checked now so a typo stops the start, not the push. */
function busConfig(url: string | undefined, subject: string | undefined): BusConfig | undefined {
  if (subject !== undefined && subjectProblem(subject) !== undefined)
    throw new ConfigError(`BELFRY_BUS_SUBJECT ${subjectProblem(subject)}, got "${subject}"`);
  if (url === undefined) {
    if (subject !== undefined)
      throw new ConfigError("BELFRY_BUS_SUBJECT needs BELFRY_BUS_URL (nats://host:4222)");
    return undefined;
  }
  try {
    parseNatsUrl(url);
  } catch (error) {
    throw new ConfigError(
      `BELFRY_BUS_URL ${(error as Error).message}: use nats://host:4222, nats://user:pass@host:port, or several servers comma-separated`,
    );
  }
  return { url, subject: subject ?? DEFAULT_BUS_SUBJECT };
}

/** `BELFRY_RETENTION_DAYS`: unset keeps everything; otherwise a whole number of days, 1 to 100 years. */
function retentionDays(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  return integer("BELFRY_RETENTION_DAYS", value, 0, 1, 36_500);
}

function trustProxy(value: string | undefined): boolean | string {
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  const cidrs = value.split(",").map((v) => v.trim());
  if (cidrs.every((c) => parseCidr(c) !== undefined || isIpAddress(c))) return cidrs.join(",");
  throw new ConfigError(
    `BELFRY_TRUST_PROXY must be true, false, or the addresses/CIDRs of your proxies, got "${value}"`,
  );
}

/**
 * `BELFRY_CORS_ORIGINS`: comma-separated origins, each exactly as a browser sends it in `Origin`
 * (scheme, host, port only when not the default; lower case; no path, no trailing slash), since
 * they are compared as strings. Anything else stops the start with the form it should have had.
 */
export function corsOrigins(value: string | undefined): string[] {
  if (value === undefined) return [];
  const origins = value
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of origins) {
    const problem = originProblem(origin);
    if (problem !== undefined) throw new ConfigError(`BELFRY_CORS_ORIGINS: "${origin}" ${problem}`);
  }
  return [...new Set(origins)];
}

function originProblem(origin: string): string | undefined {
  const form = "an origin is scheme://host[:port], e.g. https://console.example.com";
  if (origin === "*" || origin === "null") return `is not allowed: list each origin (${form})`;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return `is not an origin (${form})`;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return `must be http:// or https:// (${form})`;
  if (url.origin === origin) return undefined;
  if (url.username || url.password || url.search || url.hash || url.pathname !== "/")
    return `must have no path, query, fragment or credentials (${form})`;
  return `is not written as browsers send it: use "${url.origin}"`;
}

function boolean(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new ConfigError(`${name} must be true or false, got "${value}"`);
}

function integer(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max))
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}
