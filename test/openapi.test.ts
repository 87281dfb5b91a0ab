import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { FastifyInstance, RouteOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalog, EVENT_TYPES, FEED_TYPES, INGEST_TYPES, renderExample } from "../src/catalog/catalog.js";
import { createDeps } from "../src/deps.js";
import { ERROR_TYPE_OF_STATUS, type ErrorStatus } from "../src/errors.js";
import { buildApp } from "../src/http/app.js";
import { validator } from "../src/validation.js";
import { VERSION } from "../src/version.js";
import { BACKENDS, openTestStore, type TestStore } from "./support/backends.js";

// biome-ignore lint/suspicious/noExplicitAny: the document is inspected field by field
type Json = any;

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/** The only routes allowed to stay out of the document: the documentation itself and `/`. */
const DOC_ROUTES = /^\/(?:$|openapi\.json$|docs(?:\/|$))/;
const ADMIN = "test_admin_token_0123456789abcdef";

describe.each(BACKENDS)("OpenAPI document on %s", (backend) => {
  let test: TestStore;
  let app: FastifyInstance;
  let doc: Json;
  const routes: RouteOptions[] = [];
  const get = (url: string, headers: Record<string, string> = {}) =>
    app.inject({ method: "GET", url, headers });

  /** Every operation of the document, with its path and method. */
  const operations = () =>
    Object.entries(doc.paths as Record<string, Record<string, Json>>).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, op]) => ({ path, method, op })),
    );
  const operation = (id: string) => {
    const found = operations().find((o) => o.op.operationId === id);
    if (!found) throw new Error(`no operation ${id}`);
    return found.op;
  };
  /** Follows a local `$ref` in the document. */
  const deref = (schema: Json): Json =>
    schema?.$ref
      ? schema.$ref
          .slice(2)
          .split("/")
          .reduce((node: Json, part: string) => node[part], doc)
      : schema;
  const jsonSchema = (response: Json) => deref(response.content["application/json"].schema);

  beforeAll(async () => {
    test = await openTestStore(backend);
    app = await buildApp({
      deps: createDeps(test.store),
      adminToken: ADMIN,
      onRoute: (route) => routes.push(route),
    });
    const r = await get("/openapi.json");
    expect(r.statusCode).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    doc = r.json();
  });
  afterAll(async () => {
    await app.close();
    await test.drop();
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    const result = await new Validator().validate(doc);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toMatchObject({ title: "Belfry", version: VERSION });
    expect(doc.servers).toEqual([{ url: "/", description: expect.any(String) }]);
    const schemes = doc.components.securitySchemes;
    for (const name of ["userKey", "sessionToken", "adminToken"]) {
      expect(schemes[name]).toMatchObject({ type: "http", scheme: "bearer" });
    }
  });

  it("documents every route Fastify registered, with every method, and nothing else", () => {
    const registered = new Set<string>();
    for (const route of routes) {
      const hidden = (route.schema as { hide?: boolean } | undefined)?.hide === true;
      if (hidden) {
        // Hiding is for the documentation's own routes only, so an API route cannot dodge this.
        expect(route.url, "a hidden route").toMatch(DOC_ROUTES);
        continue;
      }
      const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) =>
        m.toLowerCase(),
      );
      const path = route.url.replace(/:(\w+)/g, "{$1}");
      for (const method of methods) {
        // Fastify adds HEAD for every GET; it answers as the GET does, without a body.
        if (method === "head" && routes.some((r) => r.url === route.url && r.method === "GET")) continue;
        registered.add(`${method} ${path}`);
      }
    }
    const documented = new Set(operations().map(({ method, path }) => `${method} ${path}`));
    expect([...documented].sort()).toEqual([...registered].sort());
    expect(registered.size).toBeGreaterThanOrEqual(32);
  });

  it("gives every operation its id, words, tag, security, success answer and the envelope on each error", () => {
    const ids = new Set<string>();
    const tags = new Set((doc.tags as { name: string }[]).map((t) => t.name));
    for (const { path, method, op } of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/);
      expect(ids.has(op.operationId), `${where}: operationId repeated`).toBe(false);
      ids.add(op.operationId);
      expect(op.summary, where).toEqual(expect.any(String));
      expect(op.description, where).toEqual(expect.any(String));
      expect(op.tags, where).toHaveLength(1);
      expect(tags.has(op.tags[0]), `${where}: tag ${op.tags[0]} declared`).toBe(true);
      expect(Array.isArray(op.security), where).toBe(true);
      const statuses = Object.keys(op.responses);
      expect(
        statuses.filter((s) => /^2\d\d$/.test(s)),
        where,
      ).toHaveLength(1);
      expect(statuses, where).toContain("500");
      expect(statuses.includes("401"), `${where} answers 401 iff it needs credentials`).toBe(
        op.security.length > 0,
      );
      // Every route but the two that never touch the store can find it unreachable.
      if (path !== "/healthz" && path !== "/bell.js") expect(statuses, where).toContain("503");
      if (op.requestBody || ["post", "put", "patch", "delete"].includes(method)) {
        expect(statuses, `${where} takes a body: 413`).toContain("413");
      }
      if (path.includes("{"))
        expect(statuses, `${where} has an id: 404 or 403`).toEqual(expect.arrayContaining(["404"]));
      for (const status of statuses.filter((s) => Number(s) >= 400)) {
        const response = op.responses[status];
        expect(response.description, `${where} ${status}`).toEqual(expect.any(String));
        expect(response.headers?.["X-Request-Id"], `${where} ${status}`).toBeDefined();
        const envelope = jsonSchema(response);
        expect(envelope.required, `${where} ${status}`).toEqual(["error"]);
        expect(envelope.properties.error.required).toEqual(["type", "message"]);
        expect(envelope.properties.error.properties.message.type).toBe("string");
        expect(envelope.properties.error.properties.type.enum, `${where} ${status}`).toEqual([
          ERROR_TYPE_OF_STATUS[Number(status) as ErrorStatus],
        ]);
      }
      if (statuses.includes("503")) expect(op.responses["503"].headers["Retry-After"], where).toBeDefined();
      const successStatus = statuses.find((s) => /^2/.test(s)) as string;
      expect(op.responses[successStatus].headers["X-Request-Id"], where).toBeDefined();
      if (successStatus !== "204") expect(op.responses[successStatus].content, where).toBeDefined();
    }
  });

  it("takes its type enums from the event catalog", () => {
    const list = operation("listNotifications");
    const param = (op: Json, name: string) => op.parameters.find((p: Json) => p.name === name);
    expect(param(list, "type").schema.enum).toEqual(FEED_TYPES);
    expect(jsonSchema(list.responses[200]).properties.items.items.properties.type.enum).toEqual(FEED_TYPES);
    expect(jsonSchema(operation("markNotificationRead").responses[200]).properties.type.enum).toEqual(
      FEED_TYPES,
    );
    const settings = operation("putNotificationSettings");
    expect(settings.requestBody.content["application/json"].schema.properties.muted_types.items.enum).toEqual(
      FEED_TYPES,
    );
    expect(jsonSchema(settings.responses[200]).properties.muted_types.items.enum).toEqual(FEED_TYPES);
    const ingest = operation("ingestEvent").requestBody.content["application/json"].schema;
    expect(ingest.properties.type.enum).toEqual(INGEST_TYPES);
    for (const id of ["createWebhookEndpoint", "updateWebhookEndpoint"]) {
      const body = operation(id).requestBody.content["application/json"].schema;
      expect(body.properties.event_types.anyOf[0].items.enum, id).toEqual(EVENT_TYPES);
    }
    const endpoint = jsonSchema(operation("getWebhookEndpoint").responses[200]);
    expect(endpoint.properties.event_types.anyOf[0].items.enum).toEqual(EVENT_TYPES);
    const deliveries = jsonSchema(operation("listWebhookDeliveries").responses[200]);
    expect(deliveries.properties.items.items.properties.event_type.enum).toEqual(EVENT_TYPES);
    expect(Object.keys(doc.webhooks)).toEqual(EVENT_TYPES);
  });

  it("shows notification examples the catalog rendered from its sample data", () => {
    for (const type of EVENT_TYPES) {
      expect(validator(catalog[type].data).problem(catalog[type].example), type).toBeUndefined();
      expect(doc.components.schemas[type].examples, type).toEqual([catalog[type].example]);
    }
    const item = jsonSchema(operation("listNotifications").responses[200]).properties.items.items;
    expect(item.examples.map((e: Json) => e.type)).toEqual(FEED_TYPES);
    for (const example of item.examples) {
      const { title, body, link } = example;
      expect({ title, body, link }).toEqual(renderExample(example.type));
    }
    const page = operation("listNotifications").responses[200].content["application/json"];
    expect(page.example.items[0]).toEqual(item.examples[0]);
  });

  it("documents the polling headers, 304 and the stream", () => {
    for (const id of ["listNotifications", "getUnreadCount"]) {
      const op = operation(id);
      for (const status of ["200", "304"]) {
        expect(Object.keys(op.responses[status].headers).sort(), `${id} ${status}`).toEqual(
          [
            "Cache-Control",
            "ETag",
            "X-Feed-Version",
            "X-Poll-Interval",
            "X-Request-Id",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
          ].sort(),
        );
      }
      expect(op.responses[304].content, id).toBeUndefined();
      expect(
        op.parameters.some((p: Json) => p.in === "header" && p.name === "If-None-Match"),
        id,
      ).toBe(true);
    }
    const stream = operation("streamNotifications");
    expect(Object.keys(stream.responses[200].content)).toEqual(["text/event-stream"]);
    expect(stream.parameters.map((p: Json) => `${p.in} ${p.name}`).sort()).toEqual(
      ["header Last-Event-ID", "query last_event_id", "query ticket"].sort(),
    );
    for (const event of ["unread-count", "notification", "read", "reset", "heartbeat"]) {
      expect(stream.description).toContain(event);
    }
    expect(stream.security).toEqual([{ userKey: [] }, { sessionToken: [] }, {}]);
    for (const id of [
      "listNotifications",
      "markAllNotificationsRead",
      "putNotificationSettings",
      "createStreamTicket",
    ]) {
      expect(operation(id).security, id).toEqual([{ userKey: [] }, { sessionToken: [] }]);
    }
    expect(operation("createWebhookEndpoint").security).toEqual([{ userKey: [] }]);
    expect(operation("ingestEvent").security).toEqual([{ adminToken: [] }]);
  });

  it("serves /docs as a page whose assets are all local and load", async () => {
    const page = await get("/docs");
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    const urls = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(urls.length).toBeGreaterThanOrEqual(4);
    for (const url of urls) {
      expect(url, "no asset from another host").not.toMatch(/^(?:[a-z]+:)?\/\//i);
      const asset = await get(new URL(url, "http://belfry.test/docs").pathname);
      expect(asset.statusCode, url).toBe(200);
      if (url.endsWith(".css")) expect(asset.body, url).not.toMatch(/url\(\s*["']?(?:https?:)?\/\//i);
      if (url.endsWith("swagger-initializer.js")) {
        expect(asset.body).toContain("validatorUrl: null"); // no badge fetched from a public validator
        expect(asset.body).toContain("resolveUrl('./json')");
      }
    }
    const json = await get("/docs/json");
    expect(json.json()).toEqual(doc);
  });

  it("needs no credentials for the documentation and keeps the envelope under it", async () => {
    for (const url of ["/openapi.json", "/docs", "/docs/json"]) {
      expect((await get(url, { authorization: "Bearer wrong" })).statusCode, url).toBe(200);
    }
    for (const url of [
      "/docs/nope",
      "/docs/static/nope.js",
      "/openapi.json/x",
      "/docs/static/../../package.json",
    ]) {
      const r = await get(url);
      expect(r.statusCode, url).toBe(404);
      expect(r.json(), url).toEqual({ error: { type: "not_found_error", message: expect.any(String) } });
    }
  });

  it("sends a browser at / to the docs, and tells an API client where they are", async () => {
    const browser = await get("/", { accept: "text/html,application/xhtml+xml,*/*;q=0.8" });
    expect(browser.statusCode).toBe(302);
    expect(browser.headers.location).toBe("/docs");
    const client = await get("/");
    expect(client.statusCode).toBe(404);
    expect(client.json().error.type).toBe("not_found_error");
    expect(client.json().error.message).toContain("/docs");
  });

  it("validates bodies with the domain's messages, after a path id that cannot name anything", async () => {
    const admin = (method: "POST" | "PATCH", url: string, body: unknown) =>
      app.inject({ method, url, headers: { authorization: `Bearer ${ADMIN}` }, payload: body as object });
    const user = await admin("POST", "/admin/v1/users", { email: `openapi-${backend}@example.com` });
    expect(user.statusCode).toBe(201);
    const cases: [string, unknown, number, string][] = [
      [`/admin/v1/users/${user.json().id}`, { bogus: 1 }, 400, "bogus is not a known field"],
      [
        `/admin/v1/users/${user.json().id}`,
        { name: 5 },
        400,
        "name must be a string of at most 200 characters, or null",
      ],
      ["/admin/v1/users/abc", { bogus: 1 }, 404, "No user with that id."],
      ["/admin/v1/users/999999", { bogus: 1 }, 400, "bogus is not a known field"],
      ["/admin/v1/users/999999", { name: "x" }, 404, "No user with id 999999."],
    ];
    for (const [url, body, status, message] of cases) {
      const r = await admin("PATCH", url, body);
      expect([r.statusCode, r.json().error.message], `${url} ${JSON.stringify(body)}`).toEqual([
        status,
        message,
      ]);
    }
  });

  it("is what `belfry openapi` prints, without a server or a database", () => {
    const main = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
    const printed = execFileSync(process.execPath, [main, "openapi"], {
      encoding: "utf8",
      env: { ...process.env, DATABASE_URL: "postgres://nowhere.invalid/none" },
    });
    expect(JSON.parse(printed)).toEqual(doc);
  });
});
