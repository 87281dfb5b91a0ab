import type { FastifyInstance } from "fastify";
import type { Deps } from "../../src/deps.js";
import { createDeps } from "../../src/deps.js";
import { type AppOptions, buildApp } from "../../src/http/app.js";
import type { StoreOptions } from "../../src/store/store.js";
import { type BackendName, openTestStore, type TestStore } from "./backends.js";

export const ADMIN_TOKEN = "test_admin_token_0123456789abcdef";

export interface Response {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are inspected field by field
  json: any;
}

export interface RequestOptions {
  /** A user key, or ADMIN_TOKEN. */
  key?: string;
  body?: unknown;
  /** A body sent as-is (with `headers` choosing its content type). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

/** The whole HTTP stack in-process on a fresh store: what every API test starts from. */
export interface Harness {
  backend: BackendName;
  store: TestStore["store"];
  /** The store's DATABASE_URL (a test may open its own connection to it). */
  url: string;
  deps: Deps;
  app: FastifyInstance;
  request(method: string, url: string, options?: RequestOptions): Promise<Response>;
  /** Creates a user with a personal key through the admin API. */
  userWithKey(name?: string): Promise<{ id: number; email: string; key: string; keyId: number }>;
  /** Ingests a payment event for `userId` and returns the 202 body. */
  pay(userId: number, id: string, data?: object, extra?: object): Promise<Response>;
  /** Ingests a low-balance event for `userId` and returns the 202 body. */
  lowBalance(userId: number, id: string, data?: object, extra?: object): Promise<Response>;
  close(): Promise<void>;
}

let counter = 0;

export async function startHarness(
  backend: BackendName,
  deps: Partial<Deps> = {},
  app: Pick<
    AppOptions,
    "pollIntervalS" | "stream" | "timeouts" | "limits" | "corsOrigins" | "bell" | "observeMetrics"
  > = {},
  storeOptions: StoreOptions = {},
): Promise<Harness> {
  const test = await openTestStore(backend, storeOptions);
  const fullDeps: Deps = createDeps(test.store, deps);
  // Suites send many requests from one address with one key; the limits have their own suite.
  const fastify = await buildApp({
    deps: fullDeps,
    adminToken: ADMIN_TOKEN,
    limits: { perCredentialPerMinute: 0, authFailuresPerMinute: 0 },
    ...app,
  });
  const request: Harness["request"] = async (method, url, { key, body, raw, headers = {} } = {}) => {
    const h: Record<string, string> = { ...headers };
    if (key !== undefined) h.authorization = `Bearer ${key}`;
    let payload: string | Buffer | undefined = raw;
    if (payload === undefined && body !== undefined) {
      payload = JSON.stringify(body);
      h["content-type"] ??= "application/json";
    }
    const r = await fastify.inject({ method: method as "GET", url, headers: h, payload });
    let json: unknown;
    try {
      json = r.body ? JSON.parse(r.body) : undefined;
    } catch {
      json = undefined;
    }
    return { status: r.statusCode, headers: r.headers, text: r.body, json };
  };
  const ingest = (type: string, userId: number, id: string, data: object, extra: object) =>
    request("POST", "/admin/v1/events", {
      key: ADMIN_TOKEN,
      body: { id, type, user_id: userId, data, ...extra },
    });
  const harness: Harness = {
    backend,
    store: test.store,
    url: test.url,
    deps: fullDeps,
    app: fastify,
    request,
    async userWithKey(name = "user") {
      const tag = `${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
      const u = await request("POST", "/admin/v1/users", {
        key: ADMIN_TOKEN,
        body: { email: `${name}-${tag}@example.com`, name },
      });
      if (u.status !== 201) throw new Error(`create user: ${u.status} ${u.text}`);
      const k = await request("POST", `/admin/v1/users/${u.json.id}/keys`, {
        key: ADMIN_TOKEN,
        body: { name: "main" },
      });
      if (k.status !== 201) throw new Error(`create key: ${k.status} ${k.text}`);
      return { id: u.json.id, email: u.json.email, key: k.json.key, keyId: k.json.id };
    },
    pay: (userId, id, data = { amount_cents: 2500, balance_cents: 3140 }, extra = {}) =>
      ingest("system.payment.received", userId, id, data, extra),
    lowBalance: (userId, id, data = { balance_cents: 420, threshold_cents: 1000 }, extra = {}) =>
      ingest("system.balance.notify.dispatched", userId, id, data, extra),
    async close() {
      await fastify.close();
      await test.drop();
    },
  };
  return harness;
}

/** True when `r` is the error envelope with this status and type. */
export function isEnvelope(r: Response, status: number, type: string): boolean {
  return (
    r.status === status &&
    r.json?.error?.type === type &&
    typeof r.json.error.message === "string" &&
    Object.keys(r.json).length === 1
  );
}
