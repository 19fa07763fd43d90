import { describe, expect, it } from "vitest";
import { parsePublicUrl, publicOrigins } from "./env";
import { checkAddress, escapeHtml, wrongAddressPage } from "./wrong-address";

const ROOT = { pathname: "/", search: "" };

function opened(host: string, extra: Record<string, string> = {}) {
  return new Headers({ host, ...extra });
}

describe("PUBLIC_URL in the web", () => {
  it("is read as an origin, like the gateway reads it", () => {
    expect(parsePublicUrl(undefined)).toBeUndefined();
    expect(parsePublicUrl(" ")).toBeUndefined();
    expect(parsePublicUrl("http://LOCALHOST:3000/")).toBe("http://localhost:3000");
    expect(parsePublicUrl("https://chat.example.org:443")).toBe("https://chat.example.org");
    expect(parsePublicUrl("http://[2001:DB8::1]:3000")).toBe("http://[2001:db8::1]:3000");
    expect(() => parsePublicUrl("chat.example.org")).toThrow(/PUBLIC_URL must be the address/);
    expect(() => parsePublicUrl("https://chat.example.org/app")).toThrow(/origin only/);
    expect(() => parsePublicUrl("ftp://chat.example.org")).toThrow(/http or https/);
  });

  it("allows every loopback spelling of a loopback PUBLIC_URL, and nothing else", () => {
    expect(publicOrigins("http://localhost:3000")).toEqual([
      "http://localhost:3000",
      "http://127.0.0.1:3000",
      "http://[::1]:3000",
    ]);
    expect(publicOrigins("http://192.0.2.2:3000")).toEqual(["http://192.0.2.2:3000"]);
  });
});

describe("checkAddress", () => {
  it("lets through every address the app works at", () => {
    for (const host of ["localhost:3000", "127.0.0.1:3000", "[::1]:3000", "LocalHost:3000"]) {
      expect(checkAddress(opened(host), ROOT, "http://localhost:3000", false), host).toBeNull();
    }
    expect(checkAddress(opened("192.0.2.2:3000"), ROOT, "http://192.0.2.2:3000", false)).toBeNull();
    // Behind a TLS proxy that keeps the Host: the default port is implied on both sides.
    expect(
      checkAddress(opened("chat.example.org"), ROOT, "https://chat.example.org", false),
    ).toBeNull();
    expect(
      checkAddress(opened("chat.example.org:443"), ROOT, "https://chat.example.org", false),
    ).toBeNull();
  });

  it("names the address the page was opened at and where to go instead", () => {
    const wrong = checkAddress(
      opened("192.0.2.2:3000"),
      { pathname: "/sign-up", search: "?next=%2Fchat" },
      "http://localhost:3000",
      false,
    );
    expect(wrong).toEqual({
      opened: "http://192.0.2.2:3000",
      publicUrl: "http://localhost:3000",
      origins: ["http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000"],
      path: "/sign-up?next=%2Fchat",
    });
  });

  it("compares the port too", () => {
    expect(
      checkAddress(opened("localhost:3001"), ROOT, "http://localhost:3000", false)?.opened,
    ).toBe("http://localhost:3001");
  });

  it("believes X-Forwarded-Host and -Proto only with WEB_TRUST_PROXY=1", () => {
    const headers = opened("127.0.0.1:3000", {
      "x-forwarded-host": "chat.example.org, proxy.internal",
      "x-forwarded-proto": "https",
    });
    expect(checkAddress(headers, ROOT, "https://chat.example.org", true)).toBeNull();
    expect(checkAddress(headers, ROOT, "https://chat.example.org", false)?.opened).toBe(
      "http://127.0.0.1:3000",
    );
    const other = opened("127.0.0.1:3000", {
      "x-forwarded-host": "old.example.org",
      "x-forwarded-proto": "https",
    });
    expect(checkAddress(other, ROOT, "https://chat.example.org", true)?.opened).toBe(
      "https://old.example.org",
    );
  });

  it("treats a missing or malformed Host as a wrong address it cannot name", () => {
    for (const headers of [
      new Headers(),
      opened("a b"),
      opened("evil.example/path"),
      opened("u@h"),
    ]) {
      const wrong = checkAddress(headers, ROOT, "http://localhost:3000", false);
      expect(wrong?.opened).toBeNull();
    }
  });
});

describe("wrongAddressPage", () => {
  it("links to the same page at PUBLIC_URL and names the setting that would allow this address", () => {
    const html = wrongAddressPage(
      {
        opened: "http://192.0.2.2:3000",
        publicUrl: "http://localhost:3000",
        origins: ["http://localhost:3000", "http://127.0.0.1:3000"],
        path: "/setup?token=abc&x=1",
      },
      "n0nce",
    );
    expect(html).toContain('href="http://localhost:3000/setup?token=abc&amp;x=1"');
    expect(html).toContain("<code>PUBLIC_URL=http://192.0.2.2:3000</code>");
    expect(html).toContain("works only on the machine running the app");
    expect(html).toContain('<style nonce="n0nce">');
    expect(html).not.toContain("<script");
  });

  it("escapes what the request put in it", () => {
    const html = wrongAddressPage(
      {
        opened: null,
        publicUrl: "https://chat.example.org",
        origins: ["https://chat.example.org"],
        path: '/"><script>alert(1)</script>',
      },
      "n",
    );
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;");
    expect(html).toContain("an address it does not know");
    expect(html).not.toContain("works only on the machine");
    expect(escapeHtml(`<a href='x'>&"`)).toBe("&lt;a href=&#39;x&#39;&gt;&amp;&quot;");
  });
});
