"use client";

import { useCallback, useEffect, useState } from "react";

export interface ChatSettings {
  model: string;
  temperature: number;
  maxTokens: number;
  system: string;
}

export const DEFAULT_SETTINGS: ChatSettings = {
  model: "",
  temperature: 0.7,
  maxTokens: 256,
  system: "",
};

const KEY = "chat-settings";

function load(): ChatSettings {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return DEFAULT_SETTINGS;
    const v = JSON.parse(raw) as Partial<ChatSettings>;
    return {
      model: typeof v.model === "string" ? v.model : DEFAULT_SETTINGS.model,
      temperature: typeof v.temperature === "number" ? v.temperature : DEFAULT_SETTINGS.temperature,
      maxTokens: typeof v.maxTokens === "number" ? v.maxTokens : DEFAULT_SETTINGS.maxTokens,
      system: typeof v.system === "string" ? v.system : DEFAULT_SETTINGS.system,
    };
  } catch {
    return DEFAULT_SETTINGS;
  }
}

/** Model and sampling parameters, remembered in this browser. */
export function useChatSettings(): [ChatSettings, (s: ChatSettings) => void] {
  const [settings, setSettings] = useState<ChatSettings>(DEFAULT_SETTINGS);
  useEffect(() => setSettings(load()), []);
  const update = useCallback((s: ChatSettings) => {
    setSettings(s);
    try {
      localStorage.setItem(KEY, JSON.stringify(s));
    } catch {
      // storage full or disabled: keep in memory
    }
  }, []);
  return [settings, update];
}
