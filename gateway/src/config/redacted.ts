import { inspect } from "node:util";

export const REDACTED = "[redacted]";

/**
 * A credential read at start (an upstream's API key). Its value comes out only through
 * `reveal()`: serialised (a log line, a JSON answer) or inspected it shows `[redacted]`.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The credential itself, for the one header that carries it. */
  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
