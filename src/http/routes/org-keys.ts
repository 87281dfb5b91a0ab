import type { FastifyInstance } from "fastify";
import type { Deps } from "../../deps.js";
import { forbidden } from "../../errors.js";
import { ApiKey, revokeOrgKeyAsMember } from "../../identity/keys.js";
import { principal } from "../auth.js";
import { pathId } from "../params.js";

/** User-side org administration: an owner or admin revokes an org key. */
export async function orgKeyRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.post(
    "/api/v1/orgs/:org_id/keys/:key_id/revoke",
    { schema: { response: { 200: ApiKey } } },
    (request) => {
      let orgId: number;
      try {
        orgId = pathId(request.params, "org_id", "org");
      } catch {
        // An org id that cannot exist is an org the caller does not administer.
        throw forbidden("Only an owner or admin of this org can revoke its keys.");
      }
      return revokeOrgKeyAsMember(
        deps,
        principal(request).userId,
        orgId,
        pathId(request.params, "key_id", "key"),
      );
    },
  );
}
