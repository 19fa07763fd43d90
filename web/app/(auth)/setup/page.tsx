import type { Metadata } from "next";
import { firstParam } from "@/lib/search-params";
import { SetupForm } from "./setup-form";

export const metadata: Metadata = {
  title: "Create the admin account · Local LLM Stack",
  // The URL carries a one-time token: never send it on as a referrer.
  referrer: "no-referrer",
};

/** `/setup?token=…`: the operator's one-time link (printed by the gateway) to the first admin. */
export default async function SetupPage({ searchParams }: PageProps<"/setup">) {
  const token = firstParam((await searchParams).token) ?? "";
  return <SetupForm token={token} />;
}
