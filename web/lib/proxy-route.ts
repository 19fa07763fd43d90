/** Route-handler exports shared by every proxied path (app/api, app/v1, app/docs). */
import { proxyToGateway } from "./proxy";

const handler = (request: Request): Promise<Response> => proxyToGateway(request);

export const GET = handler;
export const HEAD = handler;
export const POST = handler;
export const PUT = handler;
export const PATCH = handler;
export const DELETE = handler;
export const OPTIONS = handler;
