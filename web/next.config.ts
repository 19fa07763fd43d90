import type { NextConfig } from "next";
import { gatewayUrl } from "./lib/env";

// Fail fast at build and at `next start` if GATEWAY_URL is set but invalid.
gatewayUrl();

// /api/*, /v1/* and /docs are proxied to the gateway by route handlers
// (app/api, app/v1, app/docs -> lib/proxy.ts), NOT by `rewrites()`: rewrites
// are serialised into .next/routes-manifest.json at `next build`, so a
// GATEWAY_URL given only to `next start` would be silently ignored.
const nextConfig: NextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
  // Pages get their security headers from proxy.ts; the build's own files at least nosniff.
  async headers() {
    return [
      {
        source: "/_next/static/:path*",
        headers: [{ key: "X-Content-Type-Options", value: "nosniff" }],
      },
    ];
  },
};

export default nextConfig;
