import type { Metadata } from "next";
import { InviteForm } from "@/components/auth/invite-form";
import { firstParam } from "@/lib/search-params";

export const metadata: Metadata = {
  title: "Accept your invitation · Local LLM Stack",
  // The URL carries a one-time token: never send it on as a referrer.
  referrer: "no-referrer",
};

/** `/invite?token=…`: the link of an admin's invitation (mailed, or handed over). */
export default async function InvitePage({ searchParams }: PageProps<"/invite">) {
  const token = firstParam((await searchParams).token) ?? "";
  return <InviteForm token={token} />;
}
