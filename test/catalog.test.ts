import { describe, expect, expectTypeOf, it } from "vitest";
import {
  catalog,
  EVENT_TYPES,
  type EventType,
  FEED_TYPES,
  feedOf,
  INGEST_TYPES,
  render,
  renderExample,
} from "../src/catalog/catalog.js";
import type { EventInput } from "../src/events/event-row.js";
import type { raiseEvent } from "../src/events/raise.js";
import { validator } from "../src/validation.js";

/** Pure checks of the catalog itself: every type's sample data is valid and renders. */
describe("the event catalog", () => {
  it.each(EVENT_TYPES)("%s: its sample data passes its own schema", (type) => {
    expect(validator(catalog[type].data).problem(catalog[type].example, "data")).toBeUndefined();
  });

  it.each(FEED_TYPES)("%s: renders its sample data as a feed row reads", (type) => {
    const rendered = render(type, catalog[type].example);
    expect(rendered).toEqual(renderExample(type));
    expect(rendered?.title).toMatch(/\S/);
    expect(rendered?.body).toMatch(/\S/);
    expect(rendered?.link === null || /^\/(?![/\\])\S*$/.test(rendered?.link ?? "")).toBe(true);
  });

  it.each(FEED_TYPES)("%s: overrides replace the rendered title, body and link, each on its own", (type) => {
    const plain = render(type, catalog[type].example);
    expect(render(type, catalog[type].example, { title: "T" })).toEqual({ ...plain, title: "T" });
    expect(render(type, catalog[type].example, { body: "B", link: null })).toEqual({
      ...plain,
      body: "B",
      link: null,
    });
    expect(render(type, catalog[type].example, null)).toEqual(plain);
  });

  it("renders nothing for webhook-only types, and the feed types are exactly those with a rendering", () => {
    const webhookOnly = EVENT_TYPES.filter((t) => !FEED_TYPES.includes(t));
    expect(webhookOnly.length).toBeGreaterThan(0);
    for (const type of webhookOnly) {
      expect(feedOf(type)).toBeUndefined();
      expect(render(type, catalog[type].example, { title: "T" })).toBeUndefined();
    }
    expect(FEED_TYPES.every((t) => feedOf(t) !== undefined)).toBe(true);
    expect(INGEST_TYPES.every((t) => EVENT_TYPES.includes(t))).toBe(true);
  });

  it("types raiseEvent's data by the event type's schema", () => {
    // Compile-time: `npm run typecheck` fails if these stop being errors.
    const wrong: EventInput<"system.payment.received"> = {
      type: "system.payment.received",
      // @ts-expect-error balance_cents is missing: the payment schema requires it
      data: { amount_cents: 100 },
      userId: 1,
      occurredAt: 0,
      createdAt: 0,
    };
    expectTypeOf<Parameters<typeof raiseEvent<"admin.user.update">>[2]["data"]>().toEqualTypeOf<
      EventInput<"admin.user.update">["data"]
    >();
    expectTypeOf<EventInput<"webhook.test">["data"]>().not.toEqualTypeOf<
      EventInput<"system.payment.received">["data"]
    >();
    // And at run time the same data fails the same schema.
    expect(validator(catalog[wrong.type].data).problem(wrong.data, "data")).toMatch(/balance_cents/);
    expectTypeOf<EventType>().toEqualTypeOf<(typeof EVENT_TYPES)[number]>();
  });
});
