import type { FastifyInstance } from "fastify";

/** A route the app serves: its path pattern (`:name` parameters, `*` wildcards) and methods. */
export interface RegisteredRoute {
  path: string;
  methods: string[];
}

/**
 * Every route the app registered, read from Fastify's own route tree (`printRoutes`), so a suite
 * that walks them covers routes added later without being told. The tree prints one node a line,
 * indented four characters a level, each node's text continuing its parent's path:
 *
 *   ├── /api/v1/me/notifications (GET, HEAD)
 *   │   ├── /unread-count (GET, HEAD)
 */
export function registeredRoutes(app: FastifyInstance): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? "").length / 4;
    const path = (stack[depth - 1] ?? "") + m[2];
    stack[depth] = path;
    stack.length = depth + 1;
    if (m[3]) routes.push({ path, methods: m[3].split(", ") });
  }
  return routes;
}
