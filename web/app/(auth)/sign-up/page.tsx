import type { Metadata } from "next";
import { SignUpForm } from "@/components/auth/sign-up-form";
import { safeNext } from "@/lib/auth-client";
import { firstParam } from "@/lib/search-params";

export const metadata: Metadata = { title: "Sign up · Local LLM Stack" };

export default async function SignUpPage({ searchParams }: PageProps<"/sign-up">) {
  const next = safeNext(firstParam((await searchParams).next));
  return <SignUpForm next={next} />;
}
