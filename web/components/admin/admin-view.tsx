"use client";

import { AdminPage } from "./admin-nav";
import { InvitationsSection } from "./invitations-section";
import { KeyLimitsSection } from "./key-limits-section";
import { ServersSection } from "./servers-section";
import { AdminUsageSection } from "./usage-section";
import { UsersSection } from "./users-section";

export function AdminView() {
  return (
    <AdminPage title="Admin">
      <UsersSection />
      <InvitationsSection />
      <KeyLimitsSection />
      <AdminUsageSection />
      <ServersSection />
    </AdminPage>
  );
}
