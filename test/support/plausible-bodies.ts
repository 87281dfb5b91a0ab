import fc from "fast-check";
import { FEED_TYPES, LOW_BALANCE, PAYMENT } from "./feed-model.js";

/**
 * Bodies some route accepts, naming real users, so requests also get past validation (and create
 * users, keys, orgs, endpoints and events), sometimes with an extra field. Each kind says which
 * paths it suits; a path none suits (a route added later) gets any of them.
 */
export function plausibleBodyArb(userIds: number[], path: string): fc.Arbitrary<string> {
  const user = fc.constantFrom(...userIds);
  const role = fc.constantFrom("owner", "admin", "member");
  const event = fc.record({
    id: fc.nat().map((n) => `fz-${n}`),
    type: fc.constantFrom(PAYMENT, LOW_BALANCE),
    user_id: user,
    data: fc.record({
      amount_cents: fc.integer({ min: 1, max: 1e6 }),
      balance_cents: fc.integer(),
      threshold_cents: fc.nat(),
    }),
  });
  const kinds: [RegExp, fc.Arbitrary<object>][] = [
    [
      /users(\/:user_id)?$/,
      fc.record({ email: fc.nat().map((n) => `fz${n}@example.com`), name: fc.string() }),
    ],
    [/keys$/, fc.record({ name: fc.string({ minLength: 1, maxLength: 20 }) })],
    [/keys$/, fc.record({ user_id: user, name: fc.constant("ci") })],
    [/orgs$/, fc.record({ name: fc.constant("Org"), owner_user_id: user })],
    [/members$/, fc.record({ user_id: user, role })],
    [/members\/:user_id$/, fc.record({ role })],
    [/events$/, event],
    [/batch$/, fc.array(event, { minLength: 1, maxLength: 3 }).map((events) => ({ events }))],
    [/settings$/, fc.record({ muted_types: fc.subarray([...FEED_TYPES]) })],
    [
      /webhooks(\/:id)?$/,
      fc.record(
        {
          url: fc.constantFrom("https://hooks.example.com/a", "https://h.example/b?x=1"),
          event_types: fc.subarray([...FEED_TYPES], { minLength: 1 }),
          description: fc.string(),
        },
        { requiredKeys: ["url"] },
      ),
    ],
    [/webhooks\/:id$/, fc.record({ enabled: fc.boolean() })],
    [/recover$/, fc.record({ since: fc.constant("2026-01-01T00:00:00Z") })],
    [/sessions$/, fc.record({ ttl_seconds: fc.integer({ min: 60, max: 86_400 }) })],
  ];
  const suited = kinds.filter(([fits]) => fits.test(path)).map(([, arb]) => arb);
  return fc
    .tuple(fc.oneof(...(suited.length > 0 ? suited : kinds.map(([, arb]) => arb))), fc.nat({ max: 4 }))
    .map(([body, n]) => JSON.stringify(n === 0 ? { ...body, extra_field: 1 } : body));
}
