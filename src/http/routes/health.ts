import type { FastifyInstance } from "fastify";
import type { Deps } from "../../deps.js";
import { unavailable } from "../../errors.js";

const READY_TIMEOUT_MS = 2000;

/** Liveness (never touches the store) and readiness (the store answers within 2 s). SPEC §8. */
export async function healthRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async () => {
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
    return { status: "ok" };
  });
}
