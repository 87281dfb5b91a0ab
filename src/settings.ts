/**
 * Every setting of a Belfry server: its type, its default, and the environment variable that
 * sets it. This file is the one place defaults live; config.ts reads the environment over them,
 * `belfry --help` prints {@link SETTINGS}, and docs/configuration.md documents the same list
 * (a test keeps the three in step).
 */

/** Configuration, layered: {@link DEFAULTS}, then the environment, then explicit overrides. */
export interface Config {
  /** Unset → the embedded store at ./data/belfry.db. */
  readonly databaseUrl: string | undefined;
  readonly port: number;
  readonly host: string;
  /** Unset → the server generates one per run and prints it once. */
  readonly adminToken: string | undefined;
  readonly logLevel: string;
  readonly pgPoolSize: number;
  /** What feed answers advise pollers in `X-Poll-Interval`. */
  readonly pollIntervalS: number;
  /** Seconds between heartbeats on live streams. */
  readonly sseHeartbeatS: number;
  /** Browser origins (`https://console.example.com`) allowed to call `/api/v1/me/*` and `/bell.js`. */
  readonly corsOrigins: readonly string[];
  /** Share committed changes over NATS (`BELFRY_BUS_URL`); unset → LISTEN/NOTIFY or in-process. */
  readonly bus: BusConfig | undefined;
  /**
   * Days notifications, events and finished webhook deliveries are kept before the background
   * pruning deletes them (`BELFRY_RETENTION_DAYS`); unset → kept for ever.
   */
  readonly retentionDays: number | undefined;
  readonly webhooks: WebhookConfig;
  readonly limits: LimitConfig;
}

/** The NATS change bus: its servers (`nats://…`, comma-separated) and the subject it uses. */
export interface BusConfig {
  readonly url: string;
  readonly subject: string;
}

/** What one client may make an instance do or hold (the `BELFRY_*` limit variables). */
export interface LimitConfig {
  /** `/api/v1/*` requests a minute per credential; 0 = no limit. */
  readonly ratePerMinute: number;
  /** Failed authentications a minute per client address; 0 = no limit. */
  readonly authFailuresPerMinute: number;
  /** Shares the rate-limit counts between instances (`redis://…`); unset → per instance. */
  readonly redisUrl: string | undefined;
  /** Live streams one credential may hold open on one instance. */
  readonly streamsPerCredential: number;
  /** Open connections one instance accepts; more are refused. */
  readonly maxConnections: number;
  /** A client must send its headers within this, and its whole request within `bodyTimeoutMs`. */
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** Take the client address from `X-Forwarded-For` (behind a load balancer): `true`, or the proxies' CIDRs. */
  readonly trustProxy: boolean | string;
}

/** Webhook delivery settings (the `BELFRY_WEBHOOK_*` variables). */
export interface WebhookConfig {
  /** Accept `http://` endpoint URLs (otherwise https only). */
  readonly allowHttp: boolean;
  /** One attempt's whole budget: connect, send, first response bytes. */
  readonly timeoutMs: number;
  /** Delay in seconds before each attempt, the first being the initial one (Svix's schedule). */
  readonly scheduleS: readonly number[];
  /** An endpoint failing everything for this long is disabled. */
  readonly disableAfterS: number;
  /** How long a rotated-out secret keeps signing beside the new one. */
  readonly rotationOverlapS: number;
  /** CIDRs exempt from the SSRF guard (tests use `127.0.0.0/8,::1/128`). */
  readonly allowNetworks: readonly string[];
  /** Attempts one worker runs at once. */
  readonly concurrency: number;
  /** Attempts one worker runs at once to any one endpoint. */
  readonly endpointConcurrency: number;
  /** How long an idle connection to an endpoint is kept for the next attempt; 0 = not kept. */
  readonly keepAliveMs: number;
  /** How often an idle worker looks for due deliveries. */
  readonly pollMs: number;
  /** Whether `belfry serve` runs delivery workers in-process. */
  readonly runWorker: boolean;
}

/** Where the embedded store lives when `DATABASE_URL` is unset. */
export const DEFAULT_DATABASE_URL = "file:./data/belfry.db";

/** Every default, in one object. */
export const DEFAULTS = {
  databaseUrl: undefined,
  port: 8080,
  host: "127.0.0.1",
  adminToken: undefined,
  logLevel: "info",
  pgPoolSize: 10,
  pollIntervalS: 60,
  sseHeartbeatS: 15,
  corsOrigins: [],
  bus: undefined,
  retentionDays: undefined,
  webhooks: {
    allowHttp: false,
    timeoutMs: 10_000,
    scheduleS: [0, 5, 300, 1800, 7200, 18000, 36000, 36000],
    disableAfterS: 5 * 24 * 60 * 60,
    rotationOverlapS: 24 * 60 * 60,
    allowNetworks: [],
    concurrency: 10,
    endpointConcurrency: 4,
    keepAliveMs: 4000,
    pollMs: 1000,
    runWorker: true,
  },
  limits: {
    ratePerMinute: 600,
    authFailuresPerMinute: 60,
    redisUrl: undefined,
    streamsPerCredential: 10,
    maxConnections: 10_000,
    headersTimeoutMs: 10_000,
    bodyTimeoutMs: 30_000,
    trustProxy: false,
  },
} as const satisfies Config;

/** One setting as `belfry --help` and docs/configuration.md list it. */
export interface Setting {
  /** The environment variable. */
  readonly name: string;
  /** The default, as a person reads it. */
  readonly default: string;
  readonly description: string;
}

