import { type Static, Type } from "typebox";

/** The one error shape every failing response of the gateway uses. */
export const ErrorEnvelope = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "Stable machine-readable error code" }),
      message: Type.String({ description: "Human-readable explanation" }),
    }),
  },
  { title: "ErrorEnvelope" },
);

export type ErrorEnvelopeT = Static<typeof ErrorEnvelope>;

export function errorBody(code: string, message: string): ErrorEnvelopeT {
  return { error: { code, message } };
}
