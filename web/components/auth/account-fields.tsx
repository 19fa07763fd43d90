import { authClient } from "@/lib/auth-client";
import { errorFromResponse } from "@/lib/http";
import { Field } from "../field";

/** The form's message when its two password fields differ, else null. */
export function passwordMismatch(form: FormData): string | null {
  return String(form.get("password")) === String(form.get("confirm"))
    ? null
    : "The two passwords differ.";
}

/**
 * Creates an account through one of the gateway's own routes (the setup link, an invitation),
 * then signs in with it. Returns the message to show when the account was refused, else
 * whether the sign-in worked.
 */
export async function createAndSignIn(
  path: string,
  body: Record<string, string>,
  email: string,
  password: string,
): Promise<{ error: string } | { signedIn: boolean }> {
  try {
    const res = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, password }),
    });
    if (!res.ok) return { error: (await errorFromResponse(res)).message };
    const signedIn = await authClient.signIn.email({ email, password });
    return { signedIn: !signedIn.error };
  } catch {
    return { error: "The server could not be reached. Try again." };
  }
}

/**
 * The fields of a new account — name, email, password and its repetition — shared by the
 * sign-up, first-admin setup and invitation forms. The form reads them by name
 * (`name`, `email`, `password`, `confirm`). `email={false}` leaves the email out (an
 * invitation fixes it).
 */
export function AccountFields({ email = true }: { email?: boolean }) {
  return (
    <>
      <Field id="name" label="Name" name="name" autoComplete="name" required maxLength={100} />
      {email && (
        <Field id="email" label="Email" name="email" type="email" autoComplete="email" required />
      )}
      <Field
        id="password"
        label="Password"
        name="password"
        type="password"
        autoComplete="new-password"
        minLength={8}
        required
        hint="At least 8 characters."
      />
      <Field
        id="confirm"
        label="Repeat password"
        name="confirm"
        type="password"
        autoComplete="new-password"
        minLength={8}
        required
      />
    </>
  );
}
