import type { FastifyRequest, FastifyServerOptions } from "fastify";

/** A URL as logged: a stream ticket in the query is a credential, so its value is replaced. */
export const redactUrl = (url: string) => url.replace(/([?&]ticket=)[^&#]*/gi, "$1[redacted]");

/**
 * The server's pino options: JSON lines at `level`, with request ids, and never a credential —
 * no `Authorization` header (Fastify does not log headers anyway) and no ticket in a logged URL.
 */
export function loggerOptions(level: string): FastifyServerOptions["logger"] {
  return {
    level,
    redact: ["req.headers.authorization"],
    serializers: {
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: redactUrl(request.url),
        remoteAddress: request.ip,
      }),
    },
  };
}
