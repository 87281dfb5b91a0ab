// The floor: a bare node:http server doing Belfry's own data work for the read scenarios, and
// nothing else. It authenticates the key and reads the count or the page with the very functions
// Belfry runs (one statement, the same store and settings), and answers with the same status, ETag
// and body. No framework, rate limit, metrics, request id or logging: what is left between this
// and Belfry is what those cost. Between this and the bare baseline is the data work itself, which
// no HTTP layer can save: the highest ratio to bare any server doing this work reaches on this
// machine. Run by bench/reads.ts with Belfry's environment; needs `npm run build`.
import { createServer } from "node:http";
import { loadConfig } from "../dist/config.js";
import { createDeps } from "../dist/deps.js";
import { listNotifications, parseFeedQuery } from "../dist/feed/notifications.js";
import { feedEtag, notModified } from "../dist/http/feed-cache.js";
import { authenticate, authenticateWith } from "../dist/identity/authenticate.js";
import { pageFromRows, pageRead, withUnreadCount } from "../dist/identity/credential-reads.js";
import { storeOptions } from "../dist/server.js";
import { openMigratedStore } from "../dist/store/open-migrated-store.js";

const config = loadConfig();
const log = { warn: () => {}, info: () => {}, error: () => {} };
const store = await openMigratedStore(config.databaseUrl, storeOptions(config, log));
const deps = createDeps(store, { webhooks: config.webhooks });
const UNREAD = "/api/v1/me/notifications/unread-count";
const LIST = "/api/v1/me/notifications";

function send(res, status, headers, body) {
  if (body !== undefined) {
    headers["content-type"] = "application/json; charset=utf-8";
    headers["content-length"] = Buffer.byteLength(body);
  }
  res.writeHead(status, headers).end(body);
}

const feedHeaders = (userId, version) => ({
  etag: feedEtag(userId, version),
  "x-feed-version": String(version),
  "x-poll-interval": String(config.pollIntervalS),
  "cache-control": "private, no-cache",
});

async function answer(req, res) {
  const [path, search = ""] = (req.url ?? "").split("?");
  const conditional = req.headers["if-none-match"] !== undefined;
  if (path === UNREAD) {
    const { principal, rows } = await authenticateWith(deps, req.headers.authorization, withUnreadCount);
    const headers = feedHeaders(principal.userId, principal.feedVersion);
    // notModified reads only the request's headers, which a raw request has too.
    if (conditional && notModified({ headers: req.headers }, headers.etag)) return send(res, 304, headers);
    return send(res, 200, headers, JSON.stringify({ count: rows[0]?.unread ?? 0 }));
  }
  if (path === LIST) {
    // As Belfry does: a poll with an ETag reads the key alone (most are 304s), and the page after.
    const principal = conditional ? await authenticate(deps, req.headers.authorization) : undefined;
    if (principal) {
      const headers = feedHeaders(principal.userId, principal.feedVersion);
      if (notModified({ headers: req.headers }, headers.etag)) return send(res, 304, headers);
    }
    const filter = parseFeedQuery(Object.fromEntries(new URLSearchParams(search)));
    const read = principal ? undefined : pageRead(deps, filter);
    let userId;
    let page;
    if (read) {
      const one = await authenticateWith(deps, req.headers.authorization, read);
      userId = one.principal.userId;
      page = pageFromRows(one.rows, one.principal.feedVersion, filter);
    } else {
      userId = (principal ?? (await authenticate(deps, req.headers.authorization))).userId;
      page = await listNotifications(deps, userId, filter);
    }
    const { version, ...body } = page;
    return send(res, 200, feedHeaders(userId, version), JSON.stringify(body));
  }
  send(res, 404, {}, JSON.stringify({ error: { type: "not_found_error", message: "Not found." } }));
}

createServer((req, res) => {
  req.resume();
  answer(req, res).catch((error) =>
    send(res, error.status ?? 500, {}, JSON.stringify({ error: { message: String(error.message) } })),
  );
}).listen(Number(process.env.PORT), "127.0.0.1", () => process.send?.("ready"));
// An exit on SIGTERM (as the bench stops it) writes a CPU profile when run under --cpu-prof.
process.once("SIGTERM", () => process.exit(0));
