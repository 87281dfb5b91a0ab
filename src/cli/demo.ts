import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { catalog, type EventType, FEED_TYPES, INGEST_TYPES } from "../catalog/catalog.js";
import type { Config } from "../config.js";
import { ApiError, forbidden, notFound } from "../errors.js";
import { type RunningServer, startServer } from "../server.js";
import { systemClockMs } from "../time.js";
import { demoPage } from "./demo-page.js";

/**
 * The event types the demo console can raise: the catalog's feed types, each through the
 * operation that raises it for real. A type without a scenario below is ingested with its sample
 * data when producers may ingest it, so a new ingestible feed type appears here by itself.
 */
export const DEMO_TYPES: readonly EventType[] = FEED_TYPES;

interface Cast {
  ada: number;
  adaKey: string;
  graceKey: string;
  org: number;
}

/**
 * `belfry demo`: Belfry on a throwaway embedded store (a temporary file, removed on exit), on
 * loopback only, with a demo user (Ada, owner of the org Acme, where Grace is an admin) and a
 * console page at `/` showing Ada's bell and buttons that raise each feed event type. The buttons
 * call `POST /demo/raise/:type`, which performs the real HTTP operations — ingest with the admin
 * token, an admin adding a member or revoking a key, Grace revoking Ada's org key with her own
 * key — so what the bell shows is exactly what production would. `belfry serve` has none of this.
 */
export async function runDemo(
  config: Config,
  print: (line: string) => void = console.log,
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), "belfry-demo-"));
  const adminToken = `bfa_${randomBytes(32).toString("base64url")}`;
  let cast: Cast | undefined;
  let app: FastifyInstance | undefined;
  let n = 0;

  /** One admin or user API call, through the full HTTP stack in-process. */
  const api = async (method: "GET" | "POST", url: string, token: string, body?: unknown) => {
    const r = await (app as FastifyInstance).inject({
      method,
      url,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { "content-type": "application/json" }),
      },
      payload: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = r.body ? JSON.parse(r.body) : undefined;
    if (r.statusCode >= 300) throw new ApiError(r.statusCode, json?.error?.type, json?.error?.message);
    return json;
  };
  const admin = (url: string, body?: unknown) => api("POST", url, adminToken, body);

  const raise = async (type: string, c: Cast) => {
    const tag = `${systemClockMs().toString(36)}-${++n}`;
    switch (type) {
      case "system.payment.received":
        return admin("/admin/v1/events", {
          id: `demo-pay-${tag}`,
          type,
          user_id: c.ada,
          data: { amount_cents: 500 * (1 + (n % 8)), balance_cents: 12_000 + 500 * n, receipt: `1${tag}` },
        });
      case "system.balance.notify.dispatched":
        return admin("/admin/v1/events", {
          id: `demo-low-${tag}`,
          type,
          user_id: c.ada,
          data: { balance_cents: 180, threshold_cents: 1000 },
        });
      case "admin.org.member.add": {
        const newcomer = await admin("/admin/v1/users", {
          email: `newcomer-${tag}@demo.belfry.dev`,
          name: "Newcomer",
        });
        return admin(`/admin/v1/orgs/${c.org}/members`, { user_id: newcomer.id, role: "member" });
      }
      case "admin.api_key.revoke": {
        const key = await admin(`/admin/v1/users/${c.ada}/keys`, { name: `laptop ${n}` });
        return admin(`/admin/v1/keys/${key.id}/revoke`);
      }
      case "org.api_key.revoke": {
        const key = await admin(`/admin/v1/orgs/${c.org}/keys`, { user_id: c.ada, name: `ci deploy ${n}` });
        return api("POST", `/api/v1/orgs/${c.org}/keys/${key.id}/revoke`, c.graceKey);
      }
      default:
        if (DEMO_TYPES.includes(type as EventType) && INGEST_TYPES.includes(type as EventType))
          return admin("/admin/v1/events", {
            id: `demo-${tag}`,
            type,
            user_id: c.ada,
            data: catalog[type as EventType].example,
          });
        throw notFound(`Unknown demo event type; one of ${DEMO_TYPES.join(", ")}.`);
    }
  };

  // Only loopback names may reach the demo's pages: the console page holds a key, and a page
  // elsewhere that rebinds its own name to 127.0.0.1 must not read it.
  const loopbackOnly = async (request: FastifyRequest) => {
    const host = (request.headers.host ?? "").replace(/:\d+$/, "");
    if (!["127.0.0.1", "localhost", "[::1]"].includes(host))
      throw forbidden("The demo answers on loopback only.");
  };

  const server = await startServer(
    {
      ...config,
      databaseUrl: `file:${join(dir, "demo.db")}`,
      host: "127.0.0.1",
      adminToken,
      webhooks: { ...config.webhooks, runWorker: false },
    },
    () => {},
    async (fastify) => {
      app = fastify;
      await fastify.register(async (scope) => {
        scope.addHook("onRequest", loopbackOnly);
        scope.get("/", async (_request, reply) => {
          if (!cast) throw notFound("The demo is still starting.");
          return reply.type("text/html; charset=utf-8").send(demoPage(cast.adaKey, DEMO_TYPES));
        });
        // The console pages notification links point to, as stubs.
        for (const path of ["/billing", "/keys", "/org/keys", "/org/members"]) {
          scope.get(path, async (_request, reply) =>
            reply
              .type("text/html; charset=utf-8")
              .send(
                `<!doctype html><title>Acme Cloud</title><p>The console's ${path} page would be here. <a href="/">Back</a></p>`,
              ),
          );
        }
        scope.post<{ Params: { type: string } }>("/demo/raise/:type", async (request) => {
          if (!cast) throw notFound("The demo is still starting.");
          const result = await raise(request.params.type, cast);
          return { type: request.params.type, result };
        });
      });
    },
  );

  const ada = await admin("/admin/v1/users", { email: "ada@demo.belfry.dev", name: "Ada Lovelace" });
  const adaKey = (await admin(`/admin/v1/users/${ada.id}/keys`, { name: "demo console" })).key;
  const grace = await admin("/admin/v1/users", { email: "grace@demo.belfry.dev", name: "Grace Hopper" });
  const graceKey = (await admin(`/admin/v1/users/${grace.id}/keys`, { name: "grace" })).key;
  const org = await admin("/admin/v1/orgs", { name: "Acme", owner_user_id: ada.id });
  cast = { ada: ada.id, adaKey, graceKey, org: org.id };
  await admin(`/admin/v1/orgs/${org.id}/members`, { user_id: grace.id, role: "admin" });
  await raise("system.payment.received", cast);

  print(`Belfry demo console: ${server.url}/`);
  print("(a throwaway embedded store, removed on exit; loopback only; Ctrl-C to stop)");
  return {
    ...server,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
