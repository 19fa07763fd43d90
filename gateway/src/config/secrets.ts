const PLACEHOLDERS = new Set([
  "",
  "changeme",
  "change-me",
  "change_me",
  "change me",
  "changethis",
  "change-this",
  "replaceme",
  "replace-me",
  "replace_me",
  "placeholder",
  "secret",
  "password",
  "token",
  "todo",
  "tbd",
  "xxx",
  "dummy",
  "example",
  "your-secret",
  "your-secret-here",
  "your-token",
  "your-token-here",
]);

/** True when the value looks like a template value rather than a real secret. */
export function isPlaceholder(value: string | undefined): boolean {
  if (value === undefined) return true;
  const v = value.trim().toLowerCase();
  if (PLACEHOLDERS.has(v)) return true;
  if (/^<.*>$/.test(v) || /^\$\{.*\}$/.test(v)) return true;
  if (/^x+$/.test(v)) return true;
  return v.includes("changeme") || v.includes("change-me") || v.includes("placeholder");
}

export interface SecretSpec {
  name: "AUTH_SECRET" | "LLM_SERVER_TOKEN";
  minLength: number;
  hint: string;
}

export const SECRETS: SecretSpec[] = [
  { name: "AUTH_SECRET", minLength: 32, hint: "a random string of at least 32 characters" },
  {
    name: "LLM_SERVER_TOKEN",
    minLength: 16,
    hint: "the bearer token the llm-server expects, at least 16 characters",
  },
];
