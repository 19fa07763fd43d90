"use client";

import { api } from "@/lib/api";
import { SectionStatus } from "../section-status";
import { useResource } from "../use-resource";
import { ApiKeysSection } from "./api-keys-section";
import { DeleteAccountSection } from "./delete-account-section";
import { PasswordSection, ProfileSection } from "./profile-section";
import { TwoFactorSection } from "./two-factor-section";
import { UserUsageView } from "./usage-section";

const loadUsage = () => api.usage(30);

/** GET /api/user/usage?days=30: quota meters and the last 30 days. */
export function AccountUsageSection() {
  const usage = useResource(loadUsage);
  return (
    <section className="panel" aria-labelledby="usage-h" data-testid="usage-h">
      <h2 id="usage-h">Usage this period</h2>
      {usage.data ? <UserUsageView usage={usage.data} /> : null}
      {!usage.data && !usage.error ? <p className="muted">Loading…</p> : null}
      {usage.error ? <SectionStatus error={usage.error} /> : null}
    </section>
  );
}

export function AccountView() {
  return (
    <div className="page stack-lg">
      <h1>Account</h1>
      <ProfileSection />
      <AccountUsageSection />
      <ApiKeysSection />
      <PasswordSection />
      <TwoFactorSection />
      <DeleteAccountSection />
    </div>
  );
}
