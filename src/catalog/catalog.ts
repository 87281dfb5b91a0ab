import { type Static, type TObject, Type } from "typebox";
import { PositiveId, RoleSchema, StringEnum } from "../schemas.js";
import { formatMoney } from "./money.js";

/**
 * The event catalog: every event type Belfry knows, in one place. Each entry gives the
 * type's data schema, whether producers may ingest it, and, for the feed types, who sees it in
 * their feed and how it reads there. Validation, rendering, recipients, the webhook filter, the
 * OpenAPI document, the SDK's types and the docs all come from here, so adding a type touches
 * this file only.
 */

const Cents = Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER });
const Id = PositiveId;
const KeyFacts = { key_id: Id, name: Type.String(), prefix: Type.String(), user_id: Id };
/** What every membership event says about the member. */
const MemberFacts = {
  org_id: Id,
  org_name: Type.String(),
  user_id: Id,
  email: Type.String(),
  role: RoleSchema,
};
/** Sample facts of a member, for the examples. */
const GRACE = { org_id: 3, org_name: "Acme", user_id: 8, email: "grace@example.com" };

/** What a feed type shows in the bell: `link` is a console-relative path or null. */
export interface Rendered {
  title: string;
  body: string;
  link: string | null;
}

/** A producer's replacements for a feed row's rendered title, body or link. */
export type Overrides = Partial<Rendered>;

/**
 * What recipient rules may ask about orgs, answered inside the transaction that raises the event
 * (identity owns the memberships and supplies it; see identity/memberships.ts).
 */
export interface Directory {
  /** Ids of the org's owners and admins. */
  orgManagers(orgId: number): Promise<number[]>;
}

/** What recipients are computed from: the event, the user it is about, org lookups. */
export interface RecipientContext<D> extends Directory {
  data: D;
  userId: number | null;
}

export interface EventDefinition<S extends TObject = TObject> {
  /** Schema of `data`; extra fields are allowed and kept. */
  data: S;
  /** Producers may raise it through `POST /admin/v1/events`. */
  ingest: boolean;
  /** Present for the feed types: the feed recipients and how a row reads. */
  feed?: {
    recipients(ctx: RecipientContext<Static<S>>): number[] | Promise<number[]>;
    render(data: Static<S>): Rendered;
  };
  /**
   * For webhook-only types: whose webhook endpoints receive it. Feed types go to their feed
   * recipients (feed mutes aside).
   */
  webhook?: { recipients(ctx: RecipientContext<Static<S>>): number[] | Promise<number[]> };
  description: string;
  /** Sample data: the API reference renders its examples from it (and a test checks it is valid). */
  example: Static<S>;
}

const define = <S extends TObject>(def: EventDefinition<S>) => def;

