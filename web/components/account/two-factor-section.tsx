"use client";

import { type FormEvent, useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { CopyButton } from "../copy-button";
import { SectionStatus } from "../section-status";
import { useSession } from "../shell/session";

/** Enable TOTP (password → secret URI + backup codes → confirm with a code) or disable it. */
export function TwoFactorSection() {
  const { user } = useSession();
  const [enabled, setEnabled] = useState(user.twoFactorEnabled);
  const [setup, setSetup] = useState<{ totpURI: string; backupCodes: string[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [ok, setOk] = useState<string | null>(null);

  async function start(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    setOk(null);
    const password = String(new FormData(e.currentTarget).get("password"));
    const res = await authClient.twoFactor.enable({ password });
    if (res.error) setError(authErrorMessage(res.error));
    else setSetup(res.data as { totpURI: string; backupCodes: string[] });
  }

  async function confirm(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    const code = String(new FormData(e.currentTarget).get("code")).replace(/\s+/g, "");
    const res = await authClient.twoFactor.verifyTotp({ code });
    if (res.error) setError(authErrorMessage(res.error, undefined, "two-factor"));
    else {
      setSetup(null);
      setEnabled(true);
      setOk("Two-factor authentication is on.");
    }
  }

  async function disable(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    setOk(null);
    const password = String(new FormData(e.currentTarget).get("password"));
    const res = await authClient.twoFactor.disable({ password });
    if (res.error) setError(authErrorMessage(res.error));
    else {
      setEnabled(false);
      setOk("Two-factor authentication is off.");
    }
  }

  const secret = setup ? (new URL(setup.totpURI).searchParams.get("secret") ?? "") : "";

  return (
    <section className="panel" aria-labelledby="tfa-h">
      <h2 id="tfa-h">Two-factor authentication</h2>
      <p className="muted">Status: {enabled ? "on" : "off"}</p>
      {setup ? (
        <form key="confirm" className="stack" onSubmit={confirm}>
          <p>
            Add this account to your authenticator app with the secret below (or the otpauth link),
            then enter the code it shows.
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
          <div className="field">
            <label htmlFor="tfa-code">Code from the app</label>
            <input
              id="tfa-code"
              name="code"
              inputMode="numeric"
              autoComplete="one-time-code"
              required
            />
          </div>
          <SectionStatus error={error} ok={ok} />
          <div>
            <button type="submit" className="btn btn-primary">
              Confirm and enable
            </button>
          </div>
        </form>
      ) : (
        <form
          key={enabled ? "disable" : "enable"}
          className="stack"
          onSubmit={enabled ? disable : start}
        >
          <div className="field">
            <label htmlFor="tfa-password">Password</label>
            <input
              id="tfa-password"
              name="password"
              type="password"
              autoComplete="current-password"
              required
            />
          </div>
          <SectionStatus error={error} ok={ok} />
          <div>
            <button type="submit" className={enabled ? "btn btn-danger" : "btn btn-primary"}>
              {enabled ? "Disable two-factor" : "Enable two-factor"}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
