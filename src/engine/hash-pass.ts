/**
 * The first pass of a hashed read (hashed-read.ts): the source's (key, row hash) stream against the previous
 * snapshot's keys and row hashes, both in key order, like a merge join. It works on bytes: a key is compared as its
 * UTF-8 bytes (byte order is code-point order) and a hash as two 32-bit halves, so an unchanged row, the common case,
 * costs no string and no object. Strings are made only for what goes to the queue (key-queue.ts): the first key of
 * a run of unchanged keys, and each changed, new, duplicated or rejected key.
 *
 * Rows arrive as PostgreSQL COPY text when the reader offers it (`HashReader.keysText`), else as cells (`keys()`).
 * A COPY line with a backslash (an escape, or `\N` for NULL) takes the slow way: its cells are decoded and mapped.
 */
import { copyCells } from "../copy-text.js";
import { SourceError } from "../errors.js";
import type { CompiledMapping } from "../mapping/mapper.js";
import type { HashReader, HashSpec, RawRow, ReadOptions } from "../source.js";
import type { GroupKey } from "../state/key-order.js";
import { HASH_BYTES, type RecordBlock, readRecordBlocks } from "../state/snapshot-file.js";
import { KeyFlag, type KeyRecord } from "./key-queue.js";
import { outOfOrder } from "./read-groups.js";
import { hashBytes } from "./row-hash.js";

export interface HashPassResult {
  /** Rows read. */
  readonly rows: number;
  /** Distinct valid keys. */
  readonly groups: number;
  /** Keys changed, new or duplicated: their full rows are fetched. */
  readonly changed: number;
  readonly rejected: number;
  /** Snapshot entries no source row matched. */
  readonly missing: number;
}

const TWO_32 = 4294967296;
const POWERS_OF_TEN = [1, 10, 100, 1000, 10000];

/**
 * The halves (high, low) of the last hash parsed. Module state, so parsing allocates nothing; a typed array, because
 * a number above 2^30 kept in a `let` is boxed: two heap numbers per row were most of this pass's garbage.
 */
const parsed = new Uint32Array(2);

/** The halves the last `parseInt64` (or hex parse) read, for tests. */
export function parsedHash(): readonly [high: number, low: number] {
  return [parsed[0]!, parsed[1]!];
}

/**
 * Parses a signed 64-bit decimal integer from `bytes[start, end)` into `parsed` (two's complement); false if it is
 * not one. The first 15 digits are exact in a double; at most 4 more are folded in through 32-bit halves.
 */
export function parseInt64(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  const negative = bytes[i] === 45;
  if (negative) i++;
  const digits = end - i;
  if (digits < 1 || digits > 19) return false;
  const tail = digits > 15 ? digits - 15 : 0;
  let head = 0;
  for (const headEnd = end - tail; i < headEnd; i++) {
    const digit = bytes[i]! - 48;
    if (digit < 0 || digit > 9) return false;
    head = head * 10 + digit;
  }
  let rest = 0;
  for (; i < end; i++) {
    const digit = bytes[i]! - 48;
    if (digit < 0 || digit > 9) return false;
    rest = rest * 10 + digit;
  }
  // value = head * 10^tail + rest, with head < 10^15: split head into halves, then scale them.
  const scale = POWERS_OF_TEN[tail]!;
  const headHigh = Math.floor(head / TWO_32);
  const lowProduct = (head - headHigh * TWO_32) * scale + rest;
  const carry = Math.floor(lowProduct / TWO_32);
  let low = lowProduct - carry * TWO_32;
  let high = headHigh * scale + carry;
  if (negative) {
    // Two's complement of (high, low).
    low = (TWO_32 - low) % TWO_32;
    high = (TWO_32 - high - (low === 0 ? 0 : 1)) % TWO_32;
  }
  parsed[0] = high;
  parsed[1] = low;
  return true;
}

/** Sets `parsed` from an 8-byte hash held as a latin1 string (row-hash.ts `hashBytes`). */
function splitHash(latin1: string): void {
  parsed[0] =
    (latin1.charCodeAt(0) << 24) | (latin1.charCodeAt(1) << 16) | (latin1.charCodeAt(2) << 8) | latin1.charCodeAt(3);
  parsed[1] =
    (latin1.charCodeAt(4) << 24) | (latin1.charCodeAt(5) << 16) | (latin1.charCodeAt(6) << 8) | latin1.charCodeAt(7);
}

/**
 * Compares `a[aStart, aEnd)` with `b[bStart, bEnd)` as unsigned bytes: negative, zero or positive. A loop in
 * JavaScript: keys are short, and `Buffer#compare` with offsets costs more in argument checks than in comparing.
 */
