import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { verifyWebhook, WebhookVerificationError } from "../src/index.js";
import { newSecret, sign } from "../src/webhooks/signature.js";
import { independentSignature } from "./support/signature.js";

/** The Standard Webhooks spec's published test vector, kept as a fixture of this repository. */
const VECTOR_FILE = new URL("./fixtures/standard-webhooks-vector.json", import.meta.url);
const vector = JSON.parse(readFileSync(VECTOR_FILE, "utf8")) as {
  secret: string;
  "webhook-id": string;
  "webhook-timestamp": string;
  body: string;
  "webhook-signature": string;
};

const ID = vector["webhook-id"];
const TIMESTAMP = vector["webhook-timestamp"];
const NOW = Number(TIMESTAMP);

const headers = (overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
  "webhook-id": ID,
  "webhook-timestamp": TIMESTAMP,
  "webhook-signature": vector["webhook-signature"],
  ...overrides,
});

/** verifyWebhook's refusal, or undefined when it accepted. */
function refusal(
  h: Parameters<typeof verifyWebhook>[1],
  options: { body?: string; secret?: string; now?: number; toleranceSeconds?: number } = {},
): unknown {
  const { body = vector.body, secret = vector.secret, now = NOW, toleranceSeconds } = options;
  try {
    verifyWebhook(secret, h, body, toleranceSeconds === undefined ? { now } : { now, toleranceSeconds });
    return undefined;
  } catch (error) {
    return error;
  }
}

describe("sign", () => {
  it("uses the vector exactly as the spec publishes it", () => {
    expect(vector).toMatchObject({
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
      "webhook-timestamp": "1614265330",
      body: '{"test": 2432232314}',
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    });
  });

  it("reproduces the Standard Webhooks test vector exactly", () => {
    expect(sign(vector.secret, ID, NOW, vector.body)).toBe(vector["webhook-signature"]);
  });

  it("agrees with an independent node:crypto computation", () => {
    expect(independentSignature(vector.secret, ID, TIMESTAMP, vector.body)).toBe(vector["webhook-signature"]);
    const secret = newSecret();
    const body = '{"id":"evt_1","type":"webhook.test","created_at":"2026-05-22T08:08:00Z","data":{}}';
    expect(sign(secret, "evt_1", 1779437280, body)).toBe(
      independentSignature(secret, "evt_1", "1779437280", body),
    );
  });

  it("issues secrets as whsec_ and the base64 of 32 random bytes", () => {
    const a = newSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a.slice(6), "base64")).toHaveLength(32);
    expect(newSecret()).not.toBe(a);
  });
});

