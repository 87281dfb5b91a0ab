import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import { checkedId, PathId, pathId } from "../../ids.js";
import { sendTestEvent } from "../../ingest/test-event.js";
import { PageQuery, pageParams, type Query } from "../../query-params.js";
import {
  DeliveryPage,
  DeliveryStatusQuery,
  listDeliveries,
  parseStatus,
  QueuedDelivery,
  RecoverRequest,
  Requeued,
  recoverDeliveries,
  redeliver,
} from "../../webhooks/deliveries.js";
import {
  CreateWebhookEndpointRequest,
  createEndpoint,
  deleteEndpoint,
  findEndpoint,
  listEndpoints,
  NewWebhookEndpoint,
  RotatedSecret,
  rotateSecret,
  toEndpoint,
  UpdateWebhookEndpointRequest,
  updateEndpoint,
  WebhookEndpoint,
  WebhookEndpointPage,
} from "../../webhooks/endpoints.js";
import { principal } from "../auth.js";
import { noBody } from "../no-body.js";
import { type OperationSpec, operation } from "../operation.js";

const NO_ENDPOINT = "No such webhook endpoint.";
const NO_DELIVERY = "No such delivery for this endpoint.";
const EndpointParams = Type.Object({ id: PathId("The endpoint's id.", NO_ENDPOINT) });
// Checked in this order: a malformed delivery id has always been named first.
const DeliveryParams = Type.Object({
  delivery_id: PathId("The delivery's id.", NO_DELIVERY),
  id: PathId("The endpoint's id.", NO_ENDPOINT),
});
// The list checks ?status= before the endpoint, so its id is checked by the route (no 404 here).
const DeliveriesParams = Type.Object({ id: PathId("The endpoint's id.") });
const DeliveriesQuery = Type.Object({ ...DeliveryStatusQuery.properties, ...PageQuery });
const EndpointsQuery = Type.Object(PageQuery);

/** The parts every webhook operation shares: the tag, the caller's key, and a 404 for others'. */
const webhookOperation = (spec: Omit<OperationSpec, "tag" | "auth">) =>
  operation({
    tag: "Webhooks",
    auth: "key",
    ...spec,
    errors: { 404: "No such endpoint of the caller's (another user's is a 404 too).", ...spec.errors },
  });

