/**
 * A secret from the config (token, password, connection URL). It prints as `***` through `String()`, JSON and
 * `util.inspect`, so logging a config object cannot leak it; `reveal()` is the one way to read it. Every secret
 * value is also remembered so `redact()` can scrub it from text we did not build ourselves (driver errors).
 */
import { inspect } from "node:util";

const known = new Set<string>();

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    if (value.length >= 4) known.add(value);
    // A URL's password can show up on its own, decoded, in a driver's message.
    try {
      const password = decodeURIComponent(new URL(value).password);
      if (password.length >= 4) known.add(password);
    } catch {
      // not a URL
    }
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "***";
  }

  toJSON(): string {
    return "***";
  }

  [inspect.custom](): string {
    return "Secret(***)";
  }
}

/** Replaces every known secret value in `text` with `***`. */
export function redact(text: string): string {
  let out = text;
  for (const value of known) {
    if (out.includes(value)) out = out.split(value).join("***");
  }
  return out;
}

/** Remembers a value to scrub that did not come from the config (an env var read directly). */
export function registerSecretValue(value: string): void {
  if (value.length >= 4) known.add(value);
}
