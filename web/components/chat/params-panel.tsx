"use client";

import { memo } from "react";

import type { ChatSettings } from "./settings";

/** Sampling parameters and the system prompt (the model is chosen in the chat's header). */
export const ParamsPanel = memo(function ParamsPanel({
  settings,
  onChange,
}: {
  settings: ChatSettings;
  onChange: (s: ChatSettings) => void;
}) {
  const set = <K extends keyof ChatSettings>(k: K, v: ChatSettings[K]) =>
    onChange({ ...settings, [k]: v });

  return (
    <details className="params">
      <summary>Parameters</summary>
      <div className="params-grid">
        <div className="field">
          <label htmlFor="p-temp">Temperature ({settings.temperature.toFixed(1)})</label>
          <input
            id="p-temp"
            type="range"
            min={0}
            max={2}
            step={0.1}
            value={settings.temperature}
            onChange={(e) => set("temperature", Number(e.target.value))}
          />
        </div>
        <div className="field">
          <label htmlFor="p-max">Max tokens</label>
          <input
            id="p-max"
            type="number"
            min={1}
            max={8192}
            value={settings.maxTokens}
            onChange={(e) => {
              const n = Math.round(Number(e.target.value));
              if (Number.isFinite(n) && n > 0) set("maxTokens", Math.min(n, 8192));
            }}
          />
        </div>
        <div className="field field-wide">
          <label htmlFor="p-system">System prompt</label>
          <textarea
            id="p-system"
            rows={2}
            value={settings.system}
            placeholder="Optional instructions for the model"
            onChange={(e) => set("system", e.target.value)}
          />
        </div>
      </div>
    </details>
  );
});