/** The caller's webhook endpoints and their deliveries (another user's endpoint is a 404). */
export async function webhookRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const endpointId = (params: unknown) => checkedId(params, "id");

  app.post(
    "/api/v1/me/webhooks",
    {
      schema: operation({
        operationId: "createWebhookEndpoint",
        summary: "Create a webhook endpoint",
        description:
          "The signing secret (whsec_…) is in this answer only. URLs must be https (http only when the server allows it) and must not name or resolve to a private, loopback or other non-public address unless the server allows that network.",
        tag: "Webhooks",
        auth: "key",
        body: CreateWebhookEndpointRequest,
        success: { status: 201, description: "The endpoint, with its secret.", schema: NewWebhookEndpoint },
        errors: {
          400: "A URL that is not absolute, not https, has credentials or a fragment, or names a refused address; or the user already has 20 endpoints.",
        },
      }),
    },
    async (request, reply) =>
      reply.code(201).send(await createEndpoint(deps, principal(request).userId, request.body)),
  );
  app.get(
    "/api/v1/me/webhooks",
    {
      schema: operation({
        operationId: "listWebhookEndpoints",
        summary: "List webhook endpoints",
        description: "The caller's endpoints, newest first.",
        tag: "Webhooks",
        auth: "key",
        querystring: EndpointsQuery,
        success: { status: 200, description: "One page of endpoints.", schema: WebhookEndpointPage },
        errors: { 400: "page or page_size out of its rules." },
      }),
    },
    (request) => {
      const { page, pageSize } = pageParams(request.query as Query);
      return listEndpoints(deps, principal(request).userId, page, pageSize);
    },
  );
  app.get(
    "/api/v1/me/webhooks/:id",
    {
      schema: webhookOperation({
        operationId: "getWebhookEndpoint",
        summary: "Get a webhook endpoint",
        description: "One of the caller's endpoints.",
        params: EndpointParams,
        success: { status: 200, description: "The endpoint.", schema: WebhookEndpoint },
      }),
    },
    async (request) =>
      toEndpoint(await findEndpoint(deps, principal(request).userId, endpointId(request.params))),
  );
  app.patch(
    "/api/v1/me/webhooks/:id",
    {
      schema: webhookOperation({
        operationId: "updateWebhookEndpoint",
        summary: "Change a webhook endpoint",
        description:
          "Changes the URL, event types or description, or disables (enabled: false, new deliveries are held) and re-enables (held deliveries go out) the endpoint.",
        params: EndpointParams,
        body: UpdateWebhookEndpointRequest,
        success: { status: 200, description: "The endpoint as it now is.", schema: WebhookEndpoint },
        errors: { 400: "A URL that is not acceptable (see create)." },
      }),
    },
    (request) => updateEndpoint(deps, principal(request).userId, endpointId(request.params), request.body),
  );
  app.delete(
    "/api/v1/me/webhooks/:id",
    {
      preValidation: noBody,
      schema: webhookOperation({
        operationId: "deleteWebhookEndpoint",
        summary: "Delete a webhook endpoint",
        description: "The endpoint is gone at once and what it had queued is cancelled. Takes no body.",
        params: EndpointParams,
        body: "none",
        success: { status: 204, description: "Deleted.", schema: null },
      }),
    },
    async (request, reply) => {
      await deleteEndpoint(deps, principal(request).userId, endpointId(request.params));
      return reply.code(204).send();
    },
  );
  app.post(
    "/api/v1/me/webhooks/:id/rotate-secret",
    {
      preValidation: noBody,
      schema: webhookOperation({
        operationId: "rotateWebhookSecret",
        summary: "Rotate the signing secret",
        description:
          "A new secret; deliveries are signed with both the new and the previous one for the rotation overlap (a day by default). Takes no body.",
        params: EndpointParams,
        body: "none",
        success: { status: 200, description: "The new secret, shown this once.", schema: RotatedSecret },
      }),
    },
    (request) => rotateSecret(deps, principal(request).userId, endpointId(request.params)),
  );
  app.post(
    "/api/v1/me/webhooks/:id/test",
    {
      preValidation: noBody,
      schema: webhookOperation({
        operationId: "sendWebhookTest",
        summary: "Send a test event",
        description:
          "Queues a webhook.test event for this endpoint alone, whatever its event types. Takes no body.",
        params: EndpointParams,
        body: "none",
        success: { status: 202, description: "Queued.", schema: QueuedDelivery },
      }),
    },
    async (request, reply) =>
      reply.code(202).send(await sendTestEvent(deps, principal(request).userId, endpointId(request.params))),
  );
  app.get(
    "/api/v1/me/webhooks/:id/deliveries",
    {
      schema: webhookOperation({
        operationId: "listWebhookDeliveries",
        summary: "List deliveries",
        description: "The endpoint's deliveries, newest first, each with every attempt.",
        params: DeliveriesParams,
        querystring: DeliveriesQuery,
        success: { status: 200, description: "One page of deliveries.", schema: DeliveryPage },
        errors: { 400: "status, page or page_size out of its rules." },
      }),
    },
    (request) => {
      const query = request.query as Query;
      const status = parseStatus(query);
      return listDeliveries(deps, principal(request).userId, pathId(request.params, "id", NO_ENDPOINT), {
        status,
        ...pageParams(query),
      });
    },
  );
  app.post(
    "/api/v1/me/webhooks/:id/deliveries/:delivery_id/redeliver",
    {
      preValidation: noBody,
      schema: webhookOperation({
        operationId: "redeliverWebhook",
        summary: "Send a delivery again",
        description:
          "Sends the delivery again on a fresh schedule (held while the endpoint is disabled). Takes no body.",
        params: DeliveryParams,
        body: "none",
        success: { status: 202, description: "Queued.", schema: QueuedDelivery },
        errors: { 404: "No such endpoint of the caller's, or no such delivery of it." },
      }),
    },
    async (request, reply) => {
      const deliveryId = checkedId(request.params, "delivery_id");
      return reply
        .code(202)
        .send(await redeliver(deps, principal(request).userId, endpointId(request.params), deliveryId));
    },
  );
  app.post(
    "/api/v1/me/webhooks/:id/recover",
    {
      schema: webhookOperation({
        operationId: "recoverWebhookDeliveries",
        summary: "Requeue failed deliveries",
        description:
          "Restarts every failed or exhausted delivery of events recorded at or after `since` (held while the endpoint is disabled).",
        params: EndpointParams,
        body: RecoverRequest,
        success: { status: 202, description: "How many were requeued.", schema: Requeued },
        errors: { 400: "since is not an RFC 3339 date-time." },
      }),
    },
    async (request, reply) =>
      reply
        .code(202)
        .send(
          await recoverDeliveries(deps, principal(request).userId, endpointId(request.params), request.body),
        ),
  );
}
