/**
 * `belfry/admin`: the platform side — users, keys, orgs, sessions and event ingest — behind the
 * admin token. For your backend only: never ship the admin token to a browser.
 *
 * @example
 * import { BelfryAdmin } from "belfry/admin";
 * const admin = new BelfryAdmin({ baseUrl: "https://belfry.example.com", token: process.env.BELFRY_ADMIN_TOKEN });
 * await admin.events.ingest({ id: "pay_001", type: "system.payment.received", user_id: 1,
 *   data: { amount_cents: 2500, balance_cents: 3140 } });
 */
import { type ClientOptions, HttpCore, type RequestSpec } from "./http.js";
import { ingestMany } from "./ingest-many.js";
import type { RequestOptions } from "./notifications-api.js";
import type {
  AddMember,
  ApiKey,
  ChangeRole,
  CreateKey,
  CreateOrg,
  CreateOrgKey,
  CreateSession,
  CreateUser,
  IngestEvent,
  IngestItemResult,
  IngestResult,
  Membership,
  NewApiKey,
  Org,
  SessionToken,
  UpdateUser,
  User,
} from "./types.js";

export {
  ApiError,
  AuthenticationError,
  BelfryError,
  ConflictError,
  ConnectionError,
  InvalidRequestError,
  NotFoundError,
  PermissionError,
  RateLimitError,
  TimeoutError,
  UnavailableError,
} from "./errors.js";
export type { ClientOptions } from "./http.js";
export { BATCH_SIZE, IngestManyError } from "./ingest-many.js";
export type { RequestOptions } from "./notifications-api.js";
export type * from "./types.js";

const id = (value: number) => encodeURIComponent(String(value));

/**
 * The admin client. Creates (users, keys, orgs, members, org keys, sessions) are retried only
 * when the request certainly never reached Belfry; updates, revokes, removals and ingest are
 * safe to repeat and retried on any transient failure.
 *
 * @example
 * const admin = new BelfryAdmin({ baseUrl: "http://127.0.0.1:8080", token: "bfa_…" });
 * const user = await admin.users.create({ email: "ada@example.com", name: "Ada" });
 * const { key } = await admin.keys.create(user.id, { name: "laptop" });
 */
export class BelfryAdmin {
  readonly #core: HttpCore;

  constructor(options: ClientOptions) {
    this.#core = new HttpCore(options);
  }

  async #call<T>(spec: Omit<RequestSpec, "signal">, options: RequestOptions = {}): Promise<T> {
    return (await this.#core.request<T>({ ...spec, signal: options.signal })).data;
  }

