import type { FastifyInstance } from "fastify";
import type { Deps } from "../../deps.js";
import { ApiKey, revokeOrgKeyAsMember } from "../../identity/keys.js";
import { principal } from "../auth.js";
import { parseId } from "../params.js";

/** User-side org administration: an owner or admin revokes an org key. */
export async function orgKeyRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  // Malformed ids parse to 0, which names nothing: the caller's role in the org is checked first
  // (403 for an org that cannot exist), then the key (404).
  app.post("/api/v1/orgs/:org_id/keys/:key_id/revoke", { schema: { response: { 200: ApiKey } } }, (request) =>
    revokeOrgKeyAsMember(
      deps,
      principal(request).userId,
      parseId(request.params, "org_id"),
      parseId(request.params, "key_id"),
    ),
  );
}
