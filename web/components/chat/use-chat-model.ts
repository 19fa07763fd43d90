"use client";

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { chooseModel, conversationModel } from "@/lib/models";
import type { ModelInfo } from "@/lib/types";
import type { Resource } from "../use-resource";
import type { ChatState } from "./chat-state";
import { type ChatSettings, useChatSettings } from "./settings";
import { useModels } from "./use-models";

export interface ChatModel {
  /** The models this user may use. */
  models: Resource<ModelInfo[]>;
  /** What the next turn sends: the remembered parameters, and the model chosen. */
  settings: ChatSettings;
  /** Changes the remembered parameters (the model is changed with `pick`). */
  setSettings: (s: ChatSettings) => void;
  /** Chooses the model of this chat; new chats start with it too. */
  pick: (model: string) => void;
  /** Why the chat does not use the model it wanted (no longer listed for this user). */
  notice: string | null;
  /** Takes an opened conversation's own model (null: none known), unless one was picked. */
  adopt: (own: string | null) => void;
}

/**
 * The model of one chat. A new chat starts with the model last used (remembered in this
 * browser); an opened conversation goes on with its own model (see `useFollowConversation`).
 * A model no longer listed for this user (removed, or refused to them) gives way to the
 * default model, with a notice.
 */
export function useChatModel(conversationId: string | undefined): ChatModel {
  const [settings, setSettings] = useChatSettings();
  const models = useModels();
  const [picked, setPicked] = useState<string | null>(null);
  const lastUsed = settings.model || null;
  // An opened conversation waits for its own model; until it is known, the default shows.
  const wanted = picked ?? (conversationId ? null : lastUsed);
  const choice = chooseModel(models.data, wanted);
  const turnSettings = useMemo(
    () => ({ ...settings, model: choice.model }),
    [settings, choice.model],
  );

  const latest = useRef({ settings, lastUsed });
  latest.current = { settings, lastUsed };
  const pick = useCallback(
    (model: string) => {
      setPicked(model);
      const current = latest.current.settings;
      if (model !== current.model) setSettings({ ...current, model });
    },
    [setSettings],
  );
  const setParams = useCallback(
    (s: ChatSettings) => setSettings({ ...s, model: latest.current.settings.model }),
    [setSettings],
  );

  const adopt = useCallback(
    (own: string | null) => setPicked((p) => p ?? own ?? latest.current.lastUsed),
    [],
  );
  const notice = choice.notice;
  return { models, settings: turnSettings, setSettings: setParams, pick, notice, adopt };
}

/**
 * Keeps a chat's model in step with its conversation: an opened conversation goes on with
 * its own model once loaded, a turn sent keeps its model (for this chat, and as the one new
 * chats start with), and a turn refused for its model reloads the list (the model went away,
 * or access changed).
 */
export function useFollowConversation(
  model: ChatModel,
  conversationId: string | undefined,
  state: ChatState,
): void {
  const { adopt, pick } = model;
  const loaded = conversationId !== undefined && state.load === "ready";
  const own = loaded ? conversationModel(state.messages) : null;
  useEffect(() => {
    if (loaded) adopt(own);
  }, [loaded, own, adopt]);
  const sent = model.settings.model;
  useEffect(() => {
    if (state.streaming && sent) pick(sent);
  }, [state.streaming, sent, pick]);
  const { reload } = model.models;
  useEffect(() => {
    if (state.failure?.kind === "model") void reload();
  }, [state.failure, reload]);
}
