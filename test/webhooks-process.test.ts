import { spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { CLI, call, spawnServer } from "./support/process.js";
import { startReceiver, waitFor } from "./support/receiver.js";

const ADMIN = "webhook_process_admin_token_0123456789";
const webhookEnv = {
  BELFRY_ADMIN_TOKEN: ADMIN,
  BELFRY_WEBHOOK_ALLOW_HTTP: "true",
  BELFRY_WEBHOOK_ALLOW_NETWORKS: "127.0.0.0/8,::1/128",
  BELFRY_WEBHOOK_POLL_MS: "100",
};

async function userWithEndpoint(url: string, receiverUrl: string) {
  const user = (await call(url, "POST", "/admin/v1/users", ADMIN, { email: `p${Date.now()}@example.com` }))
    .json;
  const key = (await call(url, "POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" })).json
    .key as string;
  const endpoint = (await call(url, "POST", "/api/v1/me/webhooks", key, { url: receiverUrl })).json;
  return { user, key, endpoint };
}

describe.each(BACKENDS)("webhook delivery across processes on %s", (backend) => {
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const drop of drops) await drop();
  });
  const database = async () => {
    const db = await freshDatabase(backend);
    drops.push(db.drop);
    return db.url;
  };

  it("completes a delivery after kill -9 between attempts, with exactly one success", async () => {
    const receiver = await startReceiver();
    receiver.replies.push({ status: 500 });
    const env = { ...webhookEnv, DATABASE_URL: await database(), BELFRY_WEBHOOK_RETRY_SCHEDULE: "0,3,3" };
    const first = await spawnServer(env);
    try {
      const { user, key, endpoint } = await userWithEndpoint(first.url, receiver.url);
      const pay = {
        id: "k9-wh",
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 1, balance_cents: 1 },
      };
      expect((await call(first.url, "POST", "/admin/v1/events", ADMIN, pay)).status).toBe(202);
      const deliveries = `/api/v1/me/webhooks/${endpoint.id}/deliveries`;
      await waitFor(
        async () => (await call(first.url, "GET", deliveries, key)).json.items[0]?.status === "failed",
      );
      await first.kill9();

      const second = await spawnServer(env);
      try {
        const done = await waitFor(async () => {
          const item = (await call(second.url, "GET", deliveries, key)).json.items[0];
          return item?.status === "succeeded" ? item : undefined;
        });
        expect(done.attempts.map((a: { response_status: number }) => a.response_status)).toEqual([500, 204]);
        expect(receiver.received).toHaveLength(2);
        expect(new Set(receiver.received.map((r) => r.headers["webhook-id"])).size).toBe(1);
      } finally {
        await second.kill9();
      }
    } finally {
      await first.kill9();
      await receiver.close();
    }
  });
});

describe.runIf(BACKENDS.includes("postgres"))("two worker processes on one PostgreSQL", () => {
  it("deliver 1,000 events, every one exactly once", async () => {
    const db = await freshDatabase("postgres");
    const receiver = await startReceiver();
    const env = { ...webhookEnv, DATABASE_URL: db.url, BELFRY_WEBHOOK_WORKER: "false" };
    const api = await spawnServer(env);
    const workers = [0, 1].map(() =>
      spawn(process.execPath, [CLI, "worker"], {
        env: { ...process.env, ...env, BELFRY_WEBHOOK_WORKER: "true", BELFRY_LOG_LEVEL: "warn" },
        stdio: "ignore",
      }),
    );
    try {
      const { user } = await userWithEndpoint(api.url, receiver.url);
      const ids = Array.from({ length: 1000 }, (_, i) => `two-${i}`);
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(
          ids.slice(i, i + 50).map(async (id) => {
            const body = {
              id,
              type: "system.payment.received",
              user_id: user.id,
              data: { amount_cents: 1, balance_cents: 1 },
            };
            expect((await call(api.url, "POST", "/admin/v1/events", ADMIN, body)).status).toBe(202);
          }),
        );
      }
      await waitFor(() => receiver.received.length >= 1000, 60_000, "1,000 deliveries");
      await new Promise((r) => setTimeout(r, 500)); // time for any duplicate to show up
      const byEvent = new Map<string, number>();
      for (const r of receiver.received) {
        const id = String(r.headers["webhook-id"]);
        byEvent.set(id, (byEvent.get(id) ?? 0) + 1);
      }
      expect(receiver.received).toHaveLength(1000);
      expect(byEvent.size).toBe(1000);
    } finally {
      for (const w of workers) w.kill("SIGKILL");
      await api.kill9();
      await receiver.close();
      await db.drop();
    }
  }, 120_000);
});
