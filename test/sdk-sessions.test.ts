import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BelfryAdmin, InvalidRequestError, NotFoundError } from "../src/sdk/admin.js";
import { AuthenticationError, BelfryClient, PermissionError } from "../src/sdk/client.js";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness } from "./support/harness.js";
import { waitFor } from "./support/receiver.js";
import { consume, listeningHarness } from "./support/sdk.js";

/** `admin.sessions` against the real server on every store: minting browser session tokens and ending them. */

describe.each(BACKENDS)("BelfryAdmin sessions on %s", (backend) => {
  let h: Harness & { url: string };
  let admin: BelfryAdmin;

  beforeAll(async () => {
    h = await listeningHarness(backend);
    admin = new BelfryAdmin({ baseUrl: h.url, token: ADMIN_TOKEN });
  });
  afterAll(() => h.close());

  it("mints a session token that acts as its user on the feed, and not on webhooks", async () => {
    const user = await admin.users.create({ email: `session-${backend}@example.com` });
    const before = Math.floor(Date.now() / 1000);
    const session = await admin.sessions.create(user.id, { ttl_seconds: 120 });
    expect(session.token).toMatch(/^bfs_[A-Za-z0-9_-]{32,}$/);
    expect(session.user_id).toBe(user.id);
    const expires = Date.parse(session.expires_at) / 1000;
    expect(expires).toBeGreaterThanOrEqual(before + 120);
    expect(expires).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 120);

    const defaults = await admin.sessions.create(user.id);
    expect(Date.parse(defaults.expires_at) / 1000).toBeGreaterThanOrEqual(before + 3600);

    const browser = new BelfryClient({ baseUrl: h.url, token: session.token });
    expect(await browser.notifications.unreadCount()).toEqual({ count: 0 });
    expect((await browser.streamTicket()).ticket).toMatch(/^bft_/);
    const refused = await browser.webhooks.list().catch((e) => e);
    expect(refused).toBeInstanceOf(PermissionError);
    expect(refused.requestId).toMatch(/^req_/);
  });

  it("refuses a bad lifetime or an unknown user", async () => {
    const user = await admin.users.create({ email: `ttl-${backend}@example.com` });
    await expect(admin.sessions.create(user.id, { ttl_seconds: 59 })).rejects.toBeInstanceOf(
      InvalidRequestError,
    );
    await expect(admin.sessions.create(user.id, { ttl_seconds: 86_401 })).rejects.toBeInstanceOf(
      InvalidRequestError,
    );
    await expect(admin.sessions.create(987_654_321)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("ends every session of a user at once, open streams included", async () => {
    const user = await admin.users.create({ email: `end-${backend}@example.com` });
    const a = new BelfryClient({ baseUrl: h.url, token: (await admin.sessions.create(user.id)).token });
    const b = new BelfryClient({ baseUrl: h.url, token: (await admin.sessions.create(user.id)).token });
    const stream = consume(b.stream());
    await waitFor(() => stream.events.length > 0, 10_000, "the stream to open");

    await admin.sessions.revokeAll(user.id);
    await expect(a.notifications.unreadCount()).rejects.toBeInstanceOf(AuthenticationError);
    expect(await stream.ended).toBeInstanceOf(AuthenticationError);
    await admin.sessions.revokeAll(user.id); // nothing left to end: still fine
  });
});
