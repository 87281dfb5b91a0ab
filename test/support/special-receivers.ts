import { createServer, type Server, type ServerResponse } from "node:http";

/**
 * Receivers with behaviour test/support/receiver.ts does not script: answering late, answering
 * many requests at the same instant, listening on ::1, counting requests in flight, dropping a
 * kept connection.
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

/**
 * A server on 127.0.0.1 that answers 204 `delayMs` after each request arrived, and counts the
 * requests it holds at once — the most at any moment, in all and per path.
 */
export async function startCountingReceiver(delayMs: number) {
  let inFlight = 0;
  let most = 0;
  let arrived = 0;
  const byPath = new Map<string, { now: number; most: number }>();
  const server = createServer((req, res) => {
    const path = byPath.get(req.url ?? "") ?? { now: 0, most: 0 };
    byPath.set(req.url ?? "", path);
    inFlight++;
    path.now++;
    most = Math.max(most, inFlight);
    path.most = Math.max(path.most, path.now);
    req.resume();
    req.on("end", () => {
      arrived++;
      setTimeout(() => {
        inFlight--;
        path.now--;
        res.writeHead(204).end();
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    /** A URL of this server; each path is counted on its own. */
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    arrived: () => arrived,
    /** The most requests it held at once, in all or on one path. */
    most: (path?: string) => (path === undefined ? most : (byPath.get(path)?.most ?? 0)),
    close: closeServer(server),
  };
}

/**
 * A server on 127.0.0.1 that answers the first request on each connection 204 and keeps the
 * connection open, and drops the connection (no answer) when a second request arrives on it: a
 * server that closed a kept connection just as the client reused it.
 */
export async function startDroppingReceiver() {
  let arrived = 0;
  let connections = 0;
  const served = new WeakSet<object>();
  const server = createServer((req, res) => {
    arrived++;
    req.resume();
    if (served.has(req.socket)) {
      req.socket.destroy();
      return;
    }
    served.add(req.socket);
    req.on("end", () => res.writeHead(204).end());
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/dropping`,
    arrived: () => arrived,
    connections: () => connections,
    close: closeServer(server),
  };
}
