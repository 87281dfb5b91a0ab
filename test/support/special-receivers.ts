import { createServer, type Server, type ServerResponse } from "node:http";

/**
 * Receivers with behaviour test/support/receiver.ts does not script: answering late, answering
 * many requests at the same instant, listening on ::1.
 */

const closeServer = (server: Server) => () =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/** An HTTP server on 127.0.0.1 that answers 204 only `delayMs` after a request arrived. */
export async function startSlowReceiver(delayMs: number) {
  let arrived = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      arrived++;
      setTimeout(() => res.writeHead(204).end(), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/slow`,
    arrived: () => arrived,
    close: closeServer(server),
  };
}

/**
 * A server on 127.0.0.1 that holds requests until `batch` of them are waiting, then answers them
 * all with `status` at once, so that their attempts are recorded side by side.
 */
export async function startBarrierReceiver(status: number) {
  let arrived = 0;
  let batch = 1;
  const waiting: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      arrived++;
      waiting.push(res);
      if (waiting.length >= batch) for (const r of waiting.splice(0)) r.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    arrived: () => arrived,
    /** How many requests to gather before answering (1 at first). */
    setBatch: (n: number) => {
      batch = n;
    },
    close: closeServer(server),
  };
}

/** A server on ::1 that counts the requests it gets. */
export async function startIpv6Sentinel() {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    hits: () => hits,
    close: closeServer(server),
  };
}
