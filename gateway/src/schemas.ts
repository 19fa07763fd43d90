import { type Static, Type } from "typebox";

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
