/**
 * Parses PostgreSQL's array text format (the output of `array_out`): `{1,2,NULL}`, `{"a \"q\"","b,c"}`,
 * `{{1,2},{3,4}}`, `[0:1]={7,8}`. Elements stay text (or null); the caller coerces them by element type. Written
 * here rather than imported from `postgres-array` because that package is only a transitive dependency of `pg`.
 * Format: https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO
 */

export type ArrayText = (string | null | ArrayText)[];

/** Parses array text; `delimiter` is the element type's `typdelim` (`,` for all but `box`). Throws on bad input. */
export function parseArrayText(text: string, delimiter = ","): ArrayText {
  const parser = new ArrayTextParser(text, delimiter);
  parser.skipSpace();
  // Bounds decoration, present when a lower bound is not 1: `[0:1][1:2]={...}`.
  if (text[parser.i] === "[") {
    const equals = text.indexOf("=", parser.i);
    if (equals < 0) parser.fail('expected "=" after the array bounds');
    parser.i = equals + 1;
    parser.skipSpace();
  }
  const result = parser.list();
  parser.skipSpace();
  if (parser.i !== text.length) parser.fail("text after the closing brace");
  return result;
}

const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r";

/**
 * The parser's position in one text. An element without escapes is one slice of the text (no string built a
 * character at a time: a list column is decoded for every row of a backfill).
 */
class ArrayTextParser {
  i = 0;
  constructor(
    readonly text: string,
    readonly delimiter: string,
  ) {}

  fail(what: string): never {
    throw new Error(`malformed array text at character ${this.i + 1}: ${what}`);
  }

  skipSpace(): void {
    while (isSpace(this.text[this.i])) this.i++;
  }

  quoted(): string {
    const text = this.text;
    const start = this.i + 1;
    for (let j = start; j < text.length; j++) {
      const c = text[j];
      if (c === '"') {
        this.i = j + 1;
        return text.slice(start, j);
      }
      if (c === "\\") break;
    }
    // Escapes (or no closing quote): character by character.
    let out = "";
    for (this.i++; this.i < text.length; this.i++) {
      if (text[this.i] === '"') {
        this.i++;
        return out;
      }
      if (text[this.i] === "\\") this.i++;
      if (this.i < text.length) out += text[this.i];
    }
    return this.fail("a quoted element is not closed");
  }

  unquoted(): string | null {
    const { text, delimiter } = this;
    let end = this.i;
    for (; end < text.length; end++) {
      const c = text[end];
      if (c === delimiter || c === "}" || c === "\\") break;
      if (c === "{" || c === '"') {
        this.i = end;
        this.fail(`unexpected ${c}`);
      }
    }
    if (text[end] === "\\") return this.unquotedEscaped();
    let kept = end;
    while (kept > this.i && isSpace(text[kept - 1])) kept--;
    const out = text.slice(this.i, kept);
    this.i = end;
    if (out === "") this.fail("an empty unquoted element");
    return out.length === 4 && out.toUpperCase() === "NULL" ? null : out;
  }

  /** An unquoted element with a backslash escape: never NULL, and an escaped blank is kept. */
  unquotedEscaped(): string {
    const { text, delimiter } = this;
    let out = "";
    let kept = 0; // length of `out` up to its last escaped or non-space character
    while (this.i < text.length && text[this.i] !== delimiter && text[this.i] !== "}") {
      let c = text[this.i] as string;
      if (c === "{" || c === '"') this.fail(`unexpected ${c}`);
      if (c === "\\") {
        this.i++;
        if (this.i >= text.length) this.fail("a backslash ends the text");
        c = text[this.i] as string;
        out += c;
        kept = out.length;
      } else {
        out += c;
        if (!isSpace(c)) kept = out.length;
      }
      this.i++;
    }
    return out.slice(0, kept);
  }

  list(): ArrayText {
    const text = this.text;
    if (text[this.i] !== "{") this.fail('expected "{"');
    this.i++;
    const items: ArrayText = [];
    this.skipSpace();
    if (text[this.i] === "}") {
      this.i++;
      return items;
    }
    for (;;) {
      this.skipSpace();
      const c = text[this.i];
      items.push(c === "{" ? this.list() : c === '"' ? this.quoted() : this.unquoted());
      this.skipSpace();
      if (text[this.i] === "}") {
        this.i++;
        return items;
      }
      if (text[this.i] !== this.delimiter) this.fail(`expected ${JSON.stringify(this.delimiter)} or "}"`);
      this.i++;
    }
  }
}
