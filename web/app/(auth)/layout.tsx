import Link from "next/link";
import type { ReactNode } from "react";

export default function AuthLayout({ children }: { children: ReactNode }) {
  return (
    <main id="main" className="auth-page">
      <div className="auth-card">
        <p className="brand">
          <Link href="/">Local LLM Stack</Link>
        </p>
        {children}
      </div>
    </main>
  );
}