function compareBytes(a: Buffer, aStart: number, aEnd: number, b: Buffer, bStart: number, bEnd: number): number {
  const aLength = aEnd - aStart;
  const bLength = bEnd - bStart;
  const length = Math.min(aLength, bLength);
  for (let i = 0; i < length; i++) {
    const x = a[aStart + i]!;
    const y = b[bStart + i]!;
    if (x !== y) return x - y;
  }
  return aLength - bLength;
}

/** Copies `from[start, end)` to `to` at `at` (a loop for short keys, for the same reason). */
function copyBytes(from: Buffer, start: number, end: number, to: Buffer, at: number): void {
  if (end - start > 64) {
    from.copy(to, at, start, end);
    return;
  }
  for (let i = start; i < end; i++) to[at++] = from[i]!;
}

function badCopy(detail: string): SourceError {
  return new SourceError(`the source's COPY output is malformed: ${detail}`, {
    code: "SOURCE_HASH",
    action: "This is a bug in the source adapter: report it, and set hash_pushdown: false on the sync meanwhile.",
  });
}

export interface HashPassOptions {
  readonly reader: HashReader;
  readonly mapping: CompiledMapping;
  readonly spec: HashSpec;
  readonly readOptions: ReadOptions;
  readonly previousPath: string;
  /** Where the verdicts go: `add` returns a promise only to wait on. */
  readonly log: { add(record: KeyRecord): Promise<void> | undefined };
  /** Called after each chunk of rows with the counts so far. */
  readonly onRows?: (rows: number, seen: HashPassResult) => void;
}

