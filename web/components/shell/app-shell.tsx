"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { type ReactNode, useEffect, useState } from "react";
import { ConversationList } from "./conversation-list";
import { useSession } from "./session";
import { SignOutButton } from "./sign-out-button";
import { ThemeToggle } from "./theme-toggle";

export function AppShell({ children }: { children: ReactNode }) {
  const { user } = useSession();
  const pathname = usePathname();
  const [open, setOpen] = useState(false);

  // Close the drawer (phone layout) after navigating.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on route change only
  useEffect(() => setOpen(false), [pathname]);

  const nav = [
    { href: "/chat", label: "Chat" },
    { href: "/analyze", label: "Analyze" },
    { href: "/account", label: "Account" },
    ...(user.role === "admin" ? [{ href: "/admin", label: "Admin" }] : []),
  ];
  const isActive = (href: string) => pathname === href || pathname.startsWith(`${href}/`);

  return (
    <div className={open ? "shell drawer-open" : "shell"}>
      <header className="topbar">
        <button
          type="button"
          className="btn btn-ghost menu-toggle"
          aria-expanded={open}
          aria-controls="sidebar"
          onClick={() => setOpen((o) => !o)}
        >
          <span aria-hidden="true">☰</span>
          <span className="visually-hidden">Menu</span>
        </button>
        <Link href="/chat" className="brand-link">
          Local LLM Stack
        </Link>
        <nav aria-label="Main" className="mainnav">
          {nav.map((n) => (
            <Link key={n.href} href={n.href} aria-current={isActive(n.href) ? "page" : undefined}>
              {n.label}
            </Link>
          ))}
        </nav>
        <div className="topbar-end">
          <ThemeToggle />
          <span className="user-name" title={user.email}>
            {user.name || user.email}
          </span>
          <SignOutButton />
        </div>
      </header>
      <aside id="sidebar" className="sidebar" aria-label="Sidebar">
        <Link href="/chat" className="btn btn-primary btn-block new-chat">
          New chat
        </Link>
        <nav aria-label="Main (menu)" className="mainnav-mobile">
          {nav.map((n) => (
            <Link key={n.href} href={n.href} aria-current={isActive(n.href) ? "page" : undefined}>
              {n.label}
            </Link>
          ))}
        </nav>
        <ConversationList />
      </aside>
      <main id="main" className="content">
        {children}
      </main>
    </div>
  );
}
