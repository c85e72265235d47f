/** Row hashes as sources return them (hash push-down), turned into the 8 bytes snapshots store. */
import { SourceError } from "../errors.js";

const INT64 = /^-?[0-9]{1,19}$/;
const int64Bytes = Buffer.alloc(8);

/**
 * A row hash as the source returned it, as the 8 bytes snapshots hold (a latin1 string): 16 hex digits, or a signed
 * 64-bit integer from a reader whose hashes come with its rows (`HashReader.hashInRows`).
 */
export function hashBytes(cell: string | null | undefined, int64: boolean): string {
  if (typeof cell === "string") {
    if (int64 && INT64.test(cell)) {
      int64Bytes.writeBigInt64BE(BigInt(cell));
      return int64Bytes.toString("latin1");
    }
    if (!int64 && /^[0-9a-f]{16}$/.test(cell)) return Buffer.from(cell, "hex").toString("latin1");
  }
  throw new SourceError(
    `the source returned ${JSON.stringify(cell)} as a row hash, not ${int64 ? "a 64-bit integer" : "16 hex digits"}`,
    {
      code: "SOURCE_HASH",
      action: "This is a bug in the source adapter: report it, and set hash_pushdown: false on the sync meanwhile.",
    },
  );
}
