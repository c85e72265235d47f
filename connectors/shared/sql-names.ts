/**
 * SQL names both warehouses write the same way: identifiers in double quotes (`"` doubled inside), and `from` names of
 * up to three dot-separated parts, each plain or already double-quoted. What a plain part may hold, and how it folds
 * (PostgreSQL lower-cases, Snowflake upper-cases), is each warehouse's own.
 */
import { SourceError } from "../../src/errors.js";

/** Quotes one identifier exactly as given: `a"b` → `"a""b"`. */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes("\0")) {
    throw new SourceError(`invalid identifier ${JSON.stringify(name)}`, {
      code: "SOURCE_IDENTIFIER_INVALID",
      action: "Use a non-empty column or table name without NUL characters.",
    });
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quotes a `from` name: `table`, `schema.table` or `database.schema.table`. A quoted part keeps its case and may hold
 * dots; a plain part goes through `plain`, which returns it as the warehouse resolves it or throws `invalid(why)`.
 */
export function quoteRelation(
  from: string,
  options: { readonly plain: (raw: string, invalid: (why: string) => never) => string; readonly action: string },
): string {
  const invalid = (why: string): never => {
    throw new SourceError(`invalid table name ${JSON.stringify(from)}: ${why}`, {
      code: "SOURCE_RELATION_INVALID",
      action: options.action,
    });
  };
  const text = from.trim();
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = "";
    if (text[i] === '"') {
      for (i++; ; i++) {
        if (i >= text.length) invalid("a quote is not closed");
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        part += text[i];
      }
      i++;
      if (part === "") invalid("an empty quoted name");
    } else {
      const end = text.indexOf(".", i);
      const raw = text.slice(i, end < 0 ? text.length : end).trim();
      if (raw === "") invalid("an empty name part");
      part = options.plain(raw, invalid);
      i = end < 0 ? text.length : end;
    }
    parts.push(part);
    if (i >= text.length) break;
    if (text[i] !== ".") invalid(`unexpected ${JSON.stringify(text[i])} after a quoted name`);
    i++;
  }
  if (parts.length > 3) invalid("more than three name parts");
  return parts.map(quoteIdent).join(".");
}
