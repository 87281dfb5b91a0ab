import { createServer, type Server } from "node:http";

/**
 * A webhook receiver for the benchmark: answers every POST 204 and records when each arrived
 * (epoch ms). Kept apart from the tests' receiver so that benchmarks never import from test/.
 */
export interface BenchReceiver {
  url: string;
  /** Arrival time of each request, in order. */
  received: { at: number }[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<BenchReceiver> {
  const received: { at: number }[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received.push({ at: Date.now() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
