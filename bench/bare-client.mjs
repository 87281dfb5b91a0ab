// The webhook baseline: a bare node:http client with keep-alive connections (one Agent, pooled per
// origin) that replays the requests Belfry delivered — same receivers, paths, headers and bodies —
// with the same number in flight, in a process of its own as Belfry's worker is. It reads
// {file, concurrency} from its parent, where `file` holds the requests as JSON, and answers
// {seconds, cpuMs, failed} once every request has been answered.
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";

process.once("message", ({ file, concurrency }) => {
  const requests = JSON.parse(readFileSync(file, "utf8"));
  const agent = new Agent({ keepAlive: true, scheduling: "lifo" });
  let failed = 0;
  const post = (r) =>
    new Promise((resolve) => {
      const req = request({
        host: "127.0.0.1",
        port: r.port,
        path: r.path,
        method: "POST",
        agent,
        headers: { ...r.headers, "content-length": Buffer.byteLength(r.body) },
      });
      req.on("response", (res) => {
        if (res.statusCode < 200 || res.statusCode >= 300) failed++;
        res.resume().on("end", resolve);
      });
      req.on("error", () => {
        failed++;
        resolve();
      });
      req.end(r.body);
    });
  const started = performance.now();
  const cpu = process.cpuUsage();
  let next = 0;
  Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) await post(requests[next++]);
    }),
  ).then(() => {
    const { user, system } = process.cpuUsage(cpu);
    process.send({ seconds: (performance.now() - started) / 1000, cpuMs: (user + system) / 1000, failed });
    agent.destroy();
  });
});
process.send("ready");
