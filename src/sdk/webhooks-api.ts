import type { HttpCore } from "./http.js";
import type { RequestOptions } from "./notifications-api.js";
import type {
  CreateWebhookEndpoint,
  DeliveryPage,
  DeliveryStatus,
  NewWebhookEndpoint,
  PageParams,
  QueuedDelivery,
  RecoverWebhookDeliveries,
  Requeued,
  RotatedSecret,
  UpdateWebhookEndpoint,
  WebhookEndpoint,
  WebhookEndpointPage,
} from "./types.js";

const BASE = "/api/v1/me/webhooks";
const at = (id: number) => `${BASE}/${encodeURIComponent(String(id))}`;

/**
 * The signed-in user's webhook endpoints and their deliveries: `client.webhooks`. Creating,
 * rotating, testing, redelivering and recovering are not retried after a failure that may have
 * reached the server (each would happen twice); the rest are.
 *
 * @example
 * const { items } = await client.webhooks.list();
 */
export class WebhooksApi {
  readonly #core: HttpCore;

  /** @internal Built by BelfryClient. */
  constructor(core: HttpCore) {
    this.#core = core;
  }

  async #call<T>(
    method: "GET" | "POST" | "PATCH" | "DELETE",
    path: string,
    retry: "safe" | "unsent",
    options: RequestOptions,
    extra: { body?: unknown; query?: Record<string, string | number | undefined> } = {},
  ): Promise<T> {
    const { data } = await this.#core.request<T>({ method, path, retry, signal: options.signal, ...extra });
    return data;
  }

  /**
   * Registers an endpoint. The answer's `secret` (`whsec_…`) is shown this once: store it to
   * verify deliveries with `verifyWebhook` from `belfry/webhooks`.
   *
   * @example
   * const { id, secret } = await client.webhooks.create({
   *   url: "https://example.com/hooks/belfry",
   *   event_types: ["system.payment.received"],
   * });
   */
  create(endpoint: CreateWebhookEndpoint, options: RequestOptions = {}): Promise<NewWebhookEndpoint> {
    return this.#call("POST", BASE, "unsent", options, { body: endpoint });
  }

  /**
   * One page of the caller's endpoints.
   *
   * @example
   * const { items, total } = await client.webhooks.list({ page: 1, page_size: 20 });
   */
  list(params: PageParams = {}, options: RequestOptions = {}): Promise<WebhookEndpointPage> {
    return this.#call("GET", BASE, "safe", options, { query: { ...params } });
  }

  /**
   * One endpoint (its secret is never shown again).
   *
   * @example
   * const endpoint = await client.webhooks.get(3);
   */
  get(id: number, options: RequestOptions = {}): Promise<WebhookEndpoint> {
    return this.#call("GET", at(id), "safe", options);
  }

  /**
   * Changes an endpoint's URL, event types, description, or pauses it (`enabled: false`).
   *
   * @example
   * await client.webhooks.update(3, { enabled: false });
   */
  update(id: number, changes: UpdateWebhookEndpoint, options: RequestOptions = {}): Promise<WebhookEndpoint> {
    return this.#call("PATCH", at(id), "safe", options, { body: changes });
  }

  /**
   * Deletes an endpoint and cancels what it had queued.
   *
   * @example
   * await client.webhooks.delete(3);
   */
  async delete(id: number, options: RequestOptions = {}): Promise<void> {
    await this.#call("DELETE", at(id), "safe", options);
  }

  /**
   * Issues a new signing secret; the old one keeps signing beside it for the overlap period.
   *
   * @example
   * const { secret } = await client.webhooks.rotateSecret(3);
   */
  rotateSecret(id: number, options: RequestOptions = {}): Promise<RotatedSecret> {
    return this.#call("POST", `${at(id)}/rotate-secret`, "unsent", options);
  }

  /**
   * Queues a `webhook.test` event to this endpoint.
   *
   * @example
   * const { delivery_id } = await client.webhooks.test(3);
   */
  test(id: number, options: RequestOptions = {}): Promise<QueuedDelivery> {
    return this.#call("POST", `${at(id)}/test`, "unsent", options);
  }

  /**
   * The endpoint's deliveries, newest first, each with every attempt.
   *
   * @example
   * const { items } = await client.webhooks.deliveries(3, { status: "failed" });
   */
  deliveries(
    id: number,
    params: PageParams & { status?: DeliveryStatus } = {},
    options: RequestOptions = {},
  ): Promise<DeliveryPage> {
    return this.#call("GET", `${at(id)}/deliveries`, "safe", options, { query: { ...params } });
  }

  /**
   * Restarts one delivery on a fresh schedule (sent now, or held while the endpoint is disabled).
   *
   * @example
   * await client.webhooks.redeliver(3, 118);
   */
  redeliver(id: number, deliveryId: number, options: RequestOptions = {}): Promise<QueuedDelivery> {
    const path = `${at(id)}/deliveries/${encodeURIComponent(String(deliveryId))}/redeliver`;
    return this.#call("POST", path, "unsent", options);
  }

  /**
   * Restarts every failed or exhausted delivery of the endpoint whose event was recorded at or
   * after `since` (RFC 3339).
   *
   * @example
   * const { requeued } = await client.webhooks.recover(3, { since: "2026-05-22T00:00:00Z" });
   */
  recover(id: number, body: RecoverWebhookDeliveries, options: RequestOptions = {}): Promise<Requeued> {
    return this.#call("POST", `${at(id)}/recover`, "unsent", options, { body });
  }
}