const w = DEFAULTS.webhooks;
const l = DEFAULTS.limits;

/** Every environment variable a server reads, in the order the docs list them. */
export const SETTINGS: readonly Setting[] = [
  {
    name: "DATABASE_URL",
    default: DEFAULT_DATABASE_URL,
    description: "file:<path> for SQLite, postgres://… for PostgreSQL",
  },
  { name: "PORT", default: String(DEFAULTS.port), description: "the port to listen on (0: any free port)" },
  {
    name: "HOST",
    default: DEFAULTS.host,
    description: "the address to listen on; 0.0.0.0 for every interface",
  },
  {
    name: "BELFRY_ADMIN_TOKEN",
    default: "generated per run",
    description: "the Bearer token of /admin/v1/*",
  },
  {
    name: "BELFRY_LOG_LEVEL",
    default: DEFAULTS.logLevel,
    description: "fatal, error, warn, info, debug, trace or silent",
  },
  {
    name: "BELFRY_PG_POOL_SIZE",
    default: String(DEFAULTS.pgPoolSize),
    description: "PostgreSQL connections per process",
  },
  {
    name: "BELFRY_POLL_INTERVAL_S",
    default: String(DEFAULTS.pollIntervalS),
    description: "what feed answers advise in X-Poll-Interval",
  },
  {
    name: "BELFRY_SSE_HEARTBEAT_S",
    default: String(DEFAULTS.sseHeartbeatS),
    description: "seconds between heartbeats on live streams",
  },
  {
    name: "BELFRY_CORS_ORIGINS",
    default: "none",
    description: "browser origins allowed to call /api/v1/me/* and /bell.js",
  },
  {
    name: "BELFRY_BUS_URL",
    default: "unset",
    description:
      "nats://host:4222 (several comma-separated) to share changes between instances over NATS instead of LISTEN/NOTIFY (needed behind PgBouncer in transaction mode)",
  },
  {
    name: "BELFRY_BUS_SUBJECT",
    default: "belfry.changes",
    description: "the NATS subject of the change bus (deployments sharing one NATS each need their own)",
  },
  {
    name: "BELFRY_RETENTION_DAYS",
    default: "unset",
    description:
      "days to keep notifications, events and finished webhook deliveries; older ones are pruned in the background (unset: keep everything)",
  },
  {
    name: "BELFRY_WEBHOOK_WORKER",
    default: String(w.runWorker),
    description: "whether serve delivers webhooks in-process",
  },
  {
    name: "BELFRY_WEBHOOK_CONCURRENCY",
    default: String(w.concurrency),
    description: "attempts one worker runs at once",
  },
  {
    name: "BELFRY_WEBHOOK_ENDPOINT_CONCURRENCY",
    default: String(w.endpointConcurrency),
    description: "attempts one worker runs at once to any one endpoint",
  },
  {
    name: "BELFRY_WEBHOOK_KEEPALIVE_MS",
    default: String(w.keepAliveMs),
    description: "how long an idle connection to an endpoint is kept for reuse (0: a connection per attempt)",
  },
  {
    name: "BELFRY_WEBHOOK_POLL_MS",
    default: String(w.pollMs),
    description: "how often an idle worker looks for due deliveries",
  },
  { name: "BELFRY_WEBHOOK_TIMEOUT_MS", default: String(w.timeoutMs), description: "one attempt's budget" },
  {
    name: "BELFRY_WEBHOOK_RETRY_SCHEDULE",
    default: w.scheduleS.join(","),
    description: "seconds before each attempt (±20 % jitter)",
  },
  {
    name: "BELFRY_WEBHOOK_DISABLE_AFTER",
    default: String(w.disableAfterS),
    description: "seconds of failing everything before an endpoint is disabled",
  },
  {
    name: "BELFRY_WEBHOOK_ROTATION_OVERLAP",
    default: String(w.rotationOverlapS),
    description: "seconds a rotated-out secret keeps signing",
  },
  {
    name: "BELFRY_WEBHOOK_ALLOW_HTTP",
    default: String(w.allowHttp),
    description: "accept http:// endpoint URLs",
  },
  { name: "BELFRY_WEBHOOK_ALLOW_NETWORKS", default: "none", description: "CIDRs exempt from the SSRF guard" },
  {
    name: "BELFRY_RATE_LIMIT",
    default: String(l.ratePerMinute),
    description: "/api/v1/* requests a minute per credential; 0 = off",
  },
  {
    name: "BELFRY_AUTH_FAILURE_LIMIT",
    default: String(l.authFailuresPerMinute),
    description: "failed authentications a minute per client address; 0 = off",
  },
  {
    name: "BELFRY_REDIS_URL",
    default: "unset",
    description: "redis://host:port to share rate-limit counts between instances",
  },
  {
    name: "BELFRY_STREAMS_PER_KEY",
    default: String(l.streamsPerCredential),
    description: "live streams one credential may hold on one instance",
  },
  {
    name: "BELFRY_MAX_CONNECTIONS",
    default: String(l.maxConnections),
    description: "connections one instance holds at once",
  },
  {
    name: "BELFRY_HEADERS_TIMEOUT_MS",
    default: String(l.headersTimeoutMs),
    description: "a client must send its headers within this",
  },
  {
    name: "BELFRY_BODY_TIMEOUT_MS",
    default: String(l.bodyTimeoutMs),
    description: "… and its whole request within this",
  },
  {
    name: "BELFRY_TRUST_PROXY",
    default: String(l.trustProxy),
    description: "true, or the proxies' addresses/CIDRs, to trust X-Forwarded-For",
  },
];
