"use client";

import { api } from "@/lib/api";
import { OptionalSection } from "../optional-section";
import { UsageChart } from "../usage-chart";
import { ApiKeysSection } from "./api-keys-section";
import { DeleteAccountSection } from "./delete-account-section";
import { PasswordSection, ProfileSection } from "./profile-section";
import { TwoFactorSection } from "./two-factor-section";

const renderUsage = (doc: unknown) => <UsageChart doc={doc} label="Usage against quota" />;

export function AccountView() {
  return (
    <div className="page stack-lg">
      <h1>Account</h1>
      <ProfileSection />
      <OptionalSection
        title="Usage this period"
        id="usage-h"
        load={api.usage}
        render={renderUsage}
      />
      <ApiKeysSection />
      <PasswordSection />
      <TwoFactorSection />
      <DeleteAccountSection />
    </div>
  );
}
