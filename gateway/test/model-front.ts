import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

/** The models the front lists: two, with aliases, the first being the default. */
export const FRONT_MODELS = [
  { id: "fake-model", object: "model", kind: "base", aliases: ["fake", "Fake-Alias"] },
  { id: "other-model", object: "model", kind: "chat", aliases: ["other"] },
];

export interface ModelFront {
  url: string;
  close(): Promise<void>;
}

/**
 * A real HTTP server in front of the fake llm-server that lists two models with aliases
 * (as llm-server does with a models file) and relays every other request to the fake as is
 * (streams included). The fake answers any model name the same way.
 */
export async function startModelFront(upstream: string): Promise<ModelFront> {
  const target = new URL(upstream);
  const server = createServer((req, res) => {
    if (req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: FRONT_MODELS }));
      return;
    }
    const relay = request(
      {
        host: target.hostname,
        port: target.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    relay.on("error", () => res.destroy());
    res.on("close", () => relay.destroy());
    req.pipe(relay);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
