"use client";

import { api } from "@/lib/api";
import type { UserUsage } from "@/lib/types";
import { OptionalSection } from "../optional-section";
import { ApiKeysSection } from "./api-keys-section";
import { DeleteAccountSection } from "./delete-account-section";
import { PasswordSection, ProfileSection } from "./profile-section";
import { TwoFactorSection } from "./two-factor-section";
import { UserUsageView } from "./usage-section";

const loadUsage = () => api.usage(30);
const renderUsage = (usage: UserUsage) => <UserUsageView usage={usage} />;

export function AccountView() {
  return (
    <div className="page stack-lg">
      <h1>Account</h1>
      <ProfileSection />
      <OptionalSection
        title="Usage this period"
        id="usage-h"
        load={loadUsage}
        render={renderUsage}
      />
      <ApiKeysSection />
      <PasswordSection />
      <TwoFactorSection />
      <DeleteAccountSection />
    </div>
  );
}
