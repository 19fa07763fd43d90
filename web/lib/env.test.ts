import { describe, expect, it } from "vitest";
import { DEFAULT_GATEWAY_URL, EnvError, gatewayUrl, parseGatewayUrl } from "./env";

describe("parseGatewayUrl", () => {
  it("defaults when unset or blank", () => {
    expect(parseGatewayUrl(undefined)).toBe(DEFAULT_GATEWAY_URL);
    expect(parseGatewayUrl("")).toBe(DEFAULT_GATEWAY_URL);
    expect(parseGatewayUrl("   ")).toBe(DEFAULT_GATEWAY_URL);
  });

  it("accepts http and https URLs and strips the trailing slash", () => {
    expect(parseGatewayUrl("http://127.0.0.1:4000")).toBe("http://127.0.0.1:4000");
    expect(parseGatewayUrl("http://127.0.0.1:4000/")).toBe("http://127.0.0.1:4000");
    expect(parseGatewayUrl("https://gw.example:8443/prefix/")).toBe(
      "https://gw.example:8443/prefix",
    );
    expect(parseGatewayUrl(" http://localhost:4000 ")).toBe("http://localhost:4000");
  });

  it("rejects values that are not URLs, with a clear message", () => {
    expect(() => parseGatewayUrl("127.0.0.1:4000")).toThrow(EnvError);
    expect(() => parseGatewayUrl("not a url")).toThrow(/GATEWAY_URL must be an http\(s\) URL/);
  });

  it("rejects non-http schemes", () => {
    expect(() => parseGatewayUrl("ftp://127.0.0.1:4000")).toThrow(/GATEWAY_URL must use http/);
    expect(() => parseGatewayUrl("file:///etc/passwd")).toThrow(EnvError);
  });

  it("rejects credentials, query strings and fragments", () => {
    expect(() => parseGatewayUrl("http://u:p@127.0.0.1:4000")).toThrow(EnvError);
    expect(() => parseGatewayUrl("http://127.0.0.1:4000/?a=1")).toThrow(EnvError);
    expect(() => parseGatewayUrl("http://127.0.0.1:4000/#x")).toThrow(EnvError);
  });
});

describe("gatewayUrl", () => {
  it("reads GATEWAY_URL from the given environment", () => {
    expect(gatewayUrl({ GATEWAY_URL: "http://10.0.0.5:9000/" })).toBe("http://10.0.0.5:9000");
    expect(gatewayUrl({})).toBe(DEFAULT_GATEWAY_URL);
  });

  it("throws for an invalid GATEWAY_URL", () => {
    expect(() => gatewayUrl({ GATEWAY_URL: "gateway:4000" })).toThrow(EnvError);
  });
});
