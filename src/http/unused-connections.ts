import type { Server } from "node:http";
import type { Socket } from "node:net";

/**
 * Tracks connections that have not sent a request yet. Closing a server closes its idle
 * connections, and one a client has just opened looks idle until its request arrives — its
 * client already counts the request as sent, and would see a reset. Shutdown waits (briefly) for
 * those requests, then lets the server close.
 */
export function trackUnusedConnections(server: Server) {
  const unused = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    unused.add(socket);
    socket.once("close", () => unused.delete(socket));
  });
  server.on("request", (request) => unused.delete(request.socket));
  return {
    /** Resolves once every connection has sent a request, or after `graceMs`. */
    async settle(graceMs: number): Promise<void> {
      const deadline = performance.now() + graceMs;
      while (unused.size > 0 && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}
