import type { FastifyInstance } from "fastify";
import type { Deps } from "../../deps.js";
import { ApiKey, revokeOrgKeyAsMember } from "../../identity/keys.js";
import { parseId } from "../../ids.js";
import { principal } from "../auth.js";
import { noBody } from "../no-body.js";

type Params = Record<string, string | undefined>;

/** User-side org administration: an owner or admin revokes an org key. */
export async function orgKeyRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  // Malformed ids parse to 0, which names nothing: the caller's standing in the org is checked
  // first (403 for an org that cannot exist), then the key (404).
  app.post(
    "/api/v1/orgs/:org_id/keys/:key_id/revoke",
    { preValidation: noBody, schema: { response: { 200: ApiKey } } },
    (request) => {
      const params = request.params as Params;
      return revokeOrgKeyAsMember(deps, principal(request), parseId(params.org_id), parseId(params.key_id));
    },
  );
}
