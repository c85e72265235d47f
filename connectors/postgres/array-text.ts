/**
 * Parses PostgreSQL's array text format (the output of `array_out`): `{1,2,NULL}`, `{"a \"q\"","b,c"}`,
 * `{{1,2},{3,4}}`, `[0:1]={7,8}`. Elements stay text (or null); the caller coerces them by element type. Written
 * here rather than imported from `postgres-array` because that package is only a transitive dependency of `pg`.
 * Format: https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO
 */

export type ArrayText = (string | null | ArrayText)[];

/** Parses array text; `delimiter` is the element type's `typdelim` (`,` for all but `box`). Throws on bad input. */
export function parseArrayText(text: string, delimiter = ","): ArrayText {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`malformed array text at character ${i + 1}: ${what}`);
  };
  const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r";
  const skipSpace = () => {
    while (isSpace(text[i])) i++;
  };

  const quoted = (): string => {
    let out = "";
    for (i++; i < text.length; i++) {
      const c = text[i] as string;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === "\\") i++;
      if (i < text.length) out += text[i];
    }
    return fail("a quoted element is not closed");
  };

  const unquoted = (): string | null => {
    let out = "";
    let kept = 0; // length of `out` up to its last escaped or non-space character
    let escaped = false;
    while (i < text.length && text[i] !== delimiter && text[i] !== "}") {
      let c = text[i] as string;
      if (c === "{" || c === '"') fail(`unexpected ${c}`);
      if (c === "\\") {
        i++;
        if (i >= text.length) fail("a backslash ends the text");
        c = text[i] as string;
        escaped = true;
        out += c;
        kept = out.length;
      } else {
        out += c;
        if (!isSpace(c)) kept = out.length;
      }
      i++;
    }
    out = out.slice(0, kept);
    if (out === "") fail("an empty unquoted element");
    return !escaped && out.toUpperCase() === "NULL" ? null : out;
  };

  const list = (): ArrayText => {
    if (text[i] !== "{") fail('expected "{"');
    i++;
    const items: ArrayText = [];
    skipSpace();
    if (text[i] === "}") {
      i++;
      return items;
    }
    for (;;) {
      skipSpace();
      const c = text[i];
      items.push(c === "{" ? list() : c === '"' ? quoted() : unquoted());
      skipSpace();
      if (text[i] === "}") {
        i++;
        return items;
      }
      if (text[i] !== delimiter) fail(`expected ${JSON.stringify(delimiter)} or "}"`);
      i++;
    }
  };

  skipSpace();
  // Bounds decoration, present when a lower bound is not 1: `[0:1][1:2]={...}`.
  if (text[i] === "[") {
    const equals = text.indexOf("=", i);
    if (equals < 0) fail('expected "=" after the array bounds');
    i = equals + 1;
    skipSpace();
  }
  const result = list();
  skipSpace();
  if (i !== text.length) fail("text after the closing brace");
  return result;
}
