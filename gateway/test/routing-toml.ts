/** One model of a test routing file (the TOML keys, with upstreams as tables). */
export interface TomlModel {
  name: string;
  fallbacks?: string[];
  aliases?: string[];
  kind?: "base" | "chat";
  upstreams: Record<string, string | number>[];
}

/** A GATEWAY_MODELS_FILE text in `[[models]]` / `[[models.upstreams]]` form. */
export function routingToml(models: TomlModel[], defaultModel?: string): string {
  const value = (v: unknown) => JSON.stringify(v);
  const lines = defaultModel === undefined ? [] : [`default = ${value(defaultModel)}`];
  for (const { upstreams, ...model } of models) {
    lines.push("[[models]]");
    for (const [k, v] of Object.entries(model)) lines.push(`${k} = ${value(v)}`);
    for (const u of upstreams) {
      lines.push("[[models.upstreams]]");
      for (const [k, v] of Object.entries(u)) lines.push(`${k} = ${value(v)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
