import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import { IngestBatchResult, IngestResult, ingestBatch, ingestEvent } from "../../events/ingest.js";
import { ApiKey, createOrgKey, createPersonalKey, NewApiKey, revokeKeyAsAdmin } from "../../identity/keys.js";
import {
  addMember,
  changeMemberRole,
  createOrg,
  Membership,
  Org,
  removeMember,
} from "../../identity/orgs.js";
import { CreateSessionRequest, createSession, endSessions, Session } from "../../identity/sessions.js";
import { createUser, User, updateUser } from "../../identity/users.js";
import { pathId } from "../../ids.js";
import { ErrorEnvelope } from "../../schemas.js";
import { noBody } from "../no-body.js";

const UserIdParams = Type.Object({ user_id: Type.String({ description: "A user id" }) });
/** The refusals a session route may answer, each as the error envelope. */
const SESSION_ERRORS = {
  400: ErrorEnvelope,
  401: ErrorEnvelope,
  404: ErrorEnvelope,
  413: ErrorEnvelope,
  503: ErrorEnvelope,
};

/**
 * Route schemas here document the API; the domain modules validate (the CLI shares them, and
 * their messages name the field), so Fastify's own validation is switched off for these routes.
 */
const documentationOnly = () => () => true;

/** Batches of up to 1,000 events may be larger than other bodies. */
const BATCH_BODY_LIMIT = 8 * 1024 * 1024;

/** The platform side (SPEC §6): users, keys, orgs and event ingest, behind the admin token. */
export async function adminRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const userId = (p: unknown) => pathId(p, "user_id", "No user with that id.");
  const orgId = (p: unknown) => pathId(p, "org_id", "No org with that id.");

  app.post("/admin/v1/users", { schema: { response: { 201: User } } }, async (request, reply) =>
    reply.code(201).send(await createUser(deps, request.body)),
  );
  app.patch("/admin/v1/users/:user_id", { schema: { response: { 200: User } } }, (request) =>
    updateUser(deps, userId(request.params), request.body),
  );
  app.post(
    "/admin/v1/users/:user_id/keys",
    { schema: { response: { 201: NewApiKey } } },
    async (request, reply) =>
      reply.code(201).send(await createPersonalKey(deps, userId(request.params), request.body)),
  );
  app.post(
    "/admin/v1/users/:user_id/sessions",
    {
      validatorCompiler: documentationOnly,
      schema: {
        params: UserIdParams,
        body: CreateSessionRequest,
        response: { 201: Session, ...SESSION_ERRORS },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await createSession(deps, userId(request.params), request.body)),
  );
  app.delete(
    "/admin/v1/users/:user_id/sessions",
    {
      preValidation: noBody,
      validatorCompiler: documentationOnly,
      schema: {
        params: UserIdParams,
        response: {
          204: Type.Null({ description: "Every session of the user has ended." }),
          ...SESSION_ERRORS,
        },
      },
    },
    async (request, reply) => {
      await endSessions(deps, userId(request.params));
      return reply.code(204).send();
    },
  );
  app.post(
    "/admin/v1/keys/:key_id/revoke",
    { preValidation: noBody, schema: { response: { 200: ApiKey } } },
    (request) => revokeKeyAsAdmin(deps, pathId(request.params, "key_id", "No API key with that id.")),
  );

  app.post("/admin/v1/orgs", { schema: { response: { 201: Org } } }, async (request, reply) =>
    reply.code(201).send(await createOrg(deps, request.body)),
  );
  app.post(
    "/admin/v1/orgs/:org_id/members",
    { schema: { response: { 201: Membership } } },
    async (request, reply) =>
      reply.code(201).send(await addMember(deps, orgId(request.params), request.body)),
  );
  app.patch(
    "/admin/v1/orgs/:org_id/members/:user_id",
    { schema: { response: { 200: Membership } } },
    (request) => changeMemberRole(deps, orgId(request.params), userId(request.params), request.body),
  );
  app.delete("/admin/v1/orgs/:org_id/members/:user_id", { preValidation: noBody }, async (request, reply) => {
    await removeMember(deps, orgId(request.params), userId(request.params));
    return reply.code(204).send();
  });
  app.post(
    "/admin/v1/orgs/:org_id/keys",
    { schema: { response: { 201: NewApiKey } } },
    async (request, reply) =>
      reply.code(201).send(await createOrgKey(deps, orgId(request.params), request.body)),
  );

  app.post("/admin/v1/events", { schema: { response: { 202: IngestResult } } }, async (request, reply) =>
    reply.code(202).send(await ingestEvent(deps, request.body)),
  );
  app.post(
    "/admin/v1/events/batch",
    { bodyLimit: BATCH_BODY_LIMIT, schema: { response: { 202: IngestBatchResult } } },
    async (request, reply) => reply.code(202).send(await ingestBatch(deps, request.body)),
  );
}
