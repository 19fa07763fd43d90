import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import "./globals.css";

// Every page is rendered per request: its inline scripts carry that request's CSP nonce
// (proxy.ts). A page prerendered at build time would have no nonce and be blocked.
export const dynamic = "force-dynamic";

export const metadata: Metadata = {
  title: "Local LLM Stack",
  description: "A self-hosted LLM stack: model server, OpenAI-compatible gateway and web UI.",
};

export const viewport: Viewport = {
  colorScheme: "light dark",
  themeColor: [
    { media: "(prefers-color-scheme: light)", color: "#f7f7f8" },
    { media: "(prefers-color-scheme: dark)", color: "#111214" },
  ],
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <a className="skip-link" href="#main">
          Skip to content
        </a>
        {children}
      </body>
    </html>
  );
}
