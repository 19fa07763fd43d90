// The production server sets X-Forwarded-For from the connection, whatever the client sent.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const built = existsSync(new URL(".next/BUILD_ID", import.meta.url));
if (!built) {
  console.warn("server.test.ts skipped: no production build (run `npm run build`; make test does)");
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

describe.skipIf(!built)("server.mjs", () => {
  const seen: (string | undefined)[] = [];
  const gateway = createServer((request, response) => {
    seen.push(request.headers["x-forwarded-for"] as string | undefined);
    response.setHeader("content-type", "application/json");
    response.end('{"status":"ok"}');
  });
  let web: ReturnType<typeof spawn>;
  let webUrl = "";

  beforeAll(async () => {
    const gatewayPort = await listen(gateway);
    const probe = createServer();
    const webPort = await listen(probe);
    await new Promise((resolve) => probe.close(resolve));
    web = spawn(process.execPath, ["server.mjs", "-p", String(webPort), "-H", "127.0.0.1"], {
      cwd: new URL(".", import.meta.url),
      env: { ...process.env, GATEWAY_URL: `http://127.0.0.1:${gatewayPort}` },
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      web.stdout?.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("web listening")) resolve();
      });
      web.on("exit", (code) => reject(new Error(`server.mjs exited with ${code}`)));
    });
    webUrl = `http://127.0.0.1:${webPort}`;
  }, 30_000);

  afterAll(async () => {
    web?.kill("SIGTERM");
    await new Promise((resolve) => gateway.close(resolve));
  });

  it("replaces a client-supplied X-Forwarded-For with the peer address", async () => {
    const response = await fetch(`${webUrl}/api/health`, {
      headers: { "x-forwarded-for": "6.6.6.6" },
    });
    expect(response.status).toBe(200);
    expect(seen.at(-1)).toBe("127.0.0.1");
  });
});
