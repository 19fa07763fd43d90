"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import type { ReactNode } from "react";
import { useSession } from "../shell/session";

const PAGES = [
  { href: "/admin", label: "Users and usage" },
  { href: "/admin/models", label: "Models" },
];

/**
 * An admin page: its heading, the links between the admin pages, and its sections; anyone
 * but an admin is told the page is not for them (the gateway refuses its API anyway).
 */
export function AdminPage({ title, children }: { title: string; children: ReactNode }) {
  const { user } = useSession();
  const pathname = usePathname();
  if (user.role !== "admin") {
    return (
      <div className="page">
        <h1>{title}</h1>
        <p role="alert" className="alert alert-error">
          Only administrators can see this page.
        </p>
      </div>
    );
  }
  return (
    <div className="page stack-lg">
      <h1>{title}</h1>
      <nav aria-label="Admin pages" className="subnav">
        {PAGES.map((p) => (
          <Link key={p.href} href={p.href} aria-current={pathname === p.href ? "page" : undefined}>
            {p.label}
          </Link>
        ))}
      </nav>
      {children}
    </div>
  );
}
