import type { Auth } from "../auth/auth.js";
import { HttpError } from "../errors.js";

/**
 * A password-reset link for `email`, handed to the caller (an admin) instead of being mailed:
 * better-auth issues it as for a user's own request, inside `auth.resetLinks` so its
 * sendResetPassword hands the link back here. It leads to the web app's reset page.
 */
export async function issueResetLink(
  auth: Auth,
  email: string,
  publicUrl: string,
): Promise<string> {
  const links: string[] = [];
  await auth.resetLinks.run(links, () =>
    auth.api.requestPasswordReset({ body: { email, redirectTo: `${publicUrl}/reset-password` } }),
  );
  const link = links.at(-1);
  if (!link) throw new HttpError(500, "RESET_LINK_FAILED", `No reset link was issued for ${email}`);
  return link;
}
