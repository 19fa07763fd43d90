import { memo } from "react";
import type { ModelInfo } from "@/lib/types";

/**
 * The model a chat uses, in the chat's header. A base model (a GGUF without a chat template,
 * as the embedded Gemma 3 270M) continues text rather than answering: say so, and how to get
 * an assistant instead.
 */
export const ModelBadge = memo(function ModelBadge({
  models,
  selected,
}: {
  models: ModelInfo[];
  selected: string;
}) {
  const model = models.find((m) => m.id === selected) ?? models[0];
  if (!model) return null;
  return (
    <p className="model-badge muted">
      <span className="model-badge-id">{model.id}</span>
      {model.kind === "base" ? (
        <>
          {" "}
          · <strong>base model: continues text</strong>
          <span className="model-badge-hint">
            {" "}
            — for an assistant, point <code>LLM_MODEL_PATH</code> at an instruction-tuned GGUF.
          </span>
        </>
      ) : null}
    </p>
  );
});
