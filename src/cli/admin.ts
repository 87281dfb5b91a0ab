import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Deps } from "../deps.js";
import { invalidRequest } from "../errors.js";
import { ingestEvent } from "../events/ingest.js";
import { jsonProblem } from "../http/json-body.js";
import { createOrgKey, createPersonalKey, revokeKeyAsAdmin } from "../identity/keys.js";
import { addMember, createOrg } from "../identity/orgs.js";
import { createUser, updateUser } from "../identity/users.js";

export const ADMIN_USAGE = `belfry admin <command>   (writes to the store DATABASE_URL names)

  user create --email <email> [--name <name>]
  user update <user_id> [--email <email>] [--name <name>]
  key create --user <user_id> --name <name> [--org <org_id>]
  key revoke <key_id>
  org create --name <name> --owner <user_id>
  member add --org <org_id> --user <user_id> --role admin|member
  ingest <file.json | ->      one event, as POST /admin/v1/events takes it

Each prints the created or changed resource as JSON, exactly as the HTTP API answers.`;

export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Runs one admin command through the same library functions the HTTP routes call, so the CLI
 * validates, raises events and answers exactly like the API.
 */
export async function runAdmin(deps: Deps, argv: string[]): Promise<unknown> {
  const [noun, verb, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      email: { type: "string" },
      name: { type: "string" },
      user: { type: "string" },
      org: { type: "string" },
      owner: { type: "string" },
      role: { type: "string" },
    },
  });
  const id = (value: string | undefined, what: string) => {
    if (value === undefined || !/^[1-9]\d*$/.test(value))
      throw new UsageError(`${what} must be a positive integer`);
    return Number(value);
  };
  switch (`${noun} ${verb}`) {
    case "user create":
      return createUser(deps, { email: values.email, name: values.name });
    case "user update":
      return updateUser(deps, id(positionals[0], "user_id"), { email: values.email, name: values.name });
    case "key create":
      return values.org === undefined
        ? createPersonalKey(deps, id(values.user, "--user"), { name: values.name })
        : createOrgKey(deps, id(values.org, "--org"), {
            user_id: id(values.user, "--user"),
            name: values.name,
          });
    case "key revoke":
      return revokeKeyAsAdmin(deps, id(positionals[0], "key_id"));
    case "org create":
      return createOrg(deps, { name: values.name, owner_user_id: id(values.owner, "--owner") });
    case "member add":
      return addMember(deps, id(values.org, "--org"), {
        user_id: id(values.user, "--user"),
        role: values.role,
      });
  }
  if (noun === "ingest") {
    const file = verb ?? "-";
    return ingestEvent(deps, readJson(readFileSync(file === "-" ? 0 : file, "utf8")));
  }
  throw new UsageError(ADMIN_USAGE);
}

function readJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidRequest("The event is not valid JSON.");
  }
  const problem = jsonProblem(value);
  if (problem !== undefined) throw invalidRequest(problem);
  return value;
}
