import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import { unavailable } from "../../errors.js";
import { operation } from "../operation.js";

const READY_TIMEOUT_MS = 2000;

const Status = Type.Object({ status: Type.Literal("ok") }, { examples: [{ status: "ok" }] });

/** Liveness (never touches the store) and readiness (the store answers within 2 s). */
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
        description: "200 when the store answers within 2 s, else 503.",
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
