/**
 * Hashes of warehouse values. Both are MD5 over the warehouse's own text rendering of a value, so the warehouse
 * can compute the very same hashes in SQL (PostgreSQL `md5()`, Snowflake `MD5()`) and an unchanged row can cross
 * the wire as a key and a hash. Only the first 8 bytes are kept (a 2^-64 chance that a change goes unseen).
 */
import crypto from "node:crypto";
import { HASH_BYTES } from "../state/snapshot-file.js";
import { md5Prefix8 } from "./md5.js";

/**
 * MD5 of a string's UTF-8 bytes as a latin1 string. The one-shot `crypto.hash` (Node ≥ 20.12) is about 4× faster
 * than a `createHash` object per value, which dominated a run's CPU time (one hash per property per row).
 */
const md5: (text: string) => string =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("md5", text, "binary")
    : (text) => crypto.createHash("md5").update(text, "utf8").digest("binary");

/**
 * Hash of one non-null property value: md5(text) truncated, as an 8-character latin1 string. Most cells are short,
 * and for them MD5 in JavaScript (md5.ts) beats a call into node:crypto by about 2× (one call per property per row).
 */
export function propertyHash(text: string): string {
  return md5Prefix8(text);
}

/**
 * Hash of a row's properties in mapping order. Each value is length-prefixed (`<octets>:<text>`) and NULL is `N`,
 * so no two different rows serialise alike. In SQL:
 * `md5(concat(CASE WHEN c IS NULL THEN 'N' ELSE octet_length(c_text) || ':' || c_text END, …))`.
 */
export function rowHash(cells: readonly (string | null)[]): string {
  // One string, one hash: every cell's text follows its own prefix, so the UTF-8 of the whole is the UTF-8 of the
  // parts one after another.
  let text = "";
  for (const cell of cells) text += cell === null ? "N" : `${Buffer.byteLength(cell, "utf8")}:${cell}`;
  return md5(text).slice(0, HASH_BYTES);
}
