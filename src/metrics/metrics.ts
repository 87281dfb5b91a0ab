import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Where a scrape reads the numbers kept elsewhere (the store, the open streams). */
export interface MetricSources {
  /** Webhook deliveries waiting to be attempted, and how late the most overdue one is. */
  deliveryQueue(): Promise<{ depth: number; oldestDueAgeS: number }>;
  /** Live streams open on this instance. */
  openStreams(): number;
  /** The PostgreSQL pool's connections; undefined on the embedded store. */
  pool(): { total: number; idle: number; waiting: number } | undefined;
}

/** A webhook attempt's outcome as a bounded label: success, http_4xx/http_5xx…, or the error class. */
export function attemptOutcome(status: number | null, errorClass: string | null): string {
  if (errorClass === null) return "success";
  if (errorClass === "http_status" && status !== null) return `http_${Math.floor(status / 100)}xx`;
  return errorClass;
}

/**
 * Belfry's Prometheus metrics, in a registry of their own (no module-level singletons: each server,
 * and each test, has its own). Counters are counted where things happen; gauges are read from
 * their sources when Prometheus scrapes.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: "belfry_http_requests_total",
    help: "HTTP requests answered, by route pattern (never the raw URL), method and status.",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: "belfry_http_request_duration_seconds",
    help: "Time from a request's arrival to its answer, by route pattern, method and status.",
    labelNames: ["route", "method", "status"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly eventsIngested = new Counter({
    name: "belfry_events_ingested_total",
    help: "Producer events acknowledged by ingest: result created, or duplicate (a repeat of an id).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly notificationsCreated = new Counter({
    name: "belfry_notifications_created_total",
    help: "Feed rows created by this instance (from ingest and from admin operations).",
    registers: [this.registry],
  });

  readonly webhookAttempts = new Counter({
    name: "belfry_webhook_attempts_total",
    help: "Webhook delivery attempts by outcome: success (2xx), http_<class> for other statuses, or the error class (timeout, connection, dns, refused_address…).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly groupCommitSize = new Histogram({
    name: "belfry_group_commit_size",
    help: "Single writes that shared one committed transaction (group commit), by operation: ingest, mark_read.",
    labelNames: ["operation"] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });

  readonly busResyncs = new Counter({
    name: "belfry_bus_resyncs_total",
    help: "Times the change bus (re)connected and live streams and workers re-read what they may have missed.",
    registers: [this.registry],
  });

  readonly retentionDeleted = new Counter({
    name: "belfry_retention_deleted_total",
    help: "Rows deleted by retention (BELFRY_RETENTION_DAYS), by table: notifications, events, webhook_deliveries, webhook_attempts.",
    labelNames: ["table"] as const,
    registers: [this.registry],
  });

  /** Starts reading `sources` at each scrape, and collects the process and Node.js metrics. */
  observe(sources: MetricSources): void {
    collectDefaultMetrics({ register: this.registry });
    // Both queue gauges are collected at once in a scrape: they share one query.
    let inFlight: ReturnType<MetricSources["deliveryQueue"]> | undefined;
    const queue = () => {
      inFlight ??= sources.deliveryQueue().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    };
    new Gauge({
      name: "belfry_webhook_queue_depth",
      help: "Webhook deliveries pending or failed and waiting for their next attempt.",
      registers: [this.registry],
      async collect() {
        this.set((await queue()).depth);
      },
    });
    new Gauge({
      name: "belfry_webhook_oldest_due_age_seconds",
      help: "How long the most overdue webhook delivery has been due (0 when none is).",
      registers: [this.registry],
      async collect() {
        this.set((await queue()).oldestDueAgeS);
      },
    });
    new Gauge({
      name: "belfry_streams_open",
      help: "Live streams open on this instance.",
      registers: [this.registry],
      collect() {
        this.set(sources.openStreams());
      },
    });
    new Gauge({
      name: "belfry_store_pool_connections",
      help: "PostgreSQL pool connections of this instance: total, idle, and requests waiting for one.",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        const pool = sources.pool();
        if (!pool) return;
        this.set({ state: "total" }, pool.total);
        this.set({ state: "idle" }, pool.idle);
        this.set({ state: "waiting" }, pool.waiting);
      },
    });
  }
}
