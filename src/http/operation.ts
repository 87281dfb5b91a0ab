import type { FastifySchema } from "fastify";
import { type TObject, type TSchema, Type } from "typebox";
import type { ErrorStatus } from "../errors.js";
import { errorSchemaRef } from "./error-schemas.js";

/** The document's tags, in the order the reference shows them. */
export const TAGS = {
  Notifications: "The user's feed: list, unread count, mark read (behind the console's bell).",
  Settings: "The user's feed settings: muted types.",
  Stream: "Live updates over Server-Sent Events, and the tickets browsers open them with.",
  Webhooks: "The user's webhook endpoints and their delivery log.",
  Orgs: "What org owners and admins do with their own key.",
  Users: "Platform side: users and their personal keys (admin token).",
  "Org administration": "Platform side: orgs, members and org keys (admin token).",
  Events: "Platform side: producers ingest events (admin token).",
  Health: "Liveness and readiness, without authentication.",
  Bell: "The <belfry-bell> web component, served for pages to embed.",
} as const;
export type Tag = keyof typeof TAGS;

/**
 * Who may call an operation, as OpenAPI security requirements (alternatives). `stream` also takes
 * a `ticket` query parameter instead of a header, hence its empty alternative.
 */
export type Auth = "none" | "key" | "keyOrSession" | "stream" | "admin";
const SECURITY: Record<Auth, Record<string, string[]>[]> = {
  none: [],
  key: [{ userKey: [] }],
  keyOrSession: [{ userKey: [] }, { sessionToken: [] }],
  stream: [{ userKey: [] }, { sessionToken: [] }, {}],
  admin: [{ adminToken: [] }],
};

const UNAUTHENTICATED: Record<Exclude<Auth, "none">, string> = {
  key: "The API key is missing, malformed, unknown or revoked.",
  keyOrSession: "The API key or session token is missing, malformed, unknown, expired or revoked.",
  stream: "No valid key or session token, or the ticket is unknown, used or expired.",
  admin: "The admin token is missing or wrong (a user key is refused too).",
};

/** Response headers, by name. */
export type Headers = Record<string, TSchema>;

/** Every answer carries the request's id, also in the logs. */
const REQUEST_ID: Headers = {
  "X-Request-Id": Type.String({ description: "This request's id (req_…), as it appears in the logs." }),
};

export interface OperationSpec {
  operationId: string;
  summary: string;
  description: string;
  tag: Tag;
  auth: Auth;
  params?: TObject;
  querystring?: TObject;
  headers?: TObject;
  /** The JSON body, or "none" for a route that takes none (send nothing, or `{}`). */
  body?: TSchema | "none";
  /** The body may be left out altogether (it then reads as `{}`). */
  bodyOptional?: boolean;
  /** The success answer; `schema: null` for one without a body. `contentType` defaults to JSON. */
  success: {
    status: 200 | 201 | 202 | 204;
    description: string;
    schema: TSchema | null;
    contentType?: string;
    headers?: Headers;
  };
  /** When set, the operation answers 304 with these headers to an `If-None-Match` that matches. */
  notModified?: Headers;
  /** The route's own error answers and why; the common ones are added (see {@link operation}). */
  errors?: Partial<Record<ErrorStatus, string>>;
  /** false: never touches the store, so never a 503. */
  store?: boolean;
}

/**
 * A route's full Fastify schema, from which requests are validated, answers serialized and the
 * OpenAPI document generated. Beside the route's own errors it lists those every route of its
 * kind can answer: 400 (a malformed URL; a body that is not JSON or fails its schema), 401 with
 * authentication, 413 with a body, 503 with the store, and 500.
 */
export function operation(spec: OperationSpec): FastifySchema {
  const { 400: invalid, 413: tooLarge, ...own } = spec.errors ?? {};
  const bodyRule =
    spec.body === "none"
      ? "A body other than nothing or {}."
      : spec.body
        ? "A body that is not JSON sent as application/json, or that does not match the schema (the message names the field)."
        : undefined;
  // Integer-like keys keep numeric order: the success status, 304, then the errors.
  const limited = spec.auth === "key" || spec.auth === "keyOrSession" || spec.auth === "stream";
  const { 429: ownLimit, ...rest } = own;
  const errors: Partial<Record<ErrorStatus, string>> = {
    400: join(invalid, bodyRule, "A malformed URL."),
    ...(spec.auth !== "none" && { 401: UNAUTHENTICATED[spec.auth] }),
    ...(spec.auth === "key" && { 403: "A browser session token: this route takes an API key." }),
    ...rest,
    ...(spec.body && { 413: tooLarge ?? "The body is larger than 1 MiB (refused before authentication)." }),
    ...(limited && { 429: join(RATE_LIMITED, ownLimit) }),
    500: "A bug: the answer says nothing more; the log has the details.",
    ...(spec.store !== false && {
      503: "The store (or the shared rate limiter) is unreachable; retry after Retry-After.",
    }),
  };
  const response: Record<string, unknown> = {
    [spec.success.status]: successResponse(spec.success, limited),
  };
  if (spec.notModified) {
    response[304] = {
      type: "null",
      description: "Not modified: the If-None-Match ETag is still current. No body.",
      headers: { ...spec.notModified, ...(limited && RATE_LIMIT_HEADERS), ...REQUEST_ID },
    };
  }
  const common = limited ? { ...RATE_LIMIT_HEADERS, ...REQUEST_ID } : REQUEST_ID;
  for (const [status, description] of Object.entries(errors)) {
    response[status] = {
      ...errorSchemaRef(Number(status) as ErrorStatus),
      description,
      headers: status === "503" || status === "429" ? { ...RETRY_AFTER, ...common } : common,
    };
  }
  const schema: FastifySchema & Record<string, unknown> = {
    operationId: spec.operationId,
    summary: spec.summary,
    description: spec.description,
    tags: [spec.tag],
    security: SECURITY[spec.auth],
    response,
  };
  if (spec.params) schema.params = spec.params;
  if (spec.querystring) schema.querystring = spec.querystring;
  if (spec.headers) schema.headers = spec.headers;
  if (spec.body && spec.body !== "none")
    schema.body = spec.bodyOptional ? { ...spec.body, [OPTIONAL_BODY]: true } : spec.body;
  return schema;
}

/** Marks a body schema whose body may be left out (the validator lets nothing through; the docs say so). */
export const OPTIONAL_BODY = "optionalBody";

const RATE_LIMITED =
  "Over the credential's request budget (600 a minute by default), or too many failed authentications from this address this minute; retry after Retry-After.";

/** Every `/api/v1/*` answer says where the caller stands against its budget. */
const RATE_LIMIT_HEADERS: Headers = {
  "RateLimit-Limit": Type.Integer({
    description: "Requests this credential may make in the current window.",
  }),
  "RateLimit-Remaining": Type.Integer({ description: "Requests left in the current window." }),
  "RateLimit-Reset": Type.Integer({ description: "Seconds until the window resets." }),
};

const RETRY_AFTER: Headers = {
  "Retry-After": Type.Integer({ description: "Seconds to wait before retrying." }),
};

function successResponse(success: OperationSpec["success"], limited: boolean) {
  const headers = { ...success.headers, ...(limited && RATE_LIMIT_HEADERS), ...REQUEST_ID };
  if (success.schema === null) return { type: "null", description: success.description, headers };
  if (success.contentType) {
    return {
      description: success.description,
      headers,
      content: { [success.contentType]: { schema: success.schema } },
    };
  }
  return { ...success.schema, description: success.description, headers };
}

const join = (...parts: (string | undefined)[]) => parts.filter(Boolean).join(" ") || undefined;
