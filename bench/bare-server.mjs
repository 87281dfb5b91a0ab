// The baseline: a bare node:http server answering every request with a small JSON body, as
// cheap as a Node.js HTTP answer gets. Ratios in the benchmark are against this, measured in the
// same run on the same machine.
import { createServer } from "node:http";

const body = JSON.stringify({ count: 7 });
createServer((req, res) => {
  req.resume();
  req.on("end", () =>
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length }).end(body),
  );
}).listen(Number(process.env.PORT), "127.0.0.1", () => process.send?.("ready"));
