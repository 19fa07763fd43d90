"use client";

import { useSession } from "../shell/session";
import { InvitationsSection } from "./invitations-section";
import { KeyLimitsSection } from "./key-limits-section";
import { ServersSection } from "./servers-section";
import { AdminUsageSection } from "./usage-section";
import { UsersSection } from "./users-section";

export function AdminView() {
  const { user } = useSession();
  if (user.role !== "admin") {
    return (
      <div className="page">
        <h1>Admin</h1>
        <p role="alert" className="alert alert-error">
          Only administrators can see this page.
        </p>
      </div>
    );
  }
  return (
    <div className="page stack-lg">
      <h1>Admin</h1>
      <UsersSection />
      <InvitationsSection />
      <KeyLimitsSection />
      <AdminUsageSection />
      <ServersSection />
    </div>
  );
}
