/**
 * The row hash of PostgreSQL's hash push-down: MD5 over the row's text as PostgreSQL's `record_out` renders it,
 * so the server computes it as `md5(ROW(c1, c2, …)::text)`, one output-function call per cell. That is about a third
 * cheaper for the server than length-prefixing each cell (which renders every value twice), and as unambiguous:
 * `(a,b,)` has a NULL last cell, `(a,b,"")` an empty one, and a cell with a delimiter, quote, backslash or blank is
 * quoted with `"` and `\` doubled.
 */
import crypto from "node:crypto";
import { HASH_BYTES } from "../state/snapshot-file.js";

/** What makes `record_out` quote a cell: its own delimiters and C `isspace` (ASCII blanks only). */
const NEEDS_QUOTES = /["\\(),\t\n\v\f\r ]/;

/** A row's cells as `ROW(...)::text` renders them. */
export function recordText(cells: readonly (string | null)[]): string {
  let text = "(";
  for (let i = 0; i < cells.length; i++) {
    if (i > 0) text += ",";
    const cell = cells[i];
    if (cell === null || cell === undefined) continue;
    if (cell === "" || NEEDS_QUOTES.test(cell)) text += `"${cell.replace(/["\\]/g, "$&$&")}"`;
    else text += cell;
  }
  return `${text})`;
}

/** `left(md5(ROW(...)::text), 16)` as 8 latin1 characters: the form snapshots store. */
export function recordHash(cells: readonly (string | null)[]): string {
  return crypto.hash("md5", recordText(cells), "binary").slice(0, HASH_BYTES);
}
