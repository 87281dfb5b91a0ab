import type { ErrorType } from "../errors.js";

/** What every SDK error carries, whatever went wrong. */
export interface BelfryErrorFields {
  /** The HTTP status; 0 when no answer arrived (connection failure or timeout). */
  status: number;
  /** The envelope's `error.type`, or `connection_error` / `timeout_error` for transport failures. */
  type: ErrorType | "connection_error" | "timeout_error";
  message: string;
  /** The answer's `X-Request-Id`, to quote when asking about this request; undefined without an answer. */
  requestId?: string | undefined;
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  retryAfter?: number | undefined;
  cause?: unknown;
}

/**
 * The base of every error the SDK throws: Belfry's error envelope (`status`, `type`, `message`)
 * plus the request id. Catch a subclass for one kind of failure, or this for all of them.
 *
 * @example
 * try {
 *   await client.notifications.markRead(42);
 * } catch (error) {
 *   if (error instanceof NotFoundError) console.log("gone");
 *   else if (error instanceof BelfryError) console.error(error.type, error.message, error.requestId);
 *   else throw error;
 * }
 */
export class BelfryError extends Error {
  readonly status: number;
  readonly type: BelfryErrorFields["type"];
  readonly requestId: string | undefined;
  readonly retryAfter: number | undefined;

  constructor(fields: BelfryErrorFields) {
    super(fields.message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = new.target.name;
    this.status = fields.status;
    this.type = fields.type;
    this.requestId = fields.requestId;
    this.retryAfter = fields.retryAfter;
  }
}

/**
 * 400 or 413 `invalid_request_error`: the request itself is wrong; repeating it will not help.
 *
 * @example
 * await client.notifications.list({ read: true, unread: true }).catch((e) => e instanceof InvalidRequestError);
 */
export class InvalidRequestError extends BelfryError {}

/**
 * 401 `authentication_error`: the key or token is missing, unknown, revoked or expired.
 *
 * @example
 * if (error instanceof AuthenticationError) await signInAgain();
 */
export class AuthenticationError extends BelfryError {}

/**
 * 403 `permission_error`: authenticated, but not allowed (e.g. a session token on webhook routes).
 *
 * @example
 * if (error instanceof PermissionError) showMessage("Ask an org admin.");
 */
export class PermissionError extends BelfryError {}

/**
 * 404 `not_found_error`: no such resource for this caller (or no such route).
 *
 * @example
 * const endpoint = await client.webhooks.get(7).catch((e) => (e instanceof NotFoundError ? null : Promise.reject(e)));
 */
export class NotFoundError extends BelfryError {}

/**
 * 409 `conflict_error`: a duplicate unique value, or an event id reused with other content.
 *
 * @example
 * if (error instanceof ConflictError) console.log("that email is taken");
 */
export class ConflictError extends BelfryError {}

/**
 * 429 `rate_limit_error`; `retryAfter` says how long to wait. Retried automatically when safe.
 *
 * @example
 * if (error instanceof RateLimitError) setTimeout(retry, (error.retryAfter ?? 1) * 1000);
 */
export class RateLimitError extends BelfryError {}

/**
 * 503 `unavailable_error`: Belfry cannot reach its store right now. Retried automatically when safe.
 *
 * @example
 * if (error instanceof UnavailableError) console.log(`retry in ${error.retryAfter}s`);
 */
export class UnavailableError extends BelfryError {}

/**
 * Any other failure answer: a 500 `api_error`, or a 5xx from a proxy in front of Belfry.
 *
 * @example
 * if (error instanceof ApiError) report(error.requestId);
 */
export class ApiError extends BelfryError {}

/**
 * No answer arrived: the connection was refused, reset or could not be made. `cause` holds the
 * underlying error.
 *
 * @example
 * if (error instanceof ConnectionError) showOffline();
 */
export class ConnectionError extends BelfryError {}

/**
 * No answer within `timeoutMs`. A subclass of ConnectionError: the request may or may not have
 * been carried out.
 *
 * @example
 * new BelfryClient({ baseUrl, token, timeoutMs: 5000 }); // then catch TimeoutError
 */
export class TimeoutError extends ConnectionError {}

const BY_TYPE: Record<ErrorType, typeof BelfryError> = {
  invalid_request_error: InvalidRequestError,
  authentication_error: AuthenticationError,
  permission_error: PermissionError,
  not_found_error: NotFoundError,
  conflict_error: ConflictError,
  rate_limit_error: RateLimitError,
  unavailable_error: UnavailableError,
  api_error: ApiError,
};

const TYPE_BY_STATUS: Record<number, ErrorType> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  409: "conflict_error",
  413: "invalid_request_error",
  429: "rate_limit_error",
  503: "unavailable_error",
};

/**
 * The error for a non-2xx answer: the envelope's type when the body is Belfry's envelope, else
 * one guessed from the status (a proxy's HTML 502 is still an ApiError with status 502).
 */
export function errorFromResponse(
  status: number,
  body: unknown,
  requestId: string | undefined,
  retryAfter: number | undefined,
): BelfryError {
  const envelope = (body as { error?: { type?: unknown; message?: unknown } } | undefined)?.error;
  const given = typeof envelope?.type === "string" ? envelope.type : undefined;
  const type: ErrorType =
    given !== undefined && given in BY_TYPE ? (given as ErrorType) : (TYPE_BY_STATUS[status] ?? "api_error");
  const message =
    typeof envelope?.message === "string" ? envelope.message : `Belfry answered HTTP ${status}.`;
  const ErrorClass = BY_TYPE[type];
  return new ErrorClass({ status, type, message, requestId, retryAfter });
}