  readonly users = {
    /**
     * Creates a user (a duplicate email is a ConflictError).
     *
     * @example
     * const user = await admin.users.create({ email: "ada@example.com", name: "Ada" });
     */
    create: (user: CreateUser, options?: RequestOptions): Promise<User> =>
      this.#call({ method: "POST", path: "/admin/v1/users", body: user, retry: "unsent" }, options),
    /**
     * Changes a user's email or name (`name: null` clears it).
     *
     * @example
     * await admin.users.update(1, { name: "Ada Lovelace" });
     */
    update: (userId: number, changes: UpdateUser, options?: RequestOptions): Promise<User> =>
      this.#call(
        { method: "PATCH", path: `/admin/v1/users/${id(userId)}`, body: changes, retry: "safe" },
        options,
      ),
  };

  readonly keys = {
    /**
     * Creates a personal API key; its secret `key` is in this answer only.
     *
     * @example
     * const { key, prefix } = await admin.keys.create(1, { name: "laptop" });
     */
    create: (userId: number, key: CreateKey, options?: RequestOptions): Promise<NewApiKey> =>
      this.#call(
        { method: "POST", path: `/admin/v1/users/${id(userId)}/keys`, body: key, retry: "unsent" },
        options,
      ),
    /**
     * Revokes any key (personal or org). Idempotent: a repeat returns the same `revoked_at`.
     *
     * @example
     * const { revoked_at } = await admin.keys.revoke(12);
     */
    revoke: (keyId: number, options?: RequestOptions): Promise<ApiKey> =>
      this.#call({ method: "POST", path: `/admin/v1/keys/${id(keyId)}/revoke`, retry: "safe" }, options),
  };

  readonly orgs = {
    /**
     * Creates an org with its first owner.
     *
     * @example
     * const org = await admin.orgs.create({ name: "Acme", owner_user_id: 1 });
     */
    create: (org: CreateOrg, options?: RequestOptions): Promise<Org> =>
      this.#call({ method: "POST", path: "/admin/v1/orgs", body: org, retry: "unsent" }, options),
  };

  readonly members = {
    /**
     * Adds a member (`admin` or `member`); already a member is a ConflictError.
     *
     * @example
     * await admin.members.add(org.id, { user_id: 2, role: "admin" });
     */
    add: (orgId: number, member: AddMember, options?: RequestOptions): Promise<Membership> =>
      this.#call(
        { method: "POST", path: `/admin/v1/orgs/${id(orgId)}/members`, body: member, retry: "unsent" },
        options,
      ),
    /**
     * Changes a member's role (the org's last owner cannot be demoted: ConflictError).
     *
     * @example
     * await admin.members.changeRole(org.id, 2, { role: "owner" });
     */
    changeRole: (
      orgId: number,
      userId: number,
      role: ChangeRole,
      options?: RequestOptions,
    ): Promise<Membership> =>
      this.#call(
        {
          method: "PATCH",
          path: `/admin/v1/orgs/${id(orgId)}/members/${id(userId)}`,
          body: role,
          retry: "safe",
        },
        options,
      ),
    /**
     * Removes a member and revokes their org keys of this org.
     *
     * @example
     * await admin.members.remove(org.id, 2);
     */
    remove: async (orgId: number, userId: number, options?: RequestOptions): Promise<void> => {
      await this.#call(
        { method: "DELETE", path: `/admin/v1/orgs/${id(orgId)}/members/${id(userId)}`, retry: "safe" },
        options,
      );
    },
  };

  readonly orgKeys = {
    /**
     * Creates an org key for a member of the org; its secret `key` is in this answer only.
     *
     * @example
     * const { key } = await admin.orgKeys.create(org.id, { user_id: 2, name: "ci" });
     */
    create: (orgId: number, key: CreateOrgKey, options?: RequestOptions): Promise<NewApiKey> =>
      this.#call(
        { method: "POST", path: `/admin/v1/orgs/${id(orgId)}/keys`, body: key, retry: "unsent" },
        options,
      ),
  };

  readonly sessions = {
    /**
     * Mints a short-lived session token (`bfs_…`) for a user's browser, instead of handing it a
     * long-lived key. `ttl_seconds` 60–86,400, default 3,600.
     *
     * @example
     * const { token, expires_at } = await admin.sessions.create(1, { ttl_seconds: 900 });
     */
    create: (userId: number, session: CreateSession = {}, options?: RequestOptions): Promise<SessionToken> =>
      this.#call(
        { method: "POST", path: `/admin/v1/users/${id(userId)}/sessions`, body: session, retry: "unsent" },
        options,
      ),
    /**
     * Ends every session of a user on the very next request (their open streams are closed).
     *
     * @example
     * await admin.sessions.revokeAll(1);
     */
    revokeAll: async (userId: number, options?: RequestOptions): Promise<void> => {
      await this.#call(
        { method: "DELETE", path: `/admin/v1/users/${id(userId)}/sessions`, retry: "safe" },
        options,
      );
    },
  };

  readonly events = {
    /**
     * Ingests one producer event. Idempotent by `id`: the same event again answers
     * `duplicate: true` (so a retried request that had gone through does too).
     *
     * @example
     * const { duplicate, notifications } = await admin.events.ingest({
     *   id: "pay_001", type: "system.payment.received", user_id: 1,
     *   data: { amount_cents: 2500, balance_cents: 3140 },
     * });
     */
    ingest: (event: IngestEvent, options?: RequestOptions): Promise<IngestResult> =>
      this.#call({ method: "POST", path: "/admin/v1/events", body: event, retry: "safe" }, options),
    /**
     * Ingests any number of events in batches of up to 1,000 (one transaction each), in order,
     * and returns each event's result in input order: `{id, duplicate, notifications}`, or
     * `{id, error: {type, message}}` for an event that was refused. A batch that fails as a
     * whole throws IngestManyError, which says which events were committed.
     *
     * @example
     * const results = await admin.events.ingestMany(events);
     * const refused = results.filter((r) => "error" in r);
     */
    ingestMany: (events: readonly IngestEvent[], options: RequestOptions = {}): Promise<IngestItemResult[]> =>
      ingestMany(this.#core, events, options.signal),
  };
}
