import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Deps } from "../../deps.js";
import {
  ApiKey,
  CreateKeyRequest,
  CreateOrgKeyRequest,
  createOrgKey,
  createPersonalKey,
  NewApiKey,
  revokeKeyAsAdmin,
} from "../../identity/keys.js";
import {
  AddMemberRequest,
  addMember,
  ChangeRoleRequest,
  CreateOrgRequest,
  changeMemberRole,
  createOrg,
  Membership,
  Org,
  removeMember,
} from "../../identity/orgs.js";
import { CreateSessionRequest, createSession, endSessions, Session } from "../../identity/sessions.js";
import { CreateUserRequest, createUser, UpdateUserRequest, User, updateUser } from "../../identity/users.js";
import { checkedId, PathId } from "../../ids.js";
import { ingestBatch, ingestEvent } from "../../ingest/ingest.js";
import {
  IngestBatchRequest,
  IngestBatchResult,
  IngestRequest,
  IngestResult,
} from "../../ingest/ingest-request.js";
import { noBody } from "../no-body.js";
import { operation } from "../operation.js";

/** Batches of up to 1,000 events may be larger than other bodies. */
const BATCH_BODY_LIMIT = 8 * 1024 * 1024;

const UserIdParam = PathId("The user's id.", "No user with that id.");
const OrgIdParam = PathId("The org's id.", "No org with that id.");
const UserParams = Type.Object({ user_id: UserIdParam });
const OrgParams = Type.Object({ org_id: OrgIdParam });
const MemberParams = Type.Object({ org_id: OrgIdParam, user_id: UserIdParam });
const KeyParams = Type.Object({ key_id: PathId("The key's id.", "No API key with that id.") });

const MEMBER_404 = "No such org, or the user is not a member of it.";

