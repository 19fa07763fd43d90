// The production server for the web app: Next.js's own request handler behind a plain Node
// HTTP server that owns the socket. It exists for one reason: `next start` passes on an
// `X-Forwarded-For` header sent by the client, and the gateway keys its per-IP sign-in
// throttling on it. Here the header is set from the connection itself, unless
// WEB_TRUST_PROXY=1 says a reverse proxy in front already set it.
//
//   node server.mjs [-p PORT] [-H HOST]
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import next from "next";

const { values } = parseArgs({
  options: { port: { type: "string", short: "p" }, hostname: { type: "string", short: "H" } },
});
const port = Number(values.port ?? process.env.PORT ?? 3000);
const hostname = values.hostname ?? "0.0.0.0";
const trustProxy = process.env.WEB_TRUST_PROXY === "1";

const app = next({ dev: false, dir: import.meta.dirname, hostname, port });
const handle = app.getRequestHandler();
await app.prepare();

const server = createServer((request, response) => {
  const peer = request.socket.remoteAddress ?? "";
  const forwarded = request.headers["x-forwarded-for"];
  request.headers["x-forwarded-for"] = trustProxy && forwarded ? `${forwarded}, ${peer}` : peer;
  handle(request, response);
});
server.listen(port, hostname, () => {
  console.log(`web listening on http://${hostname}:${port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
