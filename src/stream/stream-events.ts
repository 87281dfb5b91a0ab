import { Type } from "typebox";

/**
 * The data of each live-stream event, so the server that sends them and the SDK that reads them
 * share one definition. `notification` carries the feed's own Notification object.
 */
export const StreamUnreadCount = Type.Object({ count: Type.Integer(), version: Type.Integer() });

/** Rows just marked read: their ids, or every row (mark-all-read). */
export const StreamRead = Type.Union([
  Type.Object({ ids: Type.Array(Type.Integer()) }),
  Type.Object({ all: Type.Literal(true) }),
]);

/** Too much was missed to replay (or the id was unknown): refetch, then the stream goes on from here. */
export const StreamReset = Type.Object({ last_event_id: Type.Integer() });
