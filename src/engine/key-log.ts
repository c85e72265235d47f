/**
 * A temporary file of what the hash pass of a run learnt, in key order: a run of unchanged keys (its first key and
 * its length), or one record per changed key (its full row must be fetched), duplicated key, or rejected row. It keeps the pass's memory flat however big the
 * table, and is read twice in step by the fetch pass: once to batch the changed keys, once to emit the groups.
 */
import { type FileHandle, open, rm } from "node:fs/promises";
import { readVarint, writeVarint } from "../state/varint.js";

export const KeyFlag = { Unchanged: 0, Changed: 1, Duplicate: 2, Rejected: 3 } as const;
export type KeyFlag = (typeof KeyFlag)[keyof typeof KeyFlag];

/** One record. For a rejected row, `a` is the key as shown and `b` the reason; otherwise Group ID and Company ID. */
export interface KeyRecord {
  readonly flag: KeyFlag;
  /** Rows that carried the key (duplicates); the length of a run of unchanged keys; 1 otherwise. */
  readonly copies: number;
  readonly a: string;
  readonly b: string;
}

const BUFFER = 256 * 1024;

export class KeyLog {
  readonly #path: string;
  #file: FileHandle | undefined;
  #buffer = Buffer.allocUnsafe(BUFFER);
  #used = 0;
  #count = 0;

  constructor(path: string) {
    this.#path = path;
  }

  get count(): number {
    return this.#count;
  }

  /** Adds a record; returns a promise only when the buffer had to be written out first (await it then). */
  add(record: KeyRecord): Promise<void> | undefined {
    const a = Buffer.byteLength(record.a, "utf8");
    const b = Buffer.byteLength(record.b, "utf8");
    const need = 1 + 5 * 3 + a + b;
    if (this.#used + need > this.#buffer.length) {
      return this.#spill().then(() => {
        if (need > this.#buffer.length) this.#buffer = Buffer.allocUnsafe(need);
        this.add(record);
      });
    }
    let o = this.#used;
    const buffer = this.#buffer;
    buffer[o++] = record.flag;
    o = writeVarint(buffer, o, record.copies);
    o = writeVarint(buffer, o, a);
    o += buffer.write(record.a, o, "utf8");
    o = writeVarint(buffer, o, b);
    o += buffer.write(record.b, o, "utf8");
    this.#used = o;
    this.#count++;
  }

  async #spill(): Promise<void> {
    this.#file ??= await open(this.#path, "w", 0o600);
    if (this.#used > 0) await this.#file.write(this.#buffer, 0, this.#used);
    this.#used = 0;
  }

  /** Ends writing; the records can then be read, any number of times at once. */
  async finish(): Promise<void> {
    await this.#spill();
    await this.#file!.close();
    this.#file = undefined;
  }

  /** The records in order, a buffer's worth at a time. */
  async *records(): AsyncGenerator<KeyRecord[]> {
    const file = await open(this.#path, "r");
    try {
      let pending = Buffer.alloc(0);
      for (;;) {
        const chunk = Buffer.allocUnsafe(BUFFER);
        const { bytesRead } = await file.read(chunk, 0, BUFFER, null);
        if (bytesRead === 0) break;
        const data = pending.length > 0 ? Buffer.concat([pending, chunk.subarray(0, bytesRead)]) : chunk;
        const end = pending.length + bytesRead;
        let o = 0;
        const records: KeyRecord[] = [];
        for (;;) {
          const record = parse(data, o, end);
          if (!record) break;
          o = record.next;
          records.push(record.record);
        }
        if (records.length > 0) yield records;
        pending = Buffer.from(data.subarray(o, end));
      }
      if (pending.length > 0) throw new Error(`${this.#path}: truncated key log`);
    } finally {
      await file.close();
    }
  }

  async dispose(): Promise<void> {
    await this.#file?.close().catch(() => undefined);
    this.#file = undefined;
    await rm(this.#path, { force: true });
  }
}

function parse(buffer: Buffer, offset: number, end: number): { record: KeyRecord; next: number } | undefined {
  if (offset >= end) return undefined;
  const flag = buffer[offset]! as KeyFlag;
  const at = { offset: offset + 1 };
  const copies = readVarint(buffer, at, end);
  if (copies < 0) return undefined;
  const aLength = readVarint(buffer, at, end);
  if (aLength < 0 || at.offset + aLength > end) return undefined;
  const a = buffer.toString("utf8", at.offset, at.offset + aLength);
  at.offset += aLength;
  const bLength = readVarint(buffer, at, end);
  if (bLength < 0 || at.offset + bLength > end) return undefined;
  const b = buffer.toString("utf8", at.offset, at.offset + bLength);
  at.offset += bLength;
  return { record: { flag, copies, a, b }, next: at.offset };
}
