/**
 * Which model a chat uses: the one wanted (the conversation's, or for a new chat the last one
 * used) when the gateway still lists it for this user, else the default model, with a notice
 * saying so. Pure functions, no React.
 */
import type { Message, ModelAccess, ModelInfo, ModelLimit, ModelRule, ModelState } from "./types";

export interface ModelChoice {
  /** The model to send; "" lets the gateway pick (the list is not known, or empty). */
  model: string;
  /** Why the wanted model is not the one used, when it is not. */
  notice: string | null;
}

/** The gateway's default model: the one marked so, else the first one listed. */
export function defaultModel(models: readonly ModelInfo[]): ModelInfo | undefined {
  return models.find((m) => m.default) ?? models[0];
}

/**
 * The model to use given the models this user may use (null while loading) and the one
 * wanted (null: no preference).
 */
export function chooseModel(
  models: readonly ModelInfo[] | null,
  wanted: string | null,
): ModelChoice {
  if (models === null) return { model: wanted ?? "", notice: null };
  if (wanted && models.some((m) => m.id === wanted)) return { model: wanted, notice: null };
  const fallback = defaultModel(models);
  if (!wanted) return { model: fallback?.id ?? "", notice: null };
  const notice = fallback
    ? `${wanted} is no longer available to you: using ${fallback.id} instead.`
    : `${wanted} is no longer available to you.`;
  return { model: fallback?.id ?? "", notice };
}

/**
 * A conversation's model, from its messages: the model its last question was put to, else
 * (a question sent to the default model, or before questions kept theirs) the model of its
 * last answer; null when none says.
 */
export function conversationModel(messages: readonly Message[]): string | null {
  const lastQuestion = messages.findLast((m) => m.role === "user");
  return (
    lastQuestion?.model ??
    messages.findLast((m) => m.role === "assistant" && m.model)?.model ??
    null
  );
}

const STATE_TEXT: Record<ModelState, string> = {
  ready: "ready",
  loading: "loading",
  unloaded: "not loaded: loads on first use",
  down: "down",
};

/** A model's state for people; null when there is nothing to say (ready, or not reported). */
export function stateText(state: ModelState | undefined): string | null {
  return state && state !== "ready" ? STATE_TEXT[state] : null;
}

/** A model as a picker option: its name, "base model", and its state when not ready. */
export function optionLabel(m: ModelInfo): string {
  const parts = [m.id];
  if (m.kind === "base") parts.push("base model");
  const state = stateText(m.state);
  if (state) parts.push(state);
  return parts.join(" · ");
}

/** The gateway matches model names trimmed and without case. */
const modelKey = (model: string) => model.trim().toLowerCase();

/** The access rules and daily limits of one model. */
export function accessOf(
  access: ModelAccess,
  model: string,
): { rules: ModelRule[]; limits: ModelLimit[] } {
  const key = modelKey(model);
  return {
    rules: access.rules.filter((r) => modelKey(r.model) === key),
    limits: access.limits.filter((l) => modelKey(l.model) === key),
  };
}

/** Models that have rules or limits but are not served now (removed, or not yet added). */
export function unlistedModels(access: ModelAccess, listed: readonly string[]): string[] {
  const served = new Set(listed.map(modelKey));
  const seen = new Map<string, string>();
  for (const e of [...access.rules, ...access.limits]) {
    const key = modelKey(e.model);
    if (!served.has(key) && !seen.has(key)) seen.set(key, e.model);
  }
  return [...seen.values()];
}

/** Whom a rule or limit is for, for people: "role user", or the user's email. */
export function subjectText(e: { role?: string; email?: string; user_id?: string }): string {
  if (e.email) return e.email;
  if (e.user_id) return `user ${e.user_id}`;
  return `role ${e.role ?? "?"}`;
}
