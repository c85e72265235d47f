/**
 * Rows of PostgreSQL's COPY text format (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format"):
 * one row per line, columns separated by tabs, `\N` for NULL, and backslash escapes for backslash and control
 * characters. A newline inside a value is always escaped, so every 0x0A byte ends a row, and a row's bytes are whole
 * UTF-8. The PostgreSQL source streams its hash pass this way (`HashReader.keysText`), and the engine reads it.
 */
import type { RawRow } from "./source.js";

const ESCAPES: Readonly<Record<string, string>> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };

/** One value as COPY wrote it: `\N` is NULL; `\x41`, `\101` and the letter escapes are decoded. */
export function copyValue(field: string): string | null {
  if (field === "\\N") return null;
  if (!field.includes("\\")) return field;
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, code: string) => {
    if (code[0] === "x") return String.fromCharCode(Number.parseInt(code.slice(1), 16));
    if (/^[0-7]/.test(code)) return String.fromCharCode(Number.parseInt(code, 8));
    return ESCAPES[code] ?? code;
  });
}

/** A COPY text row's cells. */
export function copyCells(line: string): (string | null)[] {
  return line.split("\t").map(copyValue);
}

/** Turns COPY text chunks into batches of at most `batchSize` rows. */
export async function* copyRows(chunks: AsyncIterable<Buffer>, batchSize: number): AsyncGenerator<RawRow[]> {
  let rest: Buffer | undefined;
  let batch: RawRow[] = [];
  for await (const chunk of chunks) {
    const data: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let end = data.indexOf(10, start); end >= 0; end = data.indexOf(10, start)) {
      batch.push(copyCells(data.toString("utf8", start, end)));
      start = end + 1;
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    rest = start < data.length ? data.subarray(start) : undefined;
  }
  if (rest && rest.length > 0) throw new Error("COPY output ended in the middle of a row");
  if (batch.length > 0) yield batch;
}
