import type { Metadata } from "next";
import { ResetPasswordForm } from "@/components/auth/password-reset";
import { firstParam } from "@/lib/search-params";

export const metadata: Metadata = { title: "New password · Local LLM Stack" };

export default async function ResetPasswordPage({ searchParams }: PageProps<"/reset-password">) {
  const token = firstParam((await searchParams).token);
  return <ResetPasswordForm token={token} />;
}
