import type { Metadata } from "next";
import { SignInForm } from "@/components/auth/sign-in-form";
import { safeNext } from "@/lib/auth-client";
import { firstParam } from "@/lib/search-params";

export const metadata: Metadata = { title: "Sign in · Local LLM Stack" };

export default async function SignInPage({ searchParams }: PageProps<"/sign-in">) {
  const next = safeNext(firstParam((await searchParams).next));
  return <SignInForm next={next} />;
}
