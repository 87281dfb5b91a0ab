import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import { ApiKey, revokeOrgKeyAsMember } from "../../identity/keys.js";
import { PathId, parseId } from "../../ids.js";
import { principal } from "../auth.js";
import { noBody } from "../no-body.js";
import { operation } from "../operation.js";

type Params = Record<string, string | undefined>;

// No 404 message on these ids: a malformed id parses to 0, which names nothing. The caller's
// standing in the org is checked first (403 for an org that cannot exist), then the key (404).
const OrgKeyParams = Type.Object({
  org_id: PathId("The org's id."),
  key_id: PathId("The org key's id."),
});

/** User-side org administration: an owner or admin revokes an org key. */
export async function orgKeyRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.post(
    "/api/v1/orgs/:org_id/keys/:key_id/revoke",
    {
      preValidation: noBody,
      schema: operation({
        operationId: "revokeOrgKey",
        summary: "Revoke an org key",
        description:
          "An owner or admin of the org revokes one of its org keys. Raises org.api_key.revoke once (shown to the key's user unless they revoked it themselves); a repeat answers the same revoked_at and raises nothing. Takes no body.",
        tag: "Orgs",
        auth: "key",
        params: OrgKeyParams,
        body: "none",
        success: { status: 200, description: "The key, revoked.", schema: ApiKey },
        errors: {
          403: "The caller is not an owner or admin of this org (or the org does not exist), or calls with an org key of another org.",
          404: "No such org key in this org.",
        },
      }),
    },
    (request) => {
      const params = request.params as Params;
      return revokeOrgKeyAsMember(deps, principal(request), parseId(params.org_id), parseId(params.key_id));
    },
  );
}
