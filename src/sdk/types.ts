/**
 * The SDK's request and answer types, derived from the server's own schemas. Every import here is
 * type-only, so it is erased at build time and the SDK pulls no server code into a bundle.
 * Field names are the wire's (snake_case), as in Stripe's and Knock's SDKs.
 */
import type { Static } from "typebox";
import type { EventType } from "../catalog/catalog.js";
import type {
  MarkAllReadResult as MarkAllReadResultSchema,
  MarkReadResult as MarkReadResultSchema,
} from "../feed/mark-read.js";
import type {
  NotificationPage as NotificationPageSchema,
  Notification as NotificationSchema,
  UnreadCount as UnreadCountSchema,
} from "../feed/notifications.js";
import type { FeedSettings as FeedSettingsSchema, PutFeedSettingsRequest } from "../feed/settings.js";
import type {
  ApiKey as ApiKeySchema,
  CreateKeyRequest,
  CreateOrgKeyRequest,
  NewApiKey as NewApiKeySchema,
} from "../identity/keys.js";
import type {
  AddMemberRequest,
  ChangeRoleRequest,
  CreateOrgRequest,
  Membership as MembershipSchema,
  Org as OrgSchema,
} from "../identity/orgs.js";
import type { CreateSessionRequest, Session as SessionSchema } from "../identity/sessions.js";
import type { CreateUserRequest, UpdateUserRequest, User as UserSchema } from "../identity/users.js";
import type {
  IngestBatchResult,
  IngestRequest,
  IngestResult as IngestResultSchema,
} from "../ingest/ingest-request.js";
import type { StreamRead, StreamReset, StreamUnreadCount } from "../stream/stream-events.js";
import type { StreamTicket as StreamTicketSchema } from "../stream/tickets.js";
import type {
  DELIVERY_STATUSES,
  DeliveryPage as DeliveryPageSchema,
  QueuedDelivery as QueuedDeliverySchema,
  RecoverRequest,
  Requeued as RequeuedSchema,
} from "../webhooks/deliveries.js";
import type {
  CreateWebhookEndpointRequest as CreateWebhookSchema,
  NewWebhookEndpoint as NewWebhookEndpointSchema,
  RotatedSecret as RotatedSecretSchema,
  UpdateWebhookEndpointRequest as UpdateWebhookSchema,
  WebhookEndpointPage as WebhookEndpointPageSchema,
  WebhookEndpoint as WebhookEndpointSchema,
} from "../webhooks/endpoints.js";

export type { EventType };

// The feed
export type Notification = Static<typeof NotificationSchema>;
export type NotificationPage = Static<typeof NotificationPageSchema>;
export type UnreadCount = Static<typeof UnreadCountSchema>;
export type MarkReadResult = Static<typeof MarkReadResultSchema>;
export type MarkAllReadResult = Static<typeof MarkAllReadResultSchema>;
export type FeedSettings = Static<typeof FeedSettingsSchema>;
export type FeedSettingsUpdate = Static<typeof PutFeedSettingsRequest>;

/** The list filters, as the query string names them. */
export interface NotificationFilter {
  /** true: unread rows only. */
  unread?: boolean;
  /** true: read rows only. */
  read?: boolean;
  /** One of the feed's event types. */
  type?: EventType;
  /** 1-based; default 1. */
  page?: number;
  /** Default 50, at most 200. */
  page_size?: number;
}

// Webhooks
export type WebhookEndpoint = Static<typeof WebhookEndpointSchema>;
export type NewWebhookEndpoint = Static<typeof NewWebhookEndpointSchema>;
export type WebhookEndpointPage = Static<typeof WebhookEndpointPageSchema>;
export type CreateWebhookEndpoint = Static<typeof CreateWebhookSchema>;
export type UpdateWebhookEndpoint = Static<typeof UpdateWebhookSchema>;
export type RotatedSecret = Static<typeof RotatedSecretSchema>;
export type DeliveryPage = Static<typeof DeliveryPageSchema>;
export type Delivery = DeliveryPage["items"][number];
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
export type QueuedDelivery = Static<typeof QueuedDeliverySchema>;
export type Requeued = Static<typeof RequeuedSchema>;
export type RecoverWebhookDeliveries = Static<typeof RecoverRequest>;
/** Paging of the endpoint and delivery lists. */
export interface PageParams {
  page?: number;
  page_size?: number;
}

// The live stream
export type StreamTicket = Static<typeof StreamTicketSchema>;

/** One event of the live stream, by its SSE event name. */
export type FeedStreamEvent =
  | { type: "notification"; id: number; data: Notification }
  | { type: "unread-count"; data: Static<typeof StreamUnreadCount> }
  | { type: "read"; data: Static<typeof StreamRead> }
  | { type: "reset"; data: Static<typeof StreamReset> };

// The admin API
export type User = Static<typeof UserSchema>;
export type CreateUser = Static<typeof CreateUserRequest>;
export type UpdateUser = Static<typeof UpdateUserRequest>;
export type ApiKey = Static<typeof ApiKeySchema>;
export type NewApiKey = Static<typeof NewApiKeySchema>;
export type CreateKey = Static<typeof CreateKeyRequest>;
export type CreateOrgKey = Static<typeof CreateOrgKeyRequest>;
export type Org = Static<typeof OrgSchema>;
export type CreateOrg = Static<typeof CreateOrgRequest>;
export type Membership = Static<typeof MembershipSchema>;
export type AddMember = Static<typeof AddMemberRequest>;
export type ChangeRole = Static<typeof ChangeRoleRequest>;
export type IngestEvent = Static<typeof IngestRequest>;
export type IngestResult = Static<typeof IngestResultSchema>;
/** One item of a batch answer: the ingest result, or why that item was refused. */
export type IngestItemResult = Static<typeof IngestBatchResult>["results"][number];

/** A browser session token, as `POST /admin/v1/users/:user_id/sessions` answers it. */
export type SessionToken = Static<typeof SessionSchema>;
/** Options of a new session: its lifetime, 60–86,400 seconds (default 3,600). */
export type CreateSession = Static<typeof CreateSessionRequest>;
