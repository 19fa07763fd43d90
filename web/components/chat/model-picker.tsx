"use client";

import Link from "next/link";
import { memo, type ReactNode } from "react";
import { optionLabel, stateText } from "@/lib/models";
import type { ModelInfo } from "@/lib/types";

export interface ModelPickerProps {
  /** The models this user may use; null until loaded. */
  models: ModelInfo[] | null;
  /** Why the list could not be loaded. */
  error: string | null;
  onRetry: () => void;
  /** The model the chat uses. */
  value: string;
  onChange: (model: string) => void;
  /** Why the chat does not use the model it wanted (it went away). */
  notice: string | null;
  disabled: boolean;
  isAdmin: boolean;
}

/**
 * The chat's model: a choice among the models this user may use, or just the name when
 * there is one. A base model is labelled, and a line says what it does and what to do for
 * an assistant; a model that is not ready says so.
 */
export const ModelPicker = memo(function ModelPicker(props: ModelPickerProps) {
  const { models, value, notice, isAdmin } = props;
  const selected = models?.find((m) => m.id === value);
  return (
    <div className="model-picker" data-testid="model-picker">
      <ModelChoiceLine {...props} selected={selected} />
      {selected?.kind === "base" ? (
        <BaseModelNote
          model={selected.id}
          chatModelListed={models?.some((m) => m.kind === "chat") ?? false}
          isAdmin={isAdmin}
        />
      ) : null}
      {notice ? (
        <p role="status" className="alert alert-info model-notice">
          {notice}
        </p>
      ) : null}
    </div>
  );
});

/** The list (or the one model), its loading or its failure. */
function ModelChoiceLine({
  models,
  error,
  onRetry,
  value,
  onChange,
  disabled,
  selected,
}: ModelPickerProps & { selected: ModelInfo | undefined }) {
  if (models === null) {
    if (!error) return <p className="muted model-line">Loading models…</p>;
    return (
      <p className="muted model-line">
        The models could not be loaded: {error}{" "}
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Retry
        </button>
      </p>
    );
  }
  if (models.length === 0) {
    return (
      <p className="muted model-line">
        No model is available to your account: ask an administrator for access.
      </p>
    );
  }
  const only = models.length === 1 ? models[0] : undefined;
  return (
    <div className="model-line">
      {only ? (
        <p className="model-single">
          <span className="muted">Model</span> <strong data-testid="model-name">{only.id}</strong>
        </p>
      ) : (
        <>
          <label htmlFor="model-select">Model</label>
          <select
            id="model-select"
            value={value}
            disabled={disabled}
            onChange={(e) => onChange(e.target.value)}
          >
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {optionLabel(m)}
              </option>
            ))}
          </select>
        </>
      )}
      <ModelTags model={selected ?? only} />
    </div>
  );
}

/** "base model" and a state that is not "ready", beside the model's name. */
function ModelTags({ model }: { model: ModelInfo | undefined }) {
  if (!model) return null;
  const state = stateText(model.state);
  return (
    <>
      {model.kind === "base" ? <span className="tag">base model</span> : null}
      {state ? (
        <span className={model.state === "down" ? "tag tag-bad" : "tag"} data-testid="model-state">
          {state}
        </span>
      ) : null}
    </>
  );
}

/**
 * One line on a base model (a GGUF without a chat template, as the embedded Gemma 3 270M):
 * it continues text; for an assistant pick a chat model, or have one set up.
 */
function BaseModelNote({
  model,
  chatModelListed,
  isAdmin,
}: {
  model: string;
  chatModelListed: boolean;
  isAdmin: boolean;
}) {
  let action: ReactNode;
  if (chatModelListed) action = "For an assistant that answers, pick a chat model.";
  else if (isAdmin) {
    action = (
      <>
        For an assistant, set up a chat model: see <Link href="/admin/models">Models</Link>.
      </>
    );
  } else action = "For an assistant, ask an administrator to set up a chat model.";
  return (
    <p className="muted model-note" data-testid="base-model-note">
      {model} is a base model: it continues the text you write rather than following instructions.{" "}
      {action}
    </p>
  );
}
