import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import { operation } from "../operation.js";

/** `GET /metrics`: Prometheus's text format, behind the admin token. */
export async function metricsRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const { registry } = deps.metrics;
  app.get(
    "/metrics",
    {
      schema: operation({
        operationId: "getMetrics",
        summary: "Prometheus metrics",
        description:
          "This instance's metrics in Prometheus's text format: requests and their durations by route pattern and status, events ingested, notifications created, webhook attempts by outcome, the delivery queue, open streams, change-bus resyncs, pool connections, and the standard process and Node.js metrics. Scrape every instance.",
        tag: "Health",
        auth: "admin",
        success: {
          status: 200,
          description: "The metrics.",
          schema: Type.String({ description: "Prometheus text exposition format 0.0.4." }),
          contentType: "text/plain",
        },
      }),
    },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
}
