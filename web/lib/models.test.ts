import { describe, expect, it } from "vitest";
import { isModelError } from "./errors";
import { ApiError } from "./http";
import {
  accessOf,
  chooseModel,
  conversationModel,
  defaultModel,
  optionLabel,
  stateText,
  subjectText,
  unlistedModels,
} from "./models";
import type { Message, ModelAccess, ModelInfo } from "./types";

const small: ModelInfo = { id: "small", kind: "chat", state: "ready" };
const large: ModelInfo = { id: "large", kind: "chat", state: "unloaded", default: true };
const base: ModelInfo = { id: "gemma", kind: "base" };

const msg = (role: Message["role"], model?: string): Message => ({
  id: `${role}-${Math.random()}`,
  role,
  content: "x",
  createdAt: "",
  ...(model ? { model } : {}),
});

describe("defaultModel", () => {
  it("is the one marked default, else the first listed", () => {
    expect(defaultModel([small, large])?.id).toBe("large");
    expect(defaultModel([small, base])?.id).toBe("small");
    expect(defaultModel([])).toBeUndefined();
  });
});

describe("chooseModel", () => {
  it("keeps the wanted model while it is listed", () => {
    expect(chooseModel([small, large], "small")).toEqual({ model: "small", notice: null });
  });

  it("uses the default model, without a notice, when nothing is wanted", () => {
    expect(chooseModel([small, large], null)).toEqual({ model: "large", notice: null });
    expect(chooseModel([small, large], "")).toEqual({ model: "large", notice: null });
  });

  it("falls back to the default model with a notice when the wanted one went away", () => {
    expect(chooseModel([small, large], "gone")).toEqual({
      model: "large",
      notice: "gone is no longer available to you: using large instead.",
    });
  });

  it("says so when no model is left at all, and lets the gateway pick", () => {
    expect(chooseModel([], "gone")).toEqual({
      model: "",
      notice: "gone is no longer available to you.",
    });
    expect(chooseModel([], null)).toEqual({ model: "", notice: null });
  });

  it("keeps the wanted model, unchecked, until the list is known", () => {
    expect(chooseModel(null, "small")).toEqual({ model: "small", notice: null });
    expect(chooseModel(null, null)).toEqual({ model: "", notice: null });
  });

  it("matches names exactly (no case folding, no prefix)", () => {
    expect(chooseModel([small, large], "Small").model).toBe("large");
    expect(chooseModel([small, large], "smal").model).toBe("large");
  });
});

describe("conversationModel", () => {
  it("is the model the last question was put to, not the one that answered", () => {
    // After a fallback the answer names another model; the conversation keeps the one asked.
    const messages = [msg("user", "small"), msg("assistant", "small"), msg("user", "large")];
    expect(conversationModel([...messages, msg("assistant", "small")])).toBe("large");
  });

  it("is the last answer's model when the questions say none (older conversations)", () => {
    expect(conversationModel([msg("user"), msg("assistant", "small")])).toBe("small");
  });

  it("is null when no message names a model", () => {
    expect(conversationModel([])).toBeNull();
    expect(conversationModel([msg("user"), msg("assistant")])).toBeNull();
  });
});

describe("labels", () => {
  it("names a base model and a state that is not ready", () => {
    expect(optionLabel(small)).toBe("small");
    expect(optionLabel(base)).toBe("gemma · base model");
    expect(optionLabel(large)).toBe("large · not loaded: loads on first use");
    expect(optionLabel({ id: "x", kind: "base", state: "down" })).toBe("x · base model · down");
    expect(stateText("loading")).toBe("loading");
    expect(stateText("ready")).toBeNull();
    expect(stateText(undefined)).toBeNull();
  });
});

describe("isModelError", () => {
  it("is a 403 MODEL_FORBIDDEN or a 404 about a model, nothing else", () => {
    expect(isModelError(new ApiError(403, "MODEL_FORBIDDEN", "no"))).toBe(true);
    expect(isModelError(new ApiError(404, "MODEL_NOT_FOUND", "no"))).toBe(true);
    expect(isModelError(new ApiError(404, "NOT_FOUND", "Conversation not found"))).toBe(false);
    expect(isModelError(new ApiError(403, "FORBIDDEN", "no"))).toBe(false);
    expect(isModelError(new ApiError(429, "MODEL_QUOTA", "no"))).toBe(false);
    expect(isModelError(new Error("MODEL_FORBIDDEN"))).toBe(false);
  });
});

describe("access of a model", () => {
  const access: ModelAccess = {
    rules: [
      { id: "r1", model: "Large ", role: "user", allow: false },
      { id: "r2", model: "retired", email: "a@example.org", user_id: "u1", allow: true },
    ],
    limits: [{ id: "l1", model: "RETIRED", role: "admin", tokens_per_day: 5 }],
  };

  it("matches model names trimmed and without case, as the gateway does", () => {
    expect(accessOf(access, "large").rules.map((r) => r.id)).toEqual(["r1"]);
    expect(accessOf(access, "retired")).toEqual({
      rules: [access.rules[1]],
      limits: [access.limits[0]],
    });
    expect(accessOf(access, "small")).toEqual({ rules: [], limits: [] });
  });

  it("finds the models with rules or limits that are not served, once each", () => {
    expect(unlistedModels(access, ["large", "small"])).toEqual(["retired"]);
    expect(unlistedModels(access, ["LARGE", "Retired"])).toEqual([]);
  });

  it("names whom a rule is for", () => {
    expect(subjectText({ role: "user" })).toBe("role user");
    expect(subjectText({ email: "a@example.org", user_id: "u1" })).toBe("a@example.org");
    expect(subjectText({ user_id: "u1" })).toBe("user u1");
  });
});
