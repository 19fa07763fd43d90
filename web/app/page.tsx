import Link from "next/link";
import { StatusPanel } from "@/components/status-panel";
import { gatewayUrl } from "@/lib/env";
import { fetchStackStatus } from "@/lib/status";

// Status must be fresh on every request, and GATEWAY_URL is read at run time.
export const dynamic = "force-dynamic";

export default async function HomePage() {
  const status = await fetchStackStatus(gatewayUrl());
  return (
    <main id="main" className="container">
      <header className="hero">
        <h1>Local LLM Stack</h1>
        <p className="lead">
          A self-hosted large language model stack: a model server, an OpenAI-compatible gateway and
          this web interface, all running on your own machine.
        </p>
      </header>
      <StatusPanel status={status} />
      <nav aria-label="Get started" className="links inline">
        <Link className="btn btn-primary" href="/chat">
          Open the chat
        </Link>
        <Link className="btn" href="/sign-in">
          Sign in
        </Link>
        <Link className="btn" href="/sign-up">
          Sign up
        </Link>
        <a href="/docs">API documentation</a>
      </nav>
    </main>
  );
}
