import type { FastifyInstance } from "fastify";
import type { Deps } from "../../deps.js";
import { pathId } from "../../ids.js";
import { pageParams, type Query } from "../../query-params.js";
import {
  DeliveryPage,
  listDeliveries,
  parseStatus,
  QueuedDelivery,
  Requeued,
  recover,
  redeliver,
  sendTest,
} from "../../webhooks/deliveries.js";
import {
  createEndpoint,
  deleteEndpoint,
  findEndpoint,
  listEndpoints,
  NewWebhookEndpoint,
  RotatedSecret,
  rotateSecret,
  toEndpoint,
  updateEndpoint,
  WebhookEndpoint,
  WebhookEndpointPage,
} from "../../webhooks/endpoints.js";
import { principal } from "../auth.js";
import { noBody } from "../no-body.js";

/** The caller's webhook endpoints and their deliveries (another user's endpoint is a 404). */
export async function webhookRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const endpointId = (params: unknown) => pathId(params, "id", "No such webhook endpoint.");

  app.post(
    "/api/v1/me/webhooks",
    { schema: { response: { 201: NewWebhookEndpoint } } },
    async (request, reply) =>
      reply.code(201).send(await createEndpoint(deps, principal(request).userId, request.body)),
  );
  app.get("/api/v1/me/webhooks", { schema: { response: { 200: WebhookEndpointPage } } }, (request) => {
    const { page, pageSize } = pageParams(request.query as Query);
    return listEndpoints(deps, principal(request).userId, page, pageSize);
  });
  app.get("/api/v1/me/webhooks/:id", { schema: { response: { 200: WebhookEndpoint } } }, async (request) =>
    toEndpoint(await findEndpoint(deps, principal(request).userId, endpointId(request.params))),
  );
  app.patch("/api/v1/me/webhooks/:id", { schema: { response: { 200: WebhookEndpoint } } }, (request) =>
    updateEndpoint(deps, principal(request).userId, endpointId(request.params), request.body),
  );
  app.delete("/api/v1/me/webhooks/:id", { preValidation: noBody }, async (request, reply) => {
    await deleteEndpoint(deps, principal(request).userId, endpointId(request.params));
    return reply.code(204).send();
  });
  app.post(
    "/api/v1/me/webhooks/:id/rotate-secret",
    { preValidation: noBody, schema: { response: { 200: RotatedSecret } } },
    (request) => rotateSecret(deps, principal(request).userId, endpointId(request.params)),
  );
  app.post(
    "/api/v1/me/webhooks/:id/test",
    { preValidation: noBody, schema: { response: { 202: QueuedDelivery } } },
    async (request, reply) =>
      reply.code(202).send(await sendTest(deps, principal(request).userId, endpointId(request.params))),
  );
  app.get(
    "/api/v1/me/webhooks/:id/deliveries",
    { schema: { response: { 200: DeliveryPage } } },
    (request) => {
      const query = request.query as Query;
      const status = parseStatus(query);
      return listDeliveries(deps, principal(request).userId, endpointId(request.params), {
        status,
        ...pageParams(query),
      });
    },
  );
  app.post(
    "/api/v1/me/webhooks/:id/deliveries/:delivery_id/redeliver",
    { preValidation: noBody, schema: { response: { 202: QueuedDelivery } } },
    async (request, reply) => {
      const deliveryId = pathId(request.params, "delivery_id", "No such delivery for this endpoint.");
      return reply
        .code(202)
        .send(await redeliver(deps, principal(request).userId, endpointId(request.params), deliveryId));
    },
  );
  app.post(
    "/api/v1/me/webhooks/:id/recover",
    { schema: { response: { 202: Requeued } } },
    async (request, reply) =>
      reply
        .code(202)
        .send(await recover(deps, principal(request).userId, endpointId(request.params), request.body)),
  );
}
