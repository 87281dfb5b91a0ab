import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, expect } from "vitest";
import type { WebhookConfig } from "../../src/config.js";
import { type DeliveryWorker, startDeliveryWorker } from "../../src/delivery/worker.js";
import type { Resolve } from "../../src/network/address-policy.js";
import type { BackendName } from "./backends.js";
import { type Harness, startHarness } from "./harness.js";
import { type Receiver, startReceiver, testWebhooks, waitFor } from "./receiver.js";

/** package.json's version, read here rather than through src/version.ts. */
export const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Everything a worker logged; a test ends by expecting it empty. */
export interface CollectingLog {
  entries: { level: "warn" | "error"; msg: string; obj: object }[];
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export function collectingLog(): CollectingLog {
  const entries: CollectingLog["entries"] = [];
  return {
    entries,
    warn: (obj, msg) => entries.push({ level: "warn", msg, obj }),
    error: (obj, msg) => entries.push({ level: "error", msg, obj }),
  };
}

/** A harness, a receiver and (unless asked otherwise) a running delivery worker. */
export interface DeliveryRig {
  h: Harness;
  receiver: Receiver;
  log: CollectingLog;
  workers: DeliveryWorker[];
  /** Another receiver, closed with the rig. */
  anotherReceiver(): Promise<Receiver>;
  close(): Promise<void>;
}

export interface RigOptions {
  /** The harness's resolver (the system one by default). */
  resolve?: Resolve;
  /** How many workers to start on the harness's deps (default 1). */
  workers?: number;
}

export async function startRig(
  backend: BackendName,
  webhooks: Partial<WebhookConfig> = {},
  { resolve, workers = 1 }: RigOptions = {},
): Promise<DeliveryRig> {
  const h = await startHarness(backend, { webhooks: testWebhooks(webhooks), ...(resolve && { resolve }) });
  const receiver = await startReceiver();
  const log = collectingLog();
  const others: Receiver[] = [];
  const rig: DeliveryRig = {
    h,
    receiver,
    log,
    workers: Array.from({ length: workers }, () => startDeliveryWorker(h.deps, log)),
    async anotherReceiver() {
      const r = await startReceiver();
      others.push(r);
      return r;
    },
    async close() {
      // Workers first: they record their last attempts in the store the harness then drops.
      await Promise.all(rig.workers.map((w) => w.stop()));
      await Promise.all([receiver, ...others].map((r) => r.close()));
      await h.close();
    },
  };
  return rig;
}

/**
 * A rig factory for one backend whose rigs are closed after each test, which also fails when a
 * worker logged anything. Call it inside a `describe`.
 */
export function rigsFor(backend: BackendName) {
  const open: DeliveryRig[] = [];
  afterEach(async () => {
    const rigs = open.splice(0);
    await Promise.all(rigs.map((r) => r.close()));
    for (const r of rigs) expect(r.log.entries, JSON.stringify(r.log.entries)).toEqual([]);
  });
  return async (webhooks: Partial<WebhookConfig> = {}, options: RigOptions = {}) => {
    const rig = await startRig(backend, webhooks, options);
    open.push(rig);
    return rig;
  };
}

export interface User {
  id: number;
  key: string;
  email: string;
}

export interface Endpoint {
  id: number;
  url: string;
  secret: string;
}

/** Creates an endpoint for `user`, expecting a 201. */
export async function addEndpoint(
  h: Harness,
  user: User,
  url: string,
  extra: object = {},
): Promise<Endpoint> {
  const r = await h.request("POST", "/api/v1/me/webhooks", { key: user.key, body: { url, ...extra } });
  if (r.status !== 201) throw new Error(`create endpoint: ${r.status} ${r.text}`);
  return r.json;
}

/** An attempt as `GET …/deliveries` shows it. */
export interface Attempt {
  number: number;
  attempted_at: string;
  response_status: number | null;
  response_body: string | null;
  latency_ms: number;
  error_class: string | null;
}

export interface Delivery {
  id: number;
  event_id: string;
  event_type: string;
  status: string;
  next_attempt_at: string | null;
  created_at: string;
  attempts: Attempt[];
}

/** The endpoint's deliveries, newest first. */
export async function deliveriesOf(h: Harness, user: User, endpointId: number): Promise<Delivery[]> {
  const r = await h.request("GET", `/api/v1/me/webhooks/${endpointId}/deliveries?page_size=200`, {
    key: user.key,
  });
  if (r.status !== 200) throw new Error(`list deliveries: ${r.status} ${r.text}`);
  return r.json.items;
}

/** Waits until the endpoint's deliveries satisfy `done`, and returns them. */
export function waitForDeliveries(
  h: Harness,
  user: User,
  endpointId: number,
  done: (ds: Delivery[]) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<Delivery[]> {
  return waitFor(
    async () => {
      const ds = await deliveriesOf(h, user, endpointId);
      return done(ds) ? ds : undefined;
    },
    timeoutMs,
    what,
  );
}

/** True when every delivery is in `status` and there are `count` of them. */
export const allIn =
  (status: string, count = 1) =>
  (ds: Delivery[]): boolean =>
    ds.length === count && ds.every((d) => d.status === status);

/** Gives a worker polling every 50 ms time to do something it should not. */
export const quietPeriod = (ms = 400) => sleep(ms);
