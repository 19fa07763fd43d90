import type { ReactNode } from "react";
import { AppShell } from "@/components/shell/app-shell";
import { SessionProvider } from "@/components/shell/session";

export default function AppLayout({ children }: { children: ReactNode }) {
  return (
    <SessionProvider
      fallback={
        <main id="main" className="container" aria-busy="true">
          <p className="muted">Loading…</p>
        </main>
      }
    >
      <AppShell>{children}</AppShell>
    </SessionProvider>
  );
}
