import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness, startHarness } from "./support/harness.js";

/** What a stranger can make the server hold: bodies before authentication, slow requests. */
describe.each(BACKENDS)("slow and unauthenticated clients on %s", (backend) => {
  let h: Harness;
  let port: number;
  beforeAll(async () => {
    h = await startHarness(backend, {}, { timeouts: { headersMs: 300, bodyMs: 800 } });
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    port = (h.app.server.address() as { port: number }).port;
  });
  afterAll(() => h.close());

  /** Writes `text` and never ends the request; resolves with what came back when the server closed. */
  const stall = (text: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => socket.write(text));
      let out = "";
      socket.on("data", (d) => (out += d));
      socket.on("close", () => resolve(out));
      socket.on("error", reject);
    });
  const statusOf = (response: string) => Number(response.slice(9, 12));
  const envelopeOf = (response: string) => JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4));

  it.each([
    ["/admin/v1/events/batch", 8_000_000],
    ["/admin/v1/users", 1000],
    ["/api/v1/me/webhooks", 1000],
  ])("refuses %s without credentials before reading its body", async (path, length) => {
    // Only the headers are sent: the 401 must come without waiting for the body.
    const response = await stall(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n{`,
    );
    expect(statusOf(response)).toBe(401);
    expect(envelopeOf(response).error.type).toBe("authentication_error");
  });

  it("answers 408 with the envelope to a client that does not finish its headers", async () => {
    const response = await stall("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    expect(statusOf(response)).toBe(408);
    expect(envelopeOf(response)).toEqual({
      error: { type: "invalid_request_error", message: "The request was not received in time." },
    });
  });

  it("answers 408 and closes the connection when an authenticated body stalls", async () => {
    const response = await stall(
      `POST /admin/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":`,
    );
    expect(statusOf(response)).toBe(408);
  });

  it("does not serve HEAD on the live stream (it would never end)", async () => {
    const u = await h.userWithKey();
    const r = await h.request("HEAD", "/api/v1/me/notifications/stream", { key: u.key });
    expect(r.status).toBe(404);
  });
});
