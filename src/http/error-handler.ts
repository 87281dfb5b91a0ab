import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ApiError, invalidRequest, notFound, tooLarge, unavailable } from "../errors.js";
import { isUnavailable } from "../store/store.js";

/**
 * One renderer for every non-2xx answer (the `{"error": {type, message}}` envelope): our own `ApiError`s, Fastify's own refusals
 * (body too large, wrong content type, bad JSON, bad URL), unknown routes and methods, and bugs —
 * which become a bare 500 with nothing about the cause in the response.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0]?.slice(0, 200);
    sendError(reply, notFound(`No route for ${request.method} ${path}.`));
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    sendError(reply, toApiError(error, request));
  });
}

export function sendError(reply: FastifyReply, error: ApiError): void {
  // Refused before its body was read (authentication, size): close rather than read the rest.
  if (!reply.request.raw.complete) reply.header("connection", "close");
  void reply
    .code(error.status)
    .headers(error.headers)
    .send({ error: { type: error.type, message: error.message } });
}

function toApiError(error: FastifyError, request: FastifyRequest): ApiError {
  if (error instanceof ApiError) return error;
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return tooLarge(request.routeOptions.bodyLimit);
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return invalidRequest("Request bodies must be JSON, sent with Content-Type: application/json.");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return invalidRequest("The Content-Length header does not match the body.");
  }
  if (isUnavailable(error)) {
    request.log.warn({ err: { code: (error as { code?: string }).code } }, "store unavailable");
    return unavailable();
  }
  if (typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
    return error.statusCode === 404
      ? notFound("Not found.")
      : invalidRequest("The request could not be read.");
  }
  request.log.error({ err: error }, "unhandled error");
  return new ApiError(500, "api_error", "Something went wrong on our side; it has been logged.");
}