export async function runHashPass(o: HashPassOptions): Promise<HashPassResult> {
  const { mapping, spec } = o;
  const hierarchical = spec.orderBy.length === 2;
  const keyIndexes = spec.orderBy.map((column) => spec.columns.indexOf(column));
  const int64 = o.reader.hashInRows === true;
  const raw: (string | null)[] = new Array(spec.columns.length).fill(null);

  let rows = 0;
  let groups = 0;
  let changed = 0;
  let rejected = 0;
  let missing = 0;

  // The snapshot, a block of record offsets at a time.
  // Each block is read into the same buffer: this pass is done with a block before it asks for the next.
  const blocks = readRecordBlocks(o.previousPath, { reuse: true })[Symbol.asyncIterator]();
  let block: RecordBlock | undefined;
  let at = 0;
  let snapshotDone = false;
  /** Loads the next block when the current one is used up; false at the end of the snapshot. */
  const load = async (): Promise<boolean> => {
    while (!block || at >= block.count) {
      if (snapshotDone) return false;
      const next = await blocks.next();
      if (next.done) {
        snapshotDone = true;
        block = undefined;
        return false;
      }
      block = next.value;
      at = 0;
    }
    return true;
  };

  // The pending key: the last one read, settled once a different key follows (so duplicates are counted). Its bytes
  // are copied here (Company ID, then Group ID), since the source's buffers are not ours to keep.
  let pending = Buffer.allocUnsafe(256);
  let companyLength = 0;
  let groupLength = 0;
  /** The pending key's hash halves (a typed array for the reason `parsed` is one). */
  const pendingHash = new Uint32Array(2);
  let copies = 0;
  /** Whether the pending key was mapped already (the slow way), so it is known to be valid. */
  let mapped = false;
  let have = false;

  const pendingKey = (): GroupKey => ({
    companyId: pending.toString("utf8", 0, companyLength),
    groupId: pending.toString("utf8", companyLength, companyLength + groupLength),
  });
  /** Maps the pending key: the reason it is rejected, if it is. */
  const rejection = (key: GroupKey): { key: string; reason: string } | undefined => {
    const texts = hierarchical ? [key.companyId, key.groupId] : [key.groupId];
    for (let i = 0; i < keyIndexes.length; i++) raw[keyIndexes[i]!] = texts[i]!;
    const row = mapping.map(raw);
    return row.ok ? undefined : { key: row.key ?? "(no key)", reason: row.reason };
  };

  // The run of unchanged keys being counted: consecutive keys that each matched the snapshot's next entry, so the
  // merge can carry that many entries without comparing keys. A skipped snapshot entry or any other record ends it.
  let run: { key: GroupKey; length: number } | undefined;
  const endRun = (): Promise<void> | undefined => {
    if (!run) return undefined;
    const { key, length } = run;
    run = undefined;
    return o.log.add({ flag: KeyFlag.Unchanged, copies: length, a: key.groupId, b: key.companyId });
  };
  const add = (record: KeyRecord): Promise<void> | undefined => {
    const wait = endRun();
    return wait ? wait.then(() => o.log.add(record)) : o.log.add(record);
  };
  const reject = async (key: string, reason: string, times: number): Promise<void> => {
    for (let i = 0; i < times; i++) {
      rejected++;
      const wait = add({ flag: KeyFlag.Rejected, copies: 1, a: key, b: reason });
      if (wait) await wait;
    }
  };

  /** The snapshot's current record against the pending key: negative, zero or positive. */
  const compareRecord = (b: RecordBlock): number => {
    const payload = b.payload;
    if (hierarchical) {
      // The Company ID runs up to the row hash.
      const order = compareBytes(payload, b.company[at]!, b.bitmap[at]! - HASH_BYTES, pending, 0, companyLength);
      if (order !== 0) return order;
    }
    return compareBytes(payload, b.id[at]!, b.idEnd[at]!, pending, companyLength, companyLength + groupLength);
  };

  /**
   * Skips the snapshot's entries before the pending key (no source row has them), then calls `then` with the order
   * of the entry the cursor is at against the pending key: 0 for the key's own entry, positive for a later one or
   * none. Returns a promise only to wait on.
   */
  const seek = (then: (order: number) => Promise<void> | undefined): Promise<void> | undefined => {
    for (;;) {
      let order = 1;
      if (block && at < block.count) order = compareRecord(block);
      else if (!snapshotDone) return seekAfter(load(), then);
      if (order >= 0) return then(order);
      at++;
      missing++;
      const wait = endRun();
      if (wait) return seekAfter(wait, then);
    }
  };

  // The waits of `seek` and `next` are rare, and made in functions of their own: a closure in the hot function would
  // make V8 allocate a context for its captured variables on every call (once per row).
  const seekAfter = (wait: Promise<unknown>, then: (order: number) => Promise<void> | undefined) =>
    wait.then(() => seek(then));
  /** The verdict on the pending key. Returns a promise only to wait on. */
  const settle = (): Promise<void> | undefined => seek(copies > 1 ? duplicated : judge);
  const duplicated = (order: number): Promise<void> | undefined => {
    const key = pendingKey();
    // A key the snapshot holds was valid when it was stored; another one is mapped now.
    const bad = order === 0 || mapped ? undefined : rejection(key);
    if (bad) return reject(bad.key, bad.reason, copies);
    if (order === 0) at++;
    groups++;
    changed++;
    return add({ flag: KeyFlag.Duplicate, copies, a: key.groupId, b: key.companyId });
  };
  const judge = (order: number): Promise<void> | undefined => {
    if (order === 0) {
      const payload = block!.payload;
      const hashAt = block!.bitmap[at]! - HASH_BYTES;
      if (payload.readUInt32BE(hashAt) === pendingHash[0] && payload.readUInt32BE(hashAt + 4) === pendingHash[1]) {
        // Unchanged: the common case, and the only one that makes no string unless it starts a run.
        at++;
        groups++;
        if (run) run.length++;
        else run = { key: pendingKey(), length: 1 };
        return undefined;
      }
    }
    const key = pendingKey();
    const bad = order === 0 || mapped ? undefined : rejection(key);
    if (bad) return reject(bad.key, bad.reason, 1);
    if (order === 0) at++;
    groups++;
    changed++;
    return add({ flag: KeyFlag.Changed, copies: 1, a: key.groupId, b: key.companyId });
  };

  /** Takes the next key (ranges of `company` and `group`) with the hash in `parsed`. */
  const next = (
    company: Buffer,
    companyStart: number,
    companyEnd: number,
    group: Buffer,
    groupStart: number,
    groupEnd: number,
    isMapped: boolean,
  ): Promise<void> | undefined => {
    const high = parsed[0]!;
    const low = parsed[1]!;
    if (have) {
      let order = hierarchical ? compareBytes(company, companyStart, companyEnd, pending, 0, companyLength) : 0;
      if (order === 0) {
        order = compareBytes(group, groupStart, groupEnd, pending, companyLength, companyLength + groupLength);
      }
      if (order === 0) {
        copies++;
        mapped &&= isMapped;
        return undefined;
      }
      if (order < 0) {
        const after = {
          companyId: company.toString("utf8", companyStart, companyEnd),
          groupId: group.toString("utf8", groupStart, groupEnd),
        };
        throw outOfOrder(pendingKey(), after, "code-point order");
      }
      const wait = settle();
      if (wait)
        return takeAfter(wait, company, companyStart, companyEnd, group, groupStart, groupEnd, high, low, isMapped);
    }
    take(company, companyStart, companyEnd, group, groupStart, groupEnd, high, low, isMapped);
    return undefined;
  };
  const takeAfter = (wait: Promise<void>, ...args: Parameters<typeof take>): Promise<void> =>
    wait.then(() => take(...args));
  const take = (
    company: Buffer,
    companyStart: number,
    companyEnd: number,
    group: Buffer,
    groupStart: number,
    groupEnd: number,
    high: number,
    low: number,
    isMapped: boolean,
  ): void => {
    companyLength = companyEnd - companyStart;
    groupLength = groupEnd - groupStart;
    if (companyLength + groupLength > pending.length) pending = Buffer.allocUnsafe(2 * (companyLength + groupLength));
    copyBytes(company, companyStart, companyEnd, pending, 0);
    copyBytes(group, groupStart, groupEnd, pending, companyLength);
    pendingHash[0] = high;
    pendingHash[1] = low;
    copies = 1;
    mapped = isMapped;
    have = true;
  };

  const none = Buffer.alloc(0);
  /** A row as cells (the slow way): mapped first, so a bad key is rejected before it is compared with anything. */
  const cellsRow = (cells: RawRow): Promise<void> | undefined => {
    for (let i = 0; i < keyIndexes.length; i++) raw[keyIndexes[i]!] = cells[i] ?? null;
    const row = mapping.map(raw);
    if (!row.ok) {
      rejected++;
      return add({ flag: KeyFlag.Rejected, copies: 1, a: row.key ?? "(no key)", b: row.reason });
    }
    splitHash(hashBytes(cells[keyIndexes.length], int64));
    const company = hierarchical ? Buffer.from(row.key.companyId, "utf8") : none;
    const group = Buffer.from(row.key.groupId, "utf8");
    return next(company, 0, company.length, group, 0, group.length, true);
  };

  const text = o.reader.keysText?.(o.spec, o.readOptions);
  try {
    if (text) {
      const tabs = hierarchical ? 2 : 1;
      let rest: Buffer | undefined;
      for await (const chunk of text) {
        const data: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
        let start = 0;
        let backslash = data.indexOf(92);
        for (let end = data.indexOf(10, start); end >= 0; end = data.indexOf(10, start)) {
          rows++;
          if (backslash >= 0 && backslash < start) backslash = data.indexOf(92, start);
          let wait: Promise<void> | undefined;
          if (backslash >= 0 && backslash < end) {
            wait = cellsRow(copyCells(data.toString("utf8", start, end)));
          } else {
            const first = data.indexOf(9, start);
            const second = tabs === 2 ? data.indexOf(9, first + 1) : first;
            if (first < 0 || second < 0 || second >= end) throw badCopy(`a row has fewer than ${tabs + 1} cells`);
            if (!(int64 ? parseInt64(data, second + 1, end) : hexHash(data, second + 1, end))) {
              throw new SourceError(
                `the source returned ${JSON.stringify(data.toString("utf8", second + 1, end))} as a row hash`,
                {
                  code: "SOURCE_HASH",
                  action:
                    "This is a bug in the source adapter: report it, and set hash_pushdown: false on the sync meanwhile.",
                },
              );
            }
            wait =
              tabs === 2
                ? next(data, start, first, data, first + 1, second, false)
                : next(none, 0, 0, data, start, first, false);
          }
          if (wait) await wait;
          start = end + 1;
        }
        rest = start < data.length ? data.subarray(start) : undefined;
        o.onRows?.(rows, { rows, groups, changed, rejected, missing });
      }
      if (rest && rest.length > 0) throw badCopy("it ended in the middle of a row");
    } else {
      for await (const chunk of o.reader.keys(o.spec, o.readOptions)) {
        for (const cells of chunk) {
          rows++;
          const wait = cellsRow(cells);
          if (wait) await wait;
        }
        o.onRows?.(rows, { rows, groups, changed, rejected, missing });
      }
    }
    if (have) await settle();
    await endRun();
    // The entries after the last source row's key: no row matched them either.
    while (await load()) {
      missing += block!.count - at;
      at = block!.count;
    }
  } finally {
    await blocks.return?.(undefined);
  }
  return { rows, groups, changed, rejected, missing };
}

/** Parses 16 lowercase hex digits from `bytes[start, end)` into `parsed`; false if they are not. */
function hexHash(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start !== 16) return false;
  let high = 0;
  let low = 0;
  for (let i = 0; i < 16; i++) {
    const c = bytes[start + i]!;
    const nibble = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (nibble < 0) return false;
    if (i < 8) high = high * 16 + nibble;
    else low = low * 16 + nibble;
  }
  parsed[0] = high;
  parsed[1] = low;
  return true;
}
