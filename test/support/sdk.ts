import type { FeedStreamEvent } from "../../src/sdk/types.js";
import type { BackendName } from "./backends.js";
import { type Harness, startHarness } from "./harness.js";
import { testWebhooks } from "./receiver.js";

/** The whole app on a fresh store, listening on a loopback port, for the SDK to talk to. */
export async function listeningHarness(
  backend: BackendName,
  pollIntervalS?: number,
): Promise<Harness & { url: string }> {
  const h = await startHarness(
    backend,
    { webhooks: testWebhooks() },
    pollIntervalS === undefined ? {} : { pollIntervalS },
  );
  await h.app.listen({ port: 0, host: "127.0.0.1" });
  const address = h.app.server.address();
  if (typeof address !== "object" || !address) throw new Error("not listening");
  return Object.assign(h, { url: `http://127.0.0.1:${address.port}` });
}

/** A stream being read in the background: every event so far, and how it ended. */
export interface Consumed {
  events: FeedStreamEvent[];
  /** Resolves when the iteration ends: undefined when it ended cleanly, else the error. */
  ended: Promise<unknown>;
  /** The ids of the `notification` events so far, in order. */
  notificationIds(): number[];
}

export function consume(stream: AsyncIterable<FeedStreamEvent>): Consumed {
  const events: FeedStreamEvent[] = [];
  const ended = (async () => {
    try {
      for await (const event of stream) events.push(event);
      return undefined;
    } catch (error) {
      return error;
    }
  })();
  return {
    events,
    ended,
    notificationIds: () => events.flatMap((e) => (e.type === "notification" ? [e.id] : [])),
  };
}
