import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Deps } from "../deps.js";
import { createOrgKey, createPersonalKey, revokeKeyAsAdmin } from "../identity/keys.js";
import { addMember, createOrg } from "../identity/orgs.js";
import { createUser, updateUser } from "../identity/users.js";
import { parseId } from "../ids.js";
import { ingestEvent } from "../ingest/ingest.js";
import { parseJson } from "../json.js";
import { UsageError } from "./usage-error.js";

export const ADMIN_USAGE = `belfry admin <command>   (writes to the store DATABASE_URL names)

  user create --email <email> [--name <name>]
  user update <user_id> [--email <email>] [--name <name>]
  key create --user <user_id> --name <name> [--org <org_id>]
  key revoke <key_id>
  org create --name <name> --owner <user_id>
  member add --org <org_id> --user <user_id> --role admin|member
  ingest <file.json | ->      one event, as POST /admin/v1/events takes it

Each prints the created or changed resource as JSON, exactly as the HTTP API answers.`;

export { UsageError };

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
    const n = parseId(value);
    if (n === 0) throw new UsageError(`${what} must be a positive integer`);
    return n;
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
    return ingestEvent(deps, parseJson(readFileSync(file === "-" ? 0 : file, "utf8"), "The event"));
  }
  throw new UsageError(ADMIN_USAGE);
}