export const catalog = {
  "system.payment.received": define({
    description: "A top-up reached the user's wallet.",
    ingest: true,
    example: { amount_cents: 2500, balance_cents: 3140 },
    data: Type.Object({
      amount_cents: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
      balance_cents: Cents,
      receipt: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    }),
    feed: {
      recipients: ({ userId }) => (userId === null ? [] : [userId]),
      render: (d) => ({
        title: `Payment received · ${formatMoney(d.amount_cents)}`,
        body:
          d.receipt === undefined
            ? `Your top-up has cleared. Available balance is now ${formatMoney(d.balance_cents)}.`
            : `Stripe receipt #${d.receipt}. Your balance is now ${formatMoney(d.balance_cents)}.`,
        link: "/billing",
      }),
    },
  }),
  "system.balance.notify.dispatched": define({
    description: "The low-balance cron found the balance below the user's alert threshold.",
    ingest: true,
    example: { balance_cents: 420, threshold_cents: 1000 },
    data: Type.Object({
      balance_cents: Cents,
      threshold_cents: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    }),
    feed: {
      recipients: ({ userId }) => (userId === null ? [] : [userId]),
      render: (d) => ({
        title: `Low balance · ${formatMoney(d.balance_cents)}`,
        body: `Your balance of ${formatMoney(d.balance_cents)} is below your alert threshold of ${formatMoney(d.threshold_cents)}.`,
        link: "/billing",
      }),
    },
  }),
  "admin.org.member.add": define({
    description: "Someone was added to an org (shown to the org's owners and admins).",
    ingest: false,
    example: { ...GRACE, role: "admin" },
    data: Type.Object({
      ...MemberFacts,
    }),
    feed: {
      recipients: async ({ data, orgManagers }) =>
        (await orgManagers(data.org_id)).filter((id) => id !== data.user_id),
      render: (d) => ({
        title: `New member in ${d.org_name}`,
        body: `${d.email} joined ${d.org_name} as ${d.role}.`,
        link: "/org/members",
      }),
    },
  }),
  "admin.api_key.revoke": define({
    description: "A platform administrator revoked one of the user's keys (personal or org).",
    ingest: false,
    example: { key_id: 12, name: "laptop", prefix: "bf_Zx3kP0aQw", user_id: 7, org_id: null },
    data: Type.Object({ ...KeyFacts, org_id: Type.Union([Id, Type.Null()]) }),
    feed: {
      recipients: ({ data }) => [data.user_id],
      render: (d) => ({
        title: "API key revoked",
        body: `A platform administrator revoked your key "${d.name}" (${d.prefix}…).`,
        link: "/keys",
      }),
    },
  }),
  "org.api_key.revoke": define({
    description: "An org owner or admin revoked one of the user's org keys.",
    ingest: false,
    example: {
      key_id: 15,
      name: "ci",
      prefix: "bf_Q8mWv2LrT",
      user_id: 8,
      org_id: 3,
      org_name: "Acme",
      revoked_by_user_id: 7,
    },
    data: Type.Object({ ...KeyFacts, org_id: Id, org_name: Type.String(), revoked_by_user_id: Id }),
    feed: {
      recipients: ({ data }) => (data.revoked_by_user_id === data.user_id ? [] : [data.user_id]),
      render: (d) => ({
        title: "Org API key revoked",
        body: `An admin of ${d.org_name} revoked your key "${d.name}" (${d.prefix}…).`,
        link: "/org/keys",
      }),
    },
  }),
  "admin.org.member.remove": define({
    description: "A member was removed from an org; their org keys of that org were revoked.",
    ingest: false,
    example: { ...GRACE, role: "member", revoked_key_ids: [15] },
    data: Type.Object({
      ...MemberFacts,
      revoked_key_ids: Type.Array(Id),
    }),
    webhook: { recipients: async ({ data, orgManagers }) => orgManagers(data.org_id) },
  }),
  "admin.org.member.role_change": define({
    description: "A member's role in an org changed.",
    ingest: false,
    example: { ...GRACE, role: "admin", previous_role: "member" },
    data: Type.Object({
      ...MemberFacts,
      previous_role: RoleSchema,
    }),
    webhook: { recipients: async ({ data, orgManagers }) => orgManagers(data.org_id) },
  }),
  "admin.api_key.create": define({
    description: "A platform administrator created a personal key for the user.",
    ingest: false,
    example: { key_id: 12, name: "laptop", prefix: "bf_Zx3kP0aQw", user_id: 7, org_id: null },
    data: Type.Object({ ...KeyFacts, org_id: Type.Null() }),
    webhook: { recipients: ({ userId }) => (userId === null ? [] : [userId]) },
  }),
  "org.api_key.create": define({
    description: "An org key was created for a member.",
    ingest: false,
    example: { key_id: 15, name: "ci", prefix: "bf_Q8mWv2LrT", user_id: 8, org_id: 3, org_name: "Acme" },
    data: Type.Object({ ...KeyFacts, org_id: Id, org_name: Type.String() }),
    webhook: { recipients: async ({ data, orgManagers }) => orgManagers(data.org_id) },
  }),
  "admin.user.update": define({
    description: "A platform administrator changed the user's email or name.",
    ingest: false,
    example: { user_id: 7, email: "ada@example.com", name: "Ada Lovelace", changed: ["name"] },
    data: Type.Object({
      user_id: Id,
      email: Type.String(),
      name: Type.Union([Type.String(), Type.Null()]),
      changed: Type.Array(Type.String()),
    }),
    webhook: { recipients: ({ userId }) => (userId === null ? [] : [userId]) },
  }),
  "webhook.test": define({
    description: "A test event sent to one webhook endpoint on request.",
    ingest: false,
    example: {},
    data: Type.Object({}),
    webhook: { recipients: () => [] },
  }),
} satisfies Record<string, EventDefinition>;

export type Catalog = typeof catalog;
export type EventType = keyof Catalog;
export type EventData<T extends EventType> = Static<Catalog[T]["data"]>;

export const EVENT_TYPES = Object.keys(catalog) as EventType[];
/** The types shown in the feed, in catalog order. */
export const FEED_TYPES = EVENT_TYPES.filter((t) => "feed" in catalog[t]);
/** The types producers may send to the ingest endpoint. */
export const INGEST_TYPES = EVENT_TYPES.filter((t) => catalog[t].ingest);

/** Any event type (webhook `event_types`, delivery `event_type`), as an enum. */
export const EventTypeName = StringEnum(EVENT_TYPES, { description: "An event type of the catalog." });
/** One of the feed types (the feed's `type` filter, notification `type`, mutes), as an enum. */
export const FeedTypeName = StringEnum(FEED_TYPES, { description: "One of the feed's event types." });

/** A type's feed behaviour with its data type erased, for code that handles any type. */
export interface FeedBehaviour {
  recipients(ctx: RecipientContext<unknown>): number[] | Promise<number[]>;
  render(data: unknown): Rendered;
}

/** The feed behaviour of `type`, or undefined for webhook-only types. */
export const feedOf = (type: EventType): FeedBehaviour | undefined =>
  (catalog[type] as { feed?: FeedBehaviour }).feed;

/**
 * How an event reads — in its feed row and in its webhook payload alike: the type's rendering of
 * `data` with the producer's overrides on top. Undefined for webhook-only types.
 *
 * @example
 * render("system.payment.received", { amount_cents: 2500, balance_cents: 3140 }, { link: null });
 * // { title: "Payment received · $25.00", body: "Your top-up has cleared. …", link: null }
 */
export function render(type: EventType, data: unknown, overrides?: Overrides | null): Rendered | undefined {
  const feed = feedOf(type);
  return feed && { ...feed.render(data), ...overrides };
}

/** How a feed type's sample data reads in the feed: what the API reference shows. */
export function renderExample(type: EventType): Rendered | undefined {
  return render(type, catalog[type].example);
}

/** Whose webhook endpoints receive an event of `type`: its feed recipients, or its webhook rule. */
export function webhookRecipientsOf(type: EventType): FeedBehaviour["recipients"] {
  const def = catalog[type] as { feed?: FeedBehaviour; webhook?: Pick<FeedBehaviour, "recipients"> };
  return (def.feed ?? def.webhook)?.recipients ?? (() => []);
}