describe("verifyWebhook", () => {
  it("accepts the test vector and returns the parsed payload", () => {
    expect(verifyWebhook(vector.secret, headers(), vector.body, { now: NOW })).toEqual({ test: 2432232314 });
    expect(verifyWebhook(vector.secret, headers(), Buffer.from(vector.body), { now: NOW })).toEqual({
      test: 2432232314,
    });
  });

  it("accepts a header of two signatures when only the second is right", () => {
    const wrong = independentSignature(newSecret(), ID, TIMESTAMP, vector.body);
    const h = headers({ "webhook-signature": `${wrong} ${vector["webhook-signature"]}` });
    expect(refusal(h)).toBeUndefined();
    expect(
      refusal(headers({ "webhook-signature": `${vector["webhook-signature"]} ${wrong}` })),
    ).toBeUndefined();
  });

  it("takes Node's req.headers object and a fetch Headers instance", () => {
    const nodeHeaders = {
      host: "127.0.0.1:9000",
      "content-type": "application/json",
      "content-length": String(vector.body.length),
      "webhook-id": ID,
      "webhook-timestamp": TIMESTAMP,
      "webhook-signature": vector["webhook-signature"],
    };
    expect(verifyWebhook(vector.secret, nodeHeaders, vector.body, { now: NOW })).toEqual({
      test: 2432232314,
    });
    const fetchHeaders = new Headers({
      "Webhook-Id": ID,
      "Webhook-Timestamp": TIMESTAMP,
      "Webhook-Signature": vector["webhook-signature"],
    });
    expect(verifyWebhook(vector.secret, fetchHeaders, vector.body, { now: NOW })).toEqual({
      test: 2432232314,
    });
    expect(refusal(fetchHeaders, { body: '{"test": 2432232315}' })).toBeInstanceOf(WebhookVerificationError);
  });

  it("rejects a tampered body and a wrong secret", () => {
    expect(refusal(headers(), { body: '{"test": 2432232315}' })).toBeInstanceOf(WebhookVerificationError);
    expect(refusal(headers(), { body: `${vector.body} ` })).toBeInstanceOf(WebhookVerificationError);
    expect(refusal(headers(), { secret: newSecret() })).toBeInstanceOf(WebhookVerificationError);
    const signedElsewhere = headers({ "webhook-id": "msg_other" });
    expect(refusal(signedElsewhere)).toBeInstanceOf(WebhookVerificationError);
  });

  it.each(["webhook-id", "webhook-timestamp", "webhook-signature"])("rejects a missing %s header", (name) => {
    expect(refusal(headers({ [name]: undefined }))).toBeInstanceOf(WebhookVerificationError);
    expect(refusal(headers({ [name]: "" }))).toBeInstanceOf(WebhookVerificationError);
    const fetchHeaders = new Headers(headers() as Record<string, string>);
    fetchHeaders.delete(name);
    expect(refusal(fetchHeaders)).toBeInstanceOf(WebhookVerificationError);
  });

  it("rejects a timestamp outside the tolerance, in both directions", () => {
    expect(refusal(headers(), { now: NOW + 300 })).toBeUndefined();
    expect(refusal(headers(), { now: NOW - 300 })).toBeUndefined();
    expect(refusal(headers(), { now: NOW + 301 })).toBeInstanceOf(WebhookVerificationError);
    expect(refusal(headers(), { now: NOW - 301 })).toBeInstanceOf(WebhookVerificationError);
    expect(refusal(headers(), { now: NOW + 10, toleranceSeconds: 10 })).toBeUndefined();
    expect(refusal(headers(), { now: NOW + 11, toleranceSeconds: 10 })).toBeInstanceOf(
      WebhookVerificationError,
    );
    expect(refusal(headers(), { now: NOW - 11, toleranceSeconds: 10 })).toBeInstanceOf(
      WebhookVerificationError,
    );
  });

  it("uses the current time by default", () => {
    const now = Math.floor(Date.now() / 1000);
    const body = '{"id":"evt_1"}';
    const fresh = (timestamp: number) => ({
      "webhook-id": "evt_1",
      "webhook-timestamp": String(timestamp),
      "webhook-signature": independentSignature(vector.secret, "evt_1", String(timestamp), body),
    });
    expect(verifyWebhook(vector.secret, fresh(now), body)).toEqual({ id: "evt_1" });
    expect(() => verifyWebhook(vector.secret, headers(), vector.body)).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(vector.secret, fresh(now - 400), body)).toThrow(WebhookVerificationError);
  });

  it.each(["abc", "1614265330abc", "1614265330.5", "-1614265330", "1.6e9", " 1614265330"])(
    "rejects the non-numeric timestamp %j",
    (timestamp) => {
      const signed = independentSignature(vector.secret, ID, timestamp, vector.body);
      const h = headers({ "webhook-timestamp": timestamp, "webhook-signature": signed });
      expect(refusal(h)).toBeInstanceOf(WebhookVerificationError);
    },
  );

  it("rejects signatures of another version", () => {
    const v2 = vector["webhook-signature"].replace(/^v1,/, "v2,");
    expect(refusal(headers({ "webhook-signature": v2 }))).toBeInstanceOf(WebhookVerificationError);
    const bare = vector["webhook-signature"].slice("v1,".length);
    expect(refusal(headers({ "webhook-signature": bare }))).toBeInstanceOf(WebhookVerificationError);
    expect(refusal(headers({ "webhook-signature": `v1a,${bare}` }))).toBeInstanceOf(WebhookVerificationError);
  });
});
