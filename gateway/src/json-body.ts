import type { FastifyInstance } from "fastify";
import { HttpError } from "./errors.js";

/** The deepest nesting of arrays and objects a JSON request body may have. */
export const MAX_JSON_DEPTH = 64;

/**
 * The nesting depth of a JSON text (arrays and objects; brackets inside strings do not
 * count), stopping as soon as it passes `limit`. One pass over the characters, no parse.
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

/**
 * Replaces the JSON body parser of `app` (and its children) with Fastify's own behind a
 * nesting bound: a body nested deeper than MAX_JSON_DEPTH is a 400 before it is parsed,
 * so no later step (validation, serialization toward llm-server, logging) meets a
 * structure deep enough to exhaust the stack.
 */
export function boundJsonDepth(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (jsonDepth(body as string, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
      done(
        new HttpError(
          400,
          "JSON_TOO_DEEP",
          `The JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`,
        ),
        undefined,
      );
      return;
    }
    parse(request, body as string, done);
  });
}
