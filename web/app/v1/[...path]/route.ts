// Streams this path through to the gateway; see lib/proxy.ts.
export { DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT } from "@/lib/proxy-route";

export const dynamic = "force-dynamic";
export const runtime = "nodejs";
