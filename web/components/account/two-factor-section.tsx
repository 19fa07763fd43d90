"use client";

import { useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { CopyButton } from "../copy-button";
import { Field } from "../field";
import { SectionStatus } from "../section-status";
import { useSession } from "../shell/session";
import { useFormAction } from "../use-form-action";

/** Enable TOTP (password → secret URI + backup codes → confirm with a code) or disable it. */
export function TwoFactorSection() {
  const { user } = useSession();
  const [enabled, setEnabled] = useState(user.twoFactorEnabled);
  const [setup, setSetup] = useState<{ totpURI: string; backupCodes: string[] } | null>(null);
  // One action for the three forms (start, confirm with a code, disable): one is shown at a time.
  const { outcome, pending, onSubmit } = useFormAction(async (form) => {
    if (setup) {
      const code = String(form.get("code")).replace(/\s+/g, "");
      const res = await authClient.twoFactor.verifyTotp({ code });
      if (res.error) return { error: authErrorMessage(res.error, undefined, "two-factor") };
      setSetup(null);
      setEnabled(true);
      return { ok: "Two-factor authentication is on." };
    }
    const password = String(form.get("password"));
    if (enabled) {
      const res = await authClient.twoFactor.disable({ password });
      if (res.error) return { error: authErrorMessage(res.error) };
      setEnabled(false);
      return { ok: "Two-factor authentication is off." };
    }
    const res = await authClient.twoFactor.enable({ password });
    if (res.error) return { error: authErrorMessage(res.error) };
    setSetup(res.data as { totpURI: string; backupCodes: string[] });
    return {};
  });

  return (
    <section className="panel" aria-labelledby="tfa-h">
      <h2 id="tfa-h">Two-factor authentication</h2>
      <p className="muted">Status: {enabled ? "on" : "off"}</p>
      {setup ? (
        <form key="confirm" className="stack" onSubmit={onSubmit}>
          <TotpSecret setup={setup} />
          <Field
            id="tfa-code"
            label="Code from the app"
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            required
          />
          <SectionStatus {...outcome} />
          <div>
            <button type="submit" className="btn btn-primary" disabled={pending}>
              Confirm and enable
            </button>
          </div>
        </form>
      ) : (
        <form key={enabled ? "disable" : "enable"} className="stack" onSubmit={onSubmit}>
          <Field
            id="tfa-password"
            label="Password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
          />
          <SectionStatus {...outcome} />
          <div>
            <button
              type="submit"
              className={enabled ? "btn btn-danger" : "btn btn-primary"}
              disabled={pending}
            >
              {enabled ? "Disable two-factor" : "Enable two-factor"}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

/** The new secret to add to an authenticator app (or its otpauth link), and the backup codes. */
function TotpSecret({ setup }: { setup: { totpURI: string; backupCodes: string[] } }) {
  const secret = new URL(setup.totpURI).searchParams.get("secret") ?? "";
  return (
    <>
      <p>
        Add this account to your authenticator app with the secret below (or the otpauth link), then
        enter the code it shows.
      </p>
      <div className="field">
        <label htmlFor="tfa-secret">Secret</label>
        <div className="inline">
          <input id="tfa-secret" value={secret} readOnly />
          <CopyButton text={secret} label="Copy secret" />
        </div>
      </div>
      <p className="small">
        <a href={setup.totpURI}>Open in authenticator app</a>
      </p>
      <details>
        <summary>Backup codes (store them safely)</summary>
        <ul className="codes">
          {setup.backupCodes.map((c) => (
            <li key={c}>
              <code>{c}</code>
            </li>
          ))}
        </ul>
      </details>
    </>
  );
}
