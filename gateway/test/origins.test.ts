import { describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { isLoopbackHost, parsePublicUrl, publicOrigins } from "../src/config/origins.js";
import { loadConfig } from "../src/config.js";
import { catchConfigError, cookiesOf } from "./helpers.js";

const SECRETS = {
  AUTH_SECRET: "k3J9xQ2vL8pR5tW1yZ7aB4cD6eF0gH2iJ",
  LLM_SERVER_TOKEN: "llm-token-7f3a9c1e5b2d8f4a",
};

/** The configuration the gateway derives from these variables (production, valid secrets). */
function origins(env: Record<string, string>) {
  const config = loadConfig({ ...SECRETS, ...env });
  return { publicUrl: config.publicUrl, trusted: config.trustedOrigins, warnings: config.warnings };
}

describe("PUBLIC_URL: the origins derived from it", () => {
  it("defaults to http://localhost:3000 and trusts every loopback spelling of it", () => {
    expect(origins({})).toEqual({
      publicUrl: "http://localhost:3000",
      trusted: ["http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000"],
      warnings: [],
    });
  });

  it("keeps the port and the scheme of each loopback spelling", () => {
    expect(origins({ PUBLIC_URL: "http://127.0.0.1:8080" }).trusted).toEqual([
      "http://127.0.0.1:8080",
      "http://localhost:8080",
      "http://[::1]:8080",
    ]);
    expect(origins({ PUBLIC_URL: "https://localhost:8443/" }).trusted).toEqual([
      "https://localhost:8443",
      "https://127.0.0.1:8443",
      "https://[::1]:8443",
    ]);
  });

  it("spells the origin as a browser sends it: no trailing slash, no default port, lower case", () => {
    expect(origins({ PUBLIC_URL: "https://Chat.Example.ORG:443/" })).toMatchObject({
      publicUrl: "https://chat.example.org",
      trusted: ["https://chat.example.org"],
    });
    expect(origins({ PUBLIC_URL: "http://192.0.2.2:80/" }).publicUrl).toBe("http://192.0.2.2");
    expect(parsePublicUrl("PUBLIC_URL", "http://192.0.2.2:3000/")).toBe("http://192.0.2.2:3000");
  });

  it("trusts a non-loopback address alone (never a visitor's own localhost)", () => {
    expect(origins({ PUBLIC_URL: "http://192.0.2.2:3000" }).trusted).toEqual([
      "http://192.0.2.2:3000",
    ]);
    expect(origins({ PUBLIC_URL: "https://chat.example.org" }).trusted).toEqual([
      "https://chat.example.org",
    ]);
  });

  it("reads an IPv6 literal, compressed as browsers write it", () => {
    expect(origins({ PUBLIC_URL: "http://[2001:DB8:0:0::1]:3000/" }).trusted).toEqual([
      "http://[2001:db8::1]:3000",
    ]);
    expect(origins({ PUBLIC_URL: "http://[0:0:0:0:0:0:0:1]:3000" }).trusted).toEqual([
      "http://[::1]:3000",
      "http://localhost:3000",
      "http://127.0.0.1:3000",
    ]);
  });

  it("tells loopback names from others", () => {
    for (const host of ["localhost", "LOCALHOST", "127.0.0.1", "[::1]"]) {
      expect(isLoopbackHost(host)).toBe(true);
    }
    for (const host of ["192.0.2.2", "localhost.example.org", "[2001:db8::1]", "0.0.0.0"]) {
      expect(isLoopbackHost(host)).toBe(false);
    }
    expect(publicOrigins("http://0.0.0.0:3000")).toEqual(["http://0.0.0.0:3000"]);
  });

  it("adds CORS_ORIGINS after the derived origins, without duplicates", () => {
    expect(
      origins({
        PUBLIC_URL: "http://localhost:3000",
        CORS_ORIGINS: "http://127.0.0.1:3000,https://app.example",
      }).trusted,
    ).toEqual([
      "http://localhost:3000",
      "http://127.0.0.1:3000",
      "http://[::1]:3000",
      "https://app.example",
    ]);
  });

  it("reads the deprecated WEB_ORIGIN as PUBLIC_URL, with a warning", () => {
    expect(origins({ WEB_ORIGIN: "https://chat.example.org/" })).toEqual({
      publicUrl: "https://chat.example.org",
      trusted: ["https://chat.example.org"],
      warnings: [expect.stringContaining("rename it to PUBLIC_URL")],
    });
    expect(
      origins({ WEB_ORIGIN: "https://chat.example.org", PUBLIC_URL: "https://chat.example.org" })
        .warnings,
    ).toEqual([expect.stringContaining("remove it")]);
    expect(
      origins({ WEB_ORIGIN: "https://web.example.org", PUBLIC_URL: "https://chat.example.org" }),
    ).toEqual({
      publicUrl: "https://chat.example.org",
      trusted: ["https://chat.example.org", "https://web.example.org"],
      warnings: [expect.stringContaining("CORS_ORIGINS")],
    });
  });

  it.each([
    ["chat.example.org", /must be the address people open the app at/],
    ["ftp://chat.example.org", /must use http or https/],
    ["https://chat.example.org/app", /origin only.*did you mean "https:\/\/chat\.example\.org"/],
    ["https://chat.example.org/#x", /origin only/],
    ["https://admin:pw@chat.example.org", /origin only/],
  ])("refuses PUBLIC_URL=%j with a message saying what to write", (value, message) => {
    const err = catchConfigError(() => loadConfig({ ...SECRETS, PUBLIC_URL: value }));
    expect(err.variable).toBe("PUBLIC_URL");
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain("\n");
  });
});

describe("PUBLIC_URL: sign-up at each origin it allows", () => {
  /** A gateway built from environment variables alone, as `make run` starts it. */
  async function gatewayFrom(env: Record<string, string>) {
    return buildApp(
      loadConfig({ APP_ENV: "test", DATABASE_PATH: ":memory:", LOG_LEVEL: "silent", ...env }),
    );
  }

  async function signUpFrom(app: Awaited<ReturnType<typeof gatewayFrom>>, origin: string) {
    return app.inject({
      method: "POST",
      url: "/api/auth/sign-up/email",
      headers: { origin, "content-type": "application/json" },
      payload: {
        email: `u${Math.random().toString(36).slice(2)}@example.org`,
        password: "correct-horse-battery",
        name: "U",
      },
    });
  }

  it("accepts sign-up from both loopback spellings out of the box", async () => {
    const app = await gatewayFrom({});
    try {
      for (const origin of ["http://localhost:3000", "http://127.0.0.1:3000"]) {
        const res = await signUpFrom(app, origin);
        expect(res.statusCode, `${origin}: ${res.body}`).toBe(200);
        expect(cookiesOf(res.headers)).toContain("session_token=");
      }
      expect((await signUpFrom(app, "http://192.0.2.2:3000")).statusCode).toBe(403);
    } finally {
      await app.close();
    }
  });

  it("accepts sign-up from a non-loopback PUBLIC_URL, and only from it", async () => {
    const app = await gatewayFrom({ PUBLIC_URL: "http://192.0.2.2:3000/" });
    try {
      expect((await signUpFrom(app, "http://192.0.2.2:3000")).statusCode).toBe(200);
      expect((await signUpFrom(app, "http://localhost:3000")).statusCode).toBe(403);
    } finally {
      await app.close();
    }
  });

  it("marks cookies Secure and allows CORS for an https PUBLIC_URL", async () => {
    const app = await gatewayFrom({ PUBLIC_URL: "https://chat.example.org" });
    try {
      const res = await signUpFrom(app, "https://chat.example.org");
      expect(res.statusCode).toBe(200);
      expect(cookiesOf(res.headers)).toContain("__Secure-");
      const preflight = await app.inject({
        method: "OPTIONS",
        url: "/api/user",
        headers: {
          origin: "https://chat.example.org",
          "access-control-request-method": "GET",
        },
      });
      expect(preflight.headers["access-control-allow-origin"]).toBe("https://chat.example.org");
    } finally {
      await app.close();
    }
  });
});
