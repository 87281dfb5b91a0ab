import { SETTINGS } from "../settings.js";

const COMMANDS = `Usage: belfry <command>

  serve      run the API and webhook delivery (the default; what npm start runs)
  worker     run webhook delivery only (scale delivery apart from the API)
  migrate    bring the store's schema up to date and exit
  admin      create users, keys, orgs, members; ingest an event (belfry admin --help)
  seed       fill the store with users and notifications for benchmarks (belfry seed --users N --per-user M)
  watch      print a user's unread count for a status bar, live (belfry watch --help)
  openapi    print the OpenAPI 3.1 document, or write it with --out <file> (no server, no database)
  demo       a console page with the bell and buttons that raise each event type (loopback, throwaway store)
  backup     copy the embedded store's file while it serves (belfry backup <path>)`;

/** `belfry --help`: the commands, then every setting with its default (docs/configuration.md has more). */
export function usage(): string {
  const width = Math.max(...SETTINGS.map((s) => s.name.length));
  const settings = SETTINGS.map((s) => `  ${s.name.padEnd(width)}  ${s.description} (default: ${s.default})`);
  return `${COMMANDS}

Settings come from the environment (docs/configuration.md):

${settings.join("\n")}`;
}
