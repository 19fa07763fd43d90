import { type Static, Type } from "typebox";

/**
 * A public model name (or alias): what clients send as `model`. Letters, digits and
 * `. _ : / @ + -` (Hugging Face and Ollama names fit), at most 128 characters.
 */
const ModelName = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: "^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$",
});

const UpstreamEntry = Type.Object(
  {
    kind: Type.Union([Type.Literal("llm-server"), Type.Literal("openai")]),
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    /** The name the upstream knows the model by. */
    model: Type.String({ minLength: 1, maxLength: 256 }),
    weight: Type.Integer({ minimum: 1, maximum: 1000, default: 1 }),
    api_key_env: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }),
    ),
    api_key_file: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    timeout_s: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3600 })),
  },
  { additionalProperties: false },
);

const ModelEntry = Type.Object(
  {
    name: ModelName,
    aliases: Type.Array(ModelName, { maxItems: 32, default: [] }),
    fallbacks: Type.Array(ModelName, { maxItems: 8, default: [] }),
    /** "base" (no chat template: it continues text) or "chat"; shown in the model lists. */
    kind: Type.Optional(Type.Union([Type.Literal("base"), Type.Literal("chat")])),
    upstreams: Type.Array(UpstreamEntry, { minItems: 1, maxItems: 64 }),
  },
  { additionalProperties: false },
);

/** `GATEWAY_MODELS_FILE`, as TOML gives it (validated with Ajv, defaults filled in). */
export const RoutingFileSchema = Type.Object(
  {
    /** What a request without `model` (or with `"default"`) gets; the first model when unset. */
    default: Type.Optional(ModelName),
    models: Type.Array(ModelEntry, { minItems: 1, maxItems: 256 }),
  },
  { additionalProperties: false },
);

export type RoutingFile = Static<typeof RoutingFileSchema>;
export type ModelEntry = RoutingFile["models"][number];
export type UpstreamEntry = ModelEntry["upstreams"][number];
