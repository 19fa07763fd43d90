"use client";

import { api } from "@/lib/api";
import { OptionalSection } from "../optional-section";
import { useSession } from "../shell/session";
import { UsageChart } from "../usage-chart";
import { DataTable } from "./data-table";
import { UsersSection } from "./users-section";

const renderUsage = (doc: unknown) => (
  <>
    <UsageChart doc={doc} label="Usage" />
    <DataTable doc={doc} />
  </>
);
const renderServers = (doc: unknown) => <DataTable doc={doc} />;

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
      <OptionalSection
        title="Usage"
        id="admin-usage-h"
        load={api.adminUsage}
        render={renderUsage}
      />
      <OptionalSection
        title="LLM servers"
        id="admin-servers-h"
        load={api.adminServers}
        render={renderServers}
      />
    </div>
  );
}
