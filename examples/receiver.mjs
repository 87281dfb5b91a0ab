#!/usr/bin/env node
// A webhook receiver that checks Belfry's signatures (Standard Webhooks) before trusting a body.
//
//   BELFRY_WEBHOOK_SECRET=whsec_… PORT=9000 node examples/receiver.mjs
//
// Then point an endpoint at it, e.g. POST /api/v1/me/webhooks {"url": "https://your-host/webhooks"}
// (a local http:// URL needs BELFRY_WEBHOOK_ALLOW_HTTP=true and
// BELFRY_WEBHOOK_ALLOW_NETWORKS=127.0.0.0/8,::1/128 on the Belfry side).
import { createServer } from "node:http";
import { verifyWebhook, WebhookVerificationError } from "belfry/webhooks";

const secret = process.env.BELFRY_WEBHOOK_SECRET;
if (!secret) {
  console.error("Set BELFRY_WEBHOOK_SECRET to the endpoint's whsec_… secret.");
  process.exit(2);
}
const port = Number(process.env.PORT ?? 9000);
const seen = new Set(); // webhook-id is the event's id, the same on every retry: dedupe on it

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    try {
      // Verify the raw bytes, before parsing them as JSON.
      const event = verifyWebhook(secret, req.headers, Buffer.concat(chunks));
      if (seen.has(event.id)) console.log(`duplicate ${event.id} (a retry), ignored`);
      else {
        seen.add(event.id);
        console.log(`${event.created_at} ${event.type} ${event.id}${event.title ? `: ${event.title}` : ""}`);
      }
      res.writeHead(204).end();
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error;
      console.warn(`refused: ${error.message}`);
      res.writeHead(400).end();
    }
  });
}).listen(port, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${port}`));
