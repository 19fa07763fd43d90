import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import type { FastifySchemaCompiler } from "fastify";

function makeAjv(coerceTypes: boolean | "array"): Ajv {
  // removeAdditional off: unknown fields are rejected (additionalProperties: false), never
  // silently dropped, so `{"role":"admin"}` on a profile update is a 400.
  const ajv = new Ajv({
    coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
  });
  addFormats.default(ajv);
  return ajv;
}

const strictAjv = makeAjv(false);
const coercingAjv = makeAjv("array");

/**
 * JSON bodies are validated without type coercion (`"1"` is not a number); query
 * strings, params and headers are strings on the wire, so they are coerced.
 */
export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) => {
  const ajv = httpPart === "body" ? strictAjv : coercingAjv;
  return ajv.compile(schema);
};
