/** The `error.type` values of the error envelope `{"error": {"type", "message"}}`. */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "conflict_error"
  | "rate_limit_error"
  | "api_error"
  | "unavailable_error";

/**
 * The one `error.type` each error status carries. 413 shares 400's type: an oversized body is an
 * invalid request too.
 */
export const ERROR_TYPE_OF_STATUS = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  409: "conflict_error",
  413: "invalid_request_error",
  429: "rate_limit_error",
  500: "api_error",
  503: "unavailable_error",
} as const satisfies Record<number, ErrorType>;
export type ErrorStatus = keyof typeof ERROR_TYPE_OF_STATUS;

/**
 * The one error Belfry throws on purpose. The HTTP layer renders it as
 * `{"error": {"type", "message"}}` with `status`; the CLI prints `message`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const invalidRequest = (message: string) => new ApiError(400, "invalid_request_error", message);
export const unauthenticated = (message = "Invalid or missing API key.") =>
  new ApiError(401, "authentication_error", message);
export const forbidden = (message: string) => new ApiError(403, "permission_error", message);
export const notFound = (message: string) => new ApiError(404, "not_found_error", message);
export const conflict = (message: string) => new ApiError(409, "conflict_error", message);
export const tooLarge = (limit = 1024 * 1024) =>
  new ApiError(413, "invalid_request_error", `The request body is larger than ${limit / (1024 * 1024)} MiB.`);
export const unavailable = (message = "The store is unavailable; retry shortly.") =>
  new ApiError(503, "unavailable_error", message, { "retry-after": "1" });
