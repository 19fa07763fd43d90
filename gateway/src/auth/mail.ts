import type { Transporter } from "nodemailer";
import type { MailConfig } from "../config.js";

/** What became of one mail; `error` is for admins (never holds the link). */
export type MailOutcome =
  | { sent: true }
  | { sent: false; reason: "not-configured" }
  | { sent: false; reason: "failed"; error: string };

export type MailKind = "password-reset" | "email-verification" | "invitation";

/** Mail delivery as the admin page shows it. */
export interface MailStatus {
  configured: boolean;
  sent: number;
  failed: number;
  lastFailure: { at: string; kind: MailKind; error: string } | null;
}

interface Message {
  subject: string;
  text: string;
  html: string;
}

type LogFn = (obj: Record<string, unknown>, msg: string) => void;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plain-text and an HTML body with one button-like link; `lines` are plain text. */
function render(
  subject: string,
  lines: string[],
  action: string,
  url: string,
  after: string,
): Message {
  const text = [...lines, "", `${action}:`, url, "", after, ""].join("\n");
  const paragraphs = lines.map((l) => `<p>${escapeHtml(l)}</p>`).join("\n");
  const html = `<!doctype html>
<html><body style="font-family:system-ui,sans-serif;line-height:1.5;max-width:36rem">
${paragraphs}
<p><a href="${escapeHtml(url)}" style="display:inline-block;padding:.6em 1.2em;background:#2557d6;color:#fff;border-radius:6px;text-decoration:none">${escapeHtml(action)}</a></p>
<p style="color:#555;font-size:.9em">Or open this address: ${escapeHtml(url)}</p>
<p style="color:#555;font-size:.9em">${escapeHtml(after)}</p>
</body></html>
`;
  return { subject, text, html };
}

/**
 * Outgoing mail over SMTP (nodemailer): password-reset, email-verification and invitation
 * mails with a plain-text and an HTML body. A failure never throws: it is counted, logged
 * without the link (links carry live tokens) and shown to admins (`status()`).
 */
export class MailService {
  private transport: Promise<Transporter> | undefined;
  private sent = 0;
  private failed = 0;
  private lastFailure: MailStatus["lastFailure"] = null;

  constructor(
    private readonly config: MailConfig | undefined,
    private readonly log: { warn: LogFn },
    private readonly appName = "LLM stack",
  ) {}

  /** nodemailer's transport, loaded on the first mail (a gateway without SMTP never loads it). */
  private transporter(config: MailConfig): Promise<Transporter> {
    this.transport ??= import("nodemailer").then(({ createTransport }) =>
      createTransport({
        host: config.host,
        port: config.port,
        secure: config.secure,
        ...(config.user ? { auth: { user: config.user, pass: config.password ?? "" } } : {}),
        // An SMTP server that does not answer must not hold a request for minutes.
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 20_000,
        logger: false,
        debug: false,
      }),
    );
    return this.transport;
  }

  get configured(): boolean {
    return this.config !== undefined;
  }

  status(): MailStatus {
    return {
      configured: this.configured,
      sent: this.sent,
      failed: this.failed,
      lastFailure: this.lastFailure,
    };
  }

  sendPasswordReset(to: string, url: string): Promise<MailOutcome> {
    return this.send(
      "password-reset",
      to,
      render(
        `Reset your ${this.appName} password`,
        [
          `Someone (hopefully you) asked to reset the password of your ${this.appName} account ${to}.`,
        ],
        "Choose a new password",
        url,
        "The link works once, for one hour. If you did not ask for it, ignore this mail: your password stays as it is.",
      ),
    );
  }

  sendVerification(to: string, url: string): Promise<MailOutcome> {
    return this.send(
      "email-verification",
      to,
      render(
        `Confirm your email for ${this.appName}`,
        [`Confirm that ${to} is your address to finish creating your ${this.appName} account.`],
        "Confirm my email",
        url,
        "If you did not create an account, ignore this mail.",
      ),
    );
  }

  sendInvitation(
    to: string,
    url: string,
    { expiresAt, invitedBy }: { expiresAt: Date; invitedBy: string | null },
  ): Promise<MailOutcome> {
    const who = invitedBy ? `${invitedBy} invited you` : "You are invited";
    return this.send(
      "invitation",
      to,
      render(
        `You are invited to ${this.appName}`,
        [`${who} to create an account on ${this.appName} with the address ${to}.`],
        "Create my account",
        url,
        `The link works once, until ${expiresAt.toUTCString()}.`,
      ),
    );
  }

  private async send(kind: MailKind, to: string, message: Message): Promise<MailOutcome> {
    if (!this.config) return { sent: false, reason: "not-configured" };
    try {
      const transport = await this.transporter(this.config);
      await transport.sendMail({ from: this.config.from, to, ...message });
      this.sent += 1;
      return { sent: true };
    } catch (err) {
      // The SMTP error says what failed (refused, authentication, rejected recipient);
      // the message with its link is not part of it.
      const error = err instanceof Error ? err.message : String(err);
      this.failed += 1;
      this.lastFailure = { at: new Date().toISOString(), kind, error };
      this.log.warn({ component: "mail", kind, err: error }, "mail not sent");
      return { sent: false, reason: "failed", error };
    }
  }

  async close(): Promise<void> {
    (await this.transport)?.close();
  }
}
