/**
 * Hashes of warehouse values. Both are MD5 over the warehouse's own text rendering of a value, so the warehouse
 * can compute the very same hashes in SQL (PostgreSQL `md5()`, Snowflake `MD5()`) and an unchanged row can cross
 * the wire as a key and a hash. Only the first 8 bytes are kept (a 2^-64 chance that a change goes unseen).
 */
import { createHash } from "node:crypto";
import { HASH_BYTES } from "../state/snapshot-file.js";

/** Hash of one non-null property value: md5(text) truncated, as an 8-character latin1 string. */
export function propertyHash(text: string): string {
  return createHash("md5").update(text, "utf8").digest("binary").slice(0, HASH_BYTES);
}

/**
 * Hash of a row's properties in mapping order. Each value is length-prefixed (`<octets>:<text>`) and NULL is `N`,
 * so no two different rows serialise alike. In SQL:
 * `md5(concat(CASE WHEN c IS NULL THEN 'N' ELSE octet_length(c_text) || ':' || c_text END, …))`.
 */
export function rowHash(cells: readonly (string | null)[]): string {
  const md5 = createHash("md5");
  for (const cell of cells) {
    md5.update(cell === null ? "N" : `${Buffer.byteLength(cell, "utf8")}:`, "utf8");
    if (cell !== null) md5.update(cell, "utf8");
  }
  return md5.digest("binary").slice(0, HASH_BYTES);
}
