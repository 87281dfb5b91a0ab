import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import { unavailable } from "../../errors.js";
import { operation } from "../operation.js";

/**
 * The serving store's own bounds (store-timeouts.ts) already end a ping in about a second; this
 * one holds for any store, and keeps the answer inside the 2 s every route promises.
 */
const READY_TIMEOUT_MS = 1500;

const Status = Type.Object({ status: Type.Literal("ok") }, { examples: [{ status: "ok" }] });

/**
 * Liveness and readiness. `/healthz` never touches the store: a process that answers is alive,
 * and restarting it would not bring the store back. `/readyz` is 200 only when the store would
 * take a write now (`Store.ping`), else 503 `unavailable_error` with `Retry-After`, so a load
 * balancer sends traffic elsewhere during an outage and back when it ends.
 */
export async function healthRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.get(
    "/healthz",
    {
      schema: operation({
        operationId: "getHealth",
        summary: "Liveness",
        description: "200 while the process serves requests; never touches the store.",
        tag: "Health",
        auth: "none",
        store: false,
        success: { status: 200, description: "Alive.", schema: Status },
      }),
    },
    async () => ({ status: "ok" as const }),
  );
  app.get(
    "/readyz",
    {
      schema: operation({
        operationId: "getReadiness",
        summary: "Readiness",
        description:
          "200 when the store would take a write now (answered within 1.5 s), else 503 with Retry-After.",
        tag: "Health",
        auth: "none",
        success: { status: 200, description: "Ready: the store answers.", schema: Status },
      }),
    },
    async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(unavailable()), READY_TIMEOUT_MS);
      });
      try {
        await Promise.race([deps.store.ping(), timeout]);
      } catch {
        throw unavailable();
      } finally {
        clearTimeout(timer);
      }
      return { status: "ok" as const };
    },
  );
}