/** The platform side: users, keys, orgs and event ingest, behind the admin token. */
export async function adminRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const userId = (params: unknown) => checkedId(params, "user_id");
  const orgId = (params: unknown) => checkedId(params, "org_id");

  app.post(
    "/admin/v1/users",
    {
      schema: operation({
        operationId: "createUser",
        summary: "Create a user",
        description: "Emails are unique case-insensitively, and keep the spelling given.",
        tag: "Users",
        auth: "admin",
        body: CreateUserRequest,
        success: { status: 201, description: "The new user.", schema: User },
        errors: { 409: "A user with this email already exists." },
      }),
    },
    async (request, reply) => reply.code(201).send(await createUser(deps, request.body)),
  );
  app.patch(
    "/admin/v1/users/:user_id",
    {
      schema: operation({
        operationId: "updateUser",
        summary: "Change a user's email or name",
        description:
          "Raises admin.user.update when something changed; a PATCH that changes nothing raises nothing.",
        tag: "Users",
        auth: "admin",
        params: UserParams,
        body: UpdateUserRequest,
        success: { status: 200, description: "The user as it now is.", schema: User },
        errors: { 404: "No such user.", 409: "Another user has this email." },
      }),
    },
    (request) => updateUser(deps, userId(request.params), request.body),
  );
  app.post(
    "/admin/v1/users/:user_id/keys",
    {
      schema: operation({
        operationId: "createUserKey",
        summary: "Create a personal API key",
        description:
          "The secret `key` is in this answer only; Belfry keeps its hash. Raises admin.api_key.create.",
        tag: "Users",
        auth: "admin",
        params: UserParams,
        body: CreateKeyRequest,
        success: { status: 201, description: "The key, with its secret.", schema: NewApiKey },
        errors: { 404: "No such user." },
      }),
    },
    async (request, reply) =>
      reply.code(201).send(await createPersonalKey(deps, userId(request.params), request.body)),
  );
  app.post(
    "/admin/v1/users/:user_id/sessions",
    {
      schema: operation({
        operationId: "createSession",
        summary: "Mint a browser session token",
        description:
          "For the platform's backend: a short-lived `bfs_…` token the user's browser reads the feed with (feed, settings, stream; not webhooks or orgs). The token is in this answer only; Belfry keeps its hash. At most 1,000 live sessions per user: minting another ends the oldest.",
        tag: "Users",
        auth: "admin",
        params: UserParams,
        body: CreateSessionRequest,
        bodyOptional: true,
        success: { status: 201, description: "The session, with its token.", schema: Session },
        errors: { 404: "No such user." },
      }),
    },
    async (request, reply) =>
      reply.code(201).send(await createSession(deps, userId(request.params), request.body)),
  );
  app.delete(
    "/admin/v1/users/:user_id/sessions",
    {
      preValidation: noBody,
      schema: operation({
        operationId: "endSessions",
        summary: "End every session of a user",
        description:
          "Every session token of the user fails on the very next request, on every instance, and their open streams close. Takes no body.",
        tag: "Users",
        auth: "admin",
        params: UserParams,
        body: "none",
        success: { status: 204, description: "Every session of the user has ended.", schema: null },
        errors: { 404: "No such user." },
      }),
    },
    async (request, reply) => {
      await endSessions(deps, userId(request.params));
      return reply.code(204).send();
    },
  );
  app.post(
    "/admin/v1/keys/:key_id/revoke",
    {
      preValidation: noBody,
      schema: operation({
        operationId: "revokeKey",
        summary: "Revoke any API key",
        description:
          "The key stops working on the very next request, on every instance. Raises admin.api_key.revoke once; a repeat answers the same revoked_at and raises nothing. Takes no body.",
        tag: "Users",
        auth: "admin",
        params: KeyParams,
        body: "none",
        success: { status: 200, description: "The key, revoked.", schema: ApiKey },
        errors: { 404: "No such key." },
      }),
    },
    (request) => revokeKeyAsAdmin(deps, checkedId(request.params, "key_id")),
  );

  app.post(
    "/admin/v1/orgs",
    {
      schema: operation({
        operationId: "createOrg",
        summary: "Create an org",
        description: "Creates the org with its first owner.",
        tag: "Org administration",
        auth: "admin",
        body: CreateOrgRequest,
        success: { status: 201, description: "The new org.", schema: Org },
        errors: { 404: "No user with owner_user_id." },
      }),
    },
    async (request, reply) => reply.code(201).send(await createOrg(deps, request.body)),
  );
  app.post(
    "/admin/v1/orgs/:org_id/members",
    {
      schema: operation({
        operationId: "addOrgMember",
        summary: "Add a member",
        description: "Raises admin.org.member.add, shown to the org's other owners and admins.",
        tag: "Org administration",
        auth: "admin",
        params: OrgParams,
        body: AddMemberRequest,
        success: { status: 201, description: "The membership.", schema: Membership },
        errors: { 404: "No such org or user.", 409: "The user is already a member." },
      }),
    },
    async (request, reply) =>
      reply.code(201).send(await addMember(deps, orgId(request.params), request.body)),
  );
  app.patch(
    "/admin/v1/orgs/:org_id/members/:user_id",
    {
      schema: operation({
        operationId: "changeOrgMemberRole",
        summary: "Change a member's role",
        description: "Raises admin.org.member.role_change when the role changes.",
        tag: "Org administration",
        auth: "admin",
        params: MemberParams,
        body: ChangeRoleRequest,
        success: { status: 200, description: "The membership as it now is.", schema: Membership },
        errors: { 404: MEMBER_404, 409: "The org's last owner cannot be demoted." },
      }),
    },
    (request) => changeMemberRole(deps, orgId(request.params), userId(request.params), request.body),
  );
  app.delete(
    "/admin/v1/orgs/:org_id/members/:user_id",
    {
      preValidation: noBody,
      schema: operation({
        operationId: "removeOrgMember",
        summary: "Remove a member",
        description:
          "Revokes the member's org keys of this org and raises admin.org.member.remove. Takes no body.",
        tag: "Org administration",
        auth: "admin",
        params: MemberParams,
        body: "none",
        success: { status: 204, description: "Removed.", schema: null },
        errors: { 404: MEMBER_404, 409: "The org's last owner cannot be removed." },
      }),
    },
    async (request, reply) => {
      await removeMember(deps, orgId(request.params), userId(request.params));
      return reply.code(204).send();
    },
  );
  app.post(
    "/admin/v1/orgs/:org_id/keys",
    {
      schema: operation({
        operationId: "createOrgKey",
        summary: "Create an org key for a member",
        description: "The secret `key` is in this answer only. Raises org.api_key.create.",
        tag: "Org administration",
        auth: "admin",
        params: OrgParams,
        body: CreateOrgKeyRequest,
        success: { status: 201, description: "The key, with its secret.", schema: NewApiKey },
        errors: { 400: "The user is not a member of the org.", 404: "No such org." },
      }),
    },
    async (request, reply) =>
      reply.code(201).send(await createOrgKey(deps, orgId(request.params), request.body)),
  );

  app.post(
    "/admin/v1/events",
    {
      schema: operation({
        operationId: "ingestEvent",
        summary: "Ingest a producer event",
        description:
          "Records a system.* event and adds it to its user's feed (unless muted) and webhook queue, in one transaction: a 202 means committed. `id` is the producer's idempotency key: the same id with the same content answers duplicate: true and adds nothing. Checks run in this order: validation (400), the user (404), the id (409).",
        tag: "Events",
        auth: "admin",
        body: IngestRequest,
        success: { status: 202, description: "Recorded (or a duplicate).", schema: IngestResult },
        errors: {
          400: "A type that is not ingestible, data that does not match its type, or an occurred_at that is not RFC 3339 or more than 24 h ahead.",
          404: "No such user.",
          409: "This id was already used for an event with different content.",
        },
      }),
    },
    async (request, reply) => reply.code(202).send(await ingestEvent(deps, request.body)),
  );
  app.post(
    "/admin/v1/events/batch",
    {
      bodyLimit: BATCH_BODY_LIMIT,
      schema: operation({
        operationId: "ingestEvents",
        summary: "Ingest up to 1,000 events",
        description:
          "Ingests each event as POST /admin/v1/events does, all in one transaction. An event that fails is reported in its place in `results` ({id, error}); the others land.",
        tag: "Events",
        auth: "admin",
        body: IngestBatchRequest,
        success: { status: 202, description: "One result per event, in order.", schema: IngestBatchResult },
        errors: {
          400: "No events, or more than 1,000.",
          413: "The body is larger than 8 MiB (refused before authentication).",
        },
      }),
    },
    async (request, reply) => reply.code(202).send(await ingestBatch(deps, request.body)),
  );
}
