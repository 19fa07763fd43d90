import { type Static, type TSchema, Type } from "typebox";

/** The one error shape every failing response of the gateway uses. */
export const ErrorEnvelope = Type.Object(
  {
    error: Type.Object({
      message: Type.String({ description: "Human-readable explanation" }),
      type: Type.Union(
        [
          Type.Literal("invalid_request_error"),
          Type.Literal("authentication_error"),
          Type.Literal("permission_error"),
          Type.Literal("not_found_error"),
          Type.Literal("rate_limit_error"),
          Type.Literal("server_error"),
        ],
        { description: "Kind of failure, derived from the status (OpenAI's names)" },
      ),
      code: Type.String({ description: "Stable machine-readable error code" }),
    }),
  },
  { title: "ErrorEnvelope" },
);

export type ErrorEnvelopeT = Static<typeof ErrorEnvelope>;

/** The error `type`s of the envelope (OpenAI's names), one per kind of failure. */
export type ErrorType = ErrorEnvelopeT["error"]["type"];

/** An account's role: what it may do (admins manage users, invitations and limits). */
export const Role = Type.Union([Type.Literal("admin"), Type.Literal("user")]);
export type Role = Static<typeof Role>;

/** The largest `offset` a list takes: far past any real list, well inside every engine's integers. */
export const MAX_OFFSET = 1_000_000;

/**
 * `limit` and `offset` of a list route, bounded integers: `1e20`, `Infinity`, `NaN`, negatives
 * and fractions are a 400 naming the parameter, never a database error.
 */
export function paging(maxLimit: number, defaultLimit: number) {
  return {
    limit: Type.Integer({ minimum: 1, maximum: maxLimit, default: defaultLimit }),
    offset: Type.Integer({ minimum: 0, maximum: MAX_OFFSET, default: 0 }),
  };
}

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

export const DateTime = Type.String({ format: "date-time" });
export const NullableDateTime = Type.Union([DateTime, Type.Null()]);

/** An API key as listed to its owner (the secret itself is shown once, at creation). */
export const ApiKeyInfo = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  start: Type.Union([Type.String(), Type.Null()]),
  createdAt: DateTime,
  expiresAt: NullableDateTime,
  lastUsedAt: NullableDateTime,
});

export const Me = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    name: Type.String(),
    role: Role,
    twoFactorEnabled: Type.Boolean(),
    pending: Type.Boolean({ description: "waiting for an admin's approval: nothing works yet" }),
    createdAt: DateTime,
  },
  { title: "Me" },
);

export const AdminUser = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    name: Type.String(),
    role: Role,
    disabled: Type.Boolean(),
    twoFactorEnabled: Type.Boolean(),
    pending: Type.Boolean(),
    createdAt: DateTime,
  },
  { title: "AdminUser" },
);

export const Ok = Type.Object({ ok: Type.Literal(true) });

/** Error responses every authenticated JSON route may give. */
export const authErrors = {
  400: ErrorEnvelope,
  401: ErrorEnvelope,
  403: ErrorEnvelope,
  404: ErrorEnvelope,
  "5xx": ErrorEnvelope,
};

/**
 * One Server-Sent Event as OpenAPI 3.1 tools read a `text/event-stream` response's schema:
 * an object with the event's name and its `data` line, here JSON matching `data`.
 */
export function sseEvent(event: string, data: TSchema) {
  return Type.Object(
    {
      event: Type.Literal(event),
      data: Type.String({ contentMediaType: "application/json", contentSchema: data }),
      id: Type.Optional(Type.String()),
      retry: Type.Optional(Type.Integer()),
    },
    { title: `${event} event` },
  );
}

/**
 * A 200 answered with one of several content types: `{ "text/event-stream": schema, … }`
 * becomes the OpenAPI `content` map (Fastify picks the serializer by the reply's type).
 */
export function contentTypes(description: string, types: Record<string, TSchema>) {
  return {
    description,
    content: Object.fromEntries(Object.entries(types).map(([t, schema]) => [t, { schema }])),
  };
}
