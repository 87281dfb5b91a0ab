import type { Generated, Insertable, Selectable } from "kysely";

/**
 * The tables, as Kysely sees them. Times are whole unix seconds; JSON is kept as text so both
 * backends store exactly what was sent.
 */
export interface Database {
  users: UsersTable;
  orgs: OrgsTable;
  memberships: MembershipsTable;
  api_keys: ApiKeysTable;
  events: EventsTable;
  event_keys: EventKeysTable;
  notifications: NotificationsTable;
  feed_states: FeedStatesTable;
  feed_counters: FeedCountersTable;
  feed_read_marks: FeedReadMarksTable;
  stream_tickets: StreamTicketsTable;
  sessions: SessionsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  webhook_delivery_counters: WebhookDeliveryCountersTable;
}

export interface UsersTable {
  id: Generated<number>;
  email: string;
  /** `email` folded for the case-insensitive unique index. */
  email_key: string;
  name: string | null;
  created_at: number;
}

export interface OrgsTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

export type Role = "owner" | "admin" | "member";

export interface MembershipsTable {
  org_id: number;
  user_id: number;
  role: Role;
  created_at: number;
}

export interface ApiKeysTable {
  id: Generated<number>;
  user_id: number;
  org_id: number | null;
  name: string;
  prefix: string;
  /** Hex SHA-256 of the whole secret; the secret itself is never stored. */
  secret_hash: string;
  created_at: number;
  revoked_at: number | null;
}

export interface EventsTable {
  id: Generated<number>;
  /** `evt_…`, opaque: the `id` of webhook payloads and the `webhook-id` header. */
  public_id: string;
  /** The producer's `id` for ingested events (unique in `event_keys`); null for events Belfry raises itself. */
  idempotency_key: string | null;
  type: string;
  /** The user the event is about, when there is one. */
  user_id: number | null;
  org_id: number | null;
  actor_user_id: number | null;
  /** JSON text of the event's data. */
  data: string;
  /** JSON text of the producer's title/body/link overrides, or null. */
  overrides: string | null;
  occurred_at: number;
  created_at: number;
}

/** Producers' event ids, each taken once: by the first event posted with it. */
export interface EventKeysTable {
  idempotency_key: string;
  /** SHA-256 of the ingest request's content, to tell a retry from a conflicting reuse. */
  fingerprint: string;
}

export interface NotificationsTable {
  id: Generated<number>;
  user_id: number;
  event_id: number;
  type: string;
  title: string;
  body: string;
  link: string | null;
  created_at: number;
  read_at: number | null;
}

/** One row per user: the lock every feed write takes first, the feed version, the mutes. */
export interface FeedStatesTable {
  user_id: number;
  /** Grows with every change to the user's rows or counts: ETags and stream events carry it. */
  version: number;
  /** JSON array of muted feed types. */
  muted_types: string;
  /** Rows up to this id are read (mark-all-read), whatever their own `read_at`. */
  read_through_id: number;
  /** The id of the user's newest row. */
  last_id: number;
}

/** A ticket to open a stream (and reopen it until it expires); only its hash is kept. */
export interface StreamTicketsTable {
  secret_hash: string;
  /** The key that asked for it, or null when a session did (exactly one of the two is set). */
  key_id: number | null;
  session_id: number | null;
  user_id: number;
  expires_at: number;
  /** When a stream last opened with the ticket. */
  used_at: number | null;
  /** Grows with every stream opened on the ticket; only the stream holding the newest may stay open. */
  generation: Generated<number>;
}

/** A browser session (`bfs_…`) of a user; only the token's hash is kept. */
export interface SessionsTable {
  id: Generated<number>;
  user_id: number;
  /** Hex SHA-256 of the whole token. */
  secret_hash: string;
  created_at: number;
  expires_at: number;
}

/** One mark-all-read: the user's rows up to `max_id` not read before were read at `at`. */
export interface FeedReadMarksTable {
  user_id: number;
  max_id: number;
  at: number;
}

/** Kept counts per (user, feed type), changed in the same transaction as the rows. */
export interface FeedCountersTable {
  user_id: number;
  type: string;
  total: number;
  unread: number;
}

export interface WebhookEndpointsTable {
  id: Generated<number>;
  user_id: number;
  url: string;
  /** JSON array of event types, or null for every type. */
  event_types: string | null;
  description: string | null;
  /** `whsec_…`; kept as is because every delivery is signed with it. */
  secret: string;
  /** The secret before the last rotation, still signing beside the new one until `previous_secret_until`. */
  previous_secret: string | null;
  previous_secret_until: number | null;
  disabled_at: number | null;
  disabled_reason: string | null;
  /** When the current run of failures began; null after a success. */
  failing_since: number | null;
  deleted_at: number | null;
  created_at: number;
  updated_at: number;
}

export type DeliveryStatus = "pending" | "succeeded" | "failed" | "exhausted" | "held" | "cancelled";

export interface WebhookDeliveriesTable {
  id: Generated<number>;
  /** The endpoint's user: every statement about one user's deliveries names it. */
  user_id: number;
  /** The claim bucket, `user_id % CLAIM_BUCKETS`: workers claim due deliveries bucket by bucket. */
  bucket: number;
  endpoint_id: number;
  event_id: number;
  status: DeliveryStatus;
  /** Attempts made in the current schedule (a redelivery or recovery starts a new one). */
  schedule_step: number;
  next_attempt_at_ms: number | null;
  /** Set while a worker holds the delivery; a lease past `lease_until_ms` may be taken over. */
  lease_token: string | null;
  lease_until_ms: number | null;
  created_at: number;
  updated_at: number;
}

export type ErrorClass = "timeout" | "dns" | "refused" | "tls" | "http_status" | "blocked";

export interface WebhookAttemptsTable {
  id: Generated<number>;
  user_id: number;
  delivery_id: number;
  /** 1, 2, … across every schedule of the delivery. */
  number: number;
  attempted_at: number;
  response_status: number | null;
  /** The first 2 KB of the response body. */
  response_body: string | null;
  latency_ms: number;
  error_class: ErrorClass | null;
}

export interface WebhookDeliveryCountersTable {
  user_id: number;
  endpoint_id: number;
  status: DeliveryStatus;
  count: number;
}

export type UserRow = Selectable<UsersTable>;
export type OrgRow = Selectable<OrgsTable>;
export type MembershipRow = Selectable<MembershipsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type EventRow = Selectable<EventsTable>;
export type NewEvent = Insertable<EventsTable>;
export type NotificationRow = Selectable<NotificationsTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
