/**
 * The snapshot: what the destination holds for every group of a sync, as hashes, sorted by key so a run can merge
 * it with the ordered source rows without holding either in memory.
 *
 * File layout (all integers little-endian):
 *   magic "GSSNAP1\n"
 *   u32 header length, header JSON ({ format, properties, hierarchical })
 *   blocks: u32 payload length, u32 record count, 16-byte checksum of the payload, payload
 *   footer: u32 0xFFFFFFFF, u64 total record count
 * Record: varint+UTF-8 Group ID, varint+UTF-8 Company ID (hierarchical only), 8-byte row hash,
 *   a bitmap of which properties are set, then 8 bytes of hash for each set property; format 2 adds a varint count
 *   of item lists, then for each a varint property index and a varint+UTF-8 JSON array (`op: union` properties: the
 *   items groupsync added that the destination acknowledged, so a later run can `$remove` the ones that left).
 *   Format 3 is format 2 with a CRC-32 of the payload (u32, then 12 zero bytes) as the block checksum instead of an
 *   MD5: a run reads the previous snapshot twice and writes a new one, and MD5 cost more CPU than all the rest of an
 *   unchanged group's work. Formats 1 (no item lists) and 2 (MD5) are still read.
 * Every block is checked against its checksum before use, and a missing footer means a truncated file: corruption is
 * always a StateError, never a silent full re-send.
 */
import { createHash } from "node:crypto";
import { readSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { StateError } from "../errors.js";
import type { GroupKey } from "./key-order.js";
import { stateWriteError } from "./state-dir.js";
import { readVarint, writeVarint } from "./varint.js";

const MAGIC = Buffer.from("GSSNAP1\n", "latin1");
const FOOTER_MARK = 0xffffffff;
const BLOCK_TARGET = 64 * 1024;
/** A sealed block's length, record count and checksum, before its payload. */
const FRAME_HEAD = 8 + 16;
/** A frame buffer that holds a block of the usual size (a payload up to twice BLOCK_TARGET). */
const FRAME_CAPACITY = FRAME_HEAD + BLOCK_TARGET * 2;
/**
 * Written frame buffers a writer keeps for its next blocks. Every new Buffer counts as external memory, and V8
 * starts a full collection for each few tens of MB of it: copying a 1M-group snapshot into fresh 64 KiB frames
 * cost a run a mark-compact every 60 ms while it lasted.
 */
const SPARE_FRAMES = 4;
/**
 * Bytes written without an fsync after which a writer starts one in the background: the kernel then writes a large
 * snapshot out while the run goes on, instead of all of it in `finish()`'s fsync, which the run waits for (192 ms of
 * a 1M-group re-sync's 115 MB).
 */
const BACKGROUND_SYNC_BYTES = 16 * 1024 * 1024;
export const HASH_BYTES = 8;

/** Hash of a property known to be set in the destination with a value we cannot compare against. */
export const UNKNOWN_HASH = "\0".repeat(HASH_BYTES);

export interface SnapshotHeader {
  /** Property names, in the order of each entry's `hashes`. */
  readonly properties: readonly string[];
  readonly hierarchical: boolean;
  /** Set when read from a format 1 file (no item lists); new files are always written in format 3. */
  readonly format?: 1;
  /** Set when read from a format 1 or 2 file: its blocks carry an MD5, not a CRC-32. */
  readonly md5?: true;
}

/** One group as the destination holds it. Hashes are 8-character latin1 strings (8 bytes); null = not set. */
export interface SnapshotEntry extends GroupKey {
  /** Hash of the whole row as last fully acknowledged; UNKNOWN_HASH when only part of it was. */
  rowHash: string;
  readonly hashes: (string | null)[];
  /**
   * `op: union` properties: the list items groupsync added and the destination acknowledged, as a JSON array text,
   * by property index (same layout as `hashes`); absent or null where there are none.
   */
  items?: (string | null)[];
}

/**
 * An entry read from a file, which keeps its record's bytes: a writer with the same record shape copies them
 * instead of encoding the entry again (an unchanged group costs a memcpy), and its hashes and item lists are decoded
 * only when asked for (most entries of a run are carried as they are). It is frozen, and so are its arrays, so the
 * bytes always say what the entry says: code that changes an entry changes a copy (and a copy has no bytes).
 */
class StoredEntry implements SnapshotEntry {
  /** The block the record is in, and where in it the record and its parts are (offsets, not views: cheaper). */
  readonly #block: Buffer;
  readonly #start: number;
  readonly #end: number;
  readonly #id: number;
  readonly #idEnd: number;
  readonly #company: number;
  readonly #bitmap: number;
  readonly #shape: Shape;
  // Decoded when first asked for: a group carried as it is never needs its key as a string.
  #groupId: string | undefined;
  #companyId: string | undefined;
  #hashes: (string | null)[] | undefined;
  #items: (string | null)[] | undefined;

  /** The Group ID's bytes are `[id, idEnd)`; the Company ID's run from `company` to the row hash. */
  constructor(
    block: Buffer,
    start: number,
    end: number,
    id: number,
    idEnd: number,
    company: number,
    bitmap: number,
    shape: Shape,
  ) {
    this.#block = block;
    this.#start = start;
    this.#end = end;
    this.#id = id;
    this.#idEnd = idEnd;
    this.#company = company;
    this.#bitmap = bitmap;
    this.#shape = shape;
    Object.freeze(this);
  }

  get groupId(): string {
    this.#groupId ??= this.#block.toString("utf8", this.#id, this.#idEnd);
    return this.#groupId;
  }

  get companyId(): string {
    if (this.#companyId === undefined) {
      this.#companyId = this.#shape.hierarchical
        ? this.#block.toString("utf8", this.#company, this.#bitmap - HASH_BYTES)
        : "";
    }
    return this.#companyId;
  }

  get rowHash(): string {
    return readHash(this.#block, this.#bitmap - HASH_BYTES);
  }

  get hashes(): (string | null)[] {
    if (!this.#hashes) this.#decode();
    return this.#hashes!;
  }

  get items(): (string | null)[] | undefined {
    if (!this.#hashes) this.#decode();
    return this.#items;
  }

  #decode(): void {
    const raw = this.#block;
    const { properties, withItems } = this.#shape;
    const bitmap = this.#bitmap;
    let o = bitmap + ((properties + 7) >> 3);
    const hashes: (string | null)[] = new Array(properties);
    for (let i = 0; i < properties; i++) {
      if (raw[bitmap + (i >> 3)]! & (1 << (i & 7))) {
        hashes[i] = readHash(raw, o);
        o += HASH_BYTES;
      } else {
        hashes[i] = null;
      }
    }
    if (withItems) {
      // The reader checked these bytes when it read the block.
      let items: (string | null)[] | undefined;
      const at = { offset: o };
      const lists = readVarint(raw, at, this.#end);
      for (let l = 0; l < lists; l++) {
        const index = readVarint(raw, at, this.#end);
        const length = readVarint(raw, at, this.#end);
        items ??= new Array(properties).fill(null);
        items[index] = raw.toString("utf8", at.offset, at.offset + length);
        at.offset += length;
      }
      if (items) this.#items = Object.freeze(items) as (string | null)[];
    }
    this.#hashes = Object.freeze(hashes) as (string | null)[];
  }

  /** Adds 1 to `counts[i]` for each property `i` set on `entry`, from its bitmap when it was read from a file. */
  static countSet(entry: SnapshotEntry, counts: number[]): void {
    if (entry instanceof StoredEntry && !entry.#hashes) {
      countBitmap(entry.#block, entry.#bitmap, counts);
      return;
    }
    const hashes = entry.hashes;
    for (let i = 0; i < hashes.length; i++) if (hashes[i] !== null) counts[i]!++;
  }

  /** The length of the record's bytes if they fit a file of this shape as they are, else -1. */
  static rawLength(entry: SnapshotEntry, shape: Shape): number {
    return entry instanceof StoredEntry && entry.#shape.key === shape.key ? entry.#end - entry.#start : -1;
  }

  /** Copies the record's bytes (see `rawLength`) to `target` at `at`. */
  static copyRaw(entry: StoredEntry, target: Buffer, at: number): number {
    return entry.#block.copy(target, at, entry.#start, entry.#end);
  }
}

/** What a record's bytes depend on: item lists or not, a Company ID or not, the width of the bitmap. */
interface Shape {
  readonly withItems: boolean;
  readonly hierarchical: boolean;
  readonly properties: number;
  readonly key: string;
}

const recordShape = (withItems: boolean, hierarchical: boolean, properties: number): Shape => ({
  withItems,
  hierarchical,
  properties,
  key: `${withItems ? 2 : 1}|${hierarchical}|${properties}`,
});

/** The 8-byte hash at `at` as 8 latin1 characters, as `raw.toString("latin1", at, at + 8)` without a call into C++. */
function readHash(raw: Buffer, at: number): string {
  return String.fromCharCode(
    raw[at]!,
    raw[at + 1]!,
    raw[at + 2]!,
    raw[at + 3]!,
    raw[at + 4]!,
    raw[at + 5]!,
    raw[at + 6]!,
    raw[at + 7]!,
  );
}

/** The item lists of an entry that has none (shared, never added to). */
const NO_LISTS: [number, Buffer][] = [];

/** Whether every character of `text` is ASCII (its UTF-8 is then its characters). */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Writes at most `max` characters of `text` at `at` as latin1 (each character's low byte), as `Buffer#write(text,
 * at, max, "latin1")` does, without a call into C++ per hash; returns the offset after them.
 */
function writeLatin1(target: Buffer, at: number, text: string, max: number): number {
  const count = Math.min(text.length, max);
  for (let i = 0; i < count; i++) target[at + i] = text.charCodeAt(i);
  return at + count;
}

/** A caller of `SnapshotWriter.durable()`, until its fsync is done. */
interface SyncWaiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Writes a snapshot file. Entries must be added in key order. */
export class SnapshotWriter {
  #file: FileHandle;
  readonly #path: string;
  #block: Buffer = Buffer.allocUnsafe(BLOCK_TARGET * 2);
  #used = 0;
  #blockRecords = 0;
  #total = 0;
  /** Sealed blocks (length, count, checksum and payload) not written yet, in file order. */
  #sealed: Buffer[] = [];
  /** Frame buffers of FRAME_CAPACITY bytes whose blocks are written, for the next blocks. */
  #spare: Buffer[] = [];
  /** Bytes written since the last fsync began. */
  #unsynced = 0;
  /** An fsync started by `#syncInBackground`, until it ends (it never rejects). */
  #background: Promise<void> | undefined;
  /** Callers of `durable()` waiting for the next fsync. */
  #syncWaiters: SyncWaiter[] = [];
  /** The loop writing sealed blocks and fsyncing, while it runs. */
  #pump: Promise<void> | undefined;
  /** Why a write failed: the writer is closed, and every later call fails with it. */
  #failure: unknown;
  readonly #properties: number;
  readonly #hierarchical: boolean;
  readonly #shape: Shape;

  private constructor(file: FileHandle, path: string, header: SnapshotHeader) {
    this.#file = file;
    this.#path = path;
    this.#properties = header.properties.length;
    this.#hierarchical = header.hierarchical;
    this.#shape = recordShape(true, header.hierarchical, header.properties.length);
  }

  static async create(path: string, header: SnapshotHeader): Promise<SnapshotWriter> {
    let file: FileHandle;
    try {
      file = await open(path, "w", 0o600);
    } catch (error) {
      throw stateWriteError(path, error);
    }
    const writer = new SnapshotWriter(file, path, header);
    const json = Buffer.from(
      JSON.stringify({ format: 3, properties: header.properties, hierarchical: header.hierarchical }),
      "utf8",
    );
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length);
    await writer.#io(() => file.write(Buffer.concat([MAGIC, length, json])));
    return writer;
  }

  /**
   * A write to the file: a failure (a full disk, a read-only filesystem) becomes a StateError naming the file, and
   * closes it, since a writer that failed once cannot be trusted to continue.
   */
  async #io<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (error) {
      await this.#file.close().catch(() => undefined);
      throw stateWriteError(this.#path, error);
    }
  }

  get count(): number {
    return this.#total;
  }

  /**
   * Adds one entry; seals the block when it is full and returns a promise that resolves once the sealed blocks are
   * written (backpressure), only then (an entry read from a file with this record shape is copied as bytes, without a
   * promise per entry). Adding while earlier blocks are being written or synced is safe: entries go to a new block.
   */
  add(entry: SnapshotEntry): Promise<void> | undefined {
    const length = StoredEntry.rawLength(entry, this.#shape);
    if (length < 0) {
      this.#encode(entry);
    } else {
      this.#reserve(length);
      this.#used += StoredEntry.copyRaw(entry as StoredEntry, this.#block, this.#used);
      this.#blockRecords++;
      this.#total++;
    }
    return this.#used >= BLOCK_TARGET ? this.#flushBlock() : undefined;
  }

  /**
   * Adds records `[from, to)` of a block read from a file, as their bytes, when the block's record shape is this
   * file's (else entry by entry). Returns a promise only when a block had to be written.
   */
  addRecords(block: RecordBlock, from: number, to: number): Promise<void> | undefined {
    if (block.shape.key !== this.#shape.key) return this.#addEach(block, from, to);
    const begin = block.start[from]!;
    const end = block.start[to]!;
    this.#reserve(end - begin);
    this.#used += block.payload.copy(this.#block, this.#used, begin, end);
    this.#blockRecords += to - from;
    this.#total += to - from;
    return this.#used >= BLOCK_TARGET ? this.#flushBlock() : undefined;
  }

  /** Makes room for `bytes` more in the current block (it grows past BLOCK_TARGET for a large entry). */
  #reserve(bytes: number): void {
    if (this.#used + bytes <= this.#block.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.#block.length * 2, this.#used + bytes));
    this.#block.copy(bigger, 0, 0, this.#used);
    this.#block = bigger;
  }

  async #addEach(block: RecordBlock, from: number, to: number): Promise<void> {
    for (let r = from; r < to; r++) await this.add(entryAt(block, r));
  }

  /** Appends an entry to the current block (synchronous: an async function cost a promise and a frame per entry). */
  #encode(entry: SnapshotEntry): void {
    // An ASCII Group ID (the usual case) is written character by character below: no Buffer per entry.
    const ascii = isAscii(entry.groupId);
    const groupId = ascii ? undefined : Buffer.from(entry.groupId, "utf8");
    const groupIdLength = groupId ? groupId.length : entry.groupId.length;
    const companyId = this.#hierarchical ? Buffer.from(entry.companyId, "utf8") : undefined;
    const bitmapBytes = (this.#properties + 7) >> 3;
    let set = 0;
    for (const hash of entry.hashes) if (hash !== null) set++;
    // Most entries have no item lists: no array (nor closure) for them.
    let lists: [number, Buffer][] = NO_LISTS;
    const allItems = entry.items;
    if (allItems) {
      for (let index = 0; index < allItems.length && index < this.#properties; index++) {
        const items = allItems[index];
        if (items === null || items === undefined) continue;
        if (lists === NO_LISTS) lists = [];
        lists.push([index, Buffer.from(items, "utf8")]);
      }
    }
    let listBytes = 5;
    for (const [, text] of lists) listBytes += 10 + text.length;
    const size =
      10 +
      groupIdLength +
      (companyId ? 5 + companyId.length : 0) +
      HASH_BYTES +
      bitmapBytes +
      set * HASH_BYTES +
      listBytes;
    this.#reserve(size);
    const b = this.#block;
    let o = writeVarint(b, this.#used, groupIdLength);
    if (groupId) o += groupId.copy(b, o);
    else o = writeLatin1(b, o, entry.groupId, groupIdLength);
    if (companyId) {
      o = writeVarint(b, o, companyId.length);
      o += companyId.copy(b, o);
    }
    o = writeLatin1(b, o, entry.rowHash, HASH_BYTES);
    b.fill(0, o, o + bitmapBytes);
    for (let i = 0; i < this.#properties; i++) {
      if ((entry.hashes[i] ?? null) !== null) b[o + (i >> 3)]! |= 1 << (i & 7);
    }
    o += bitmapBytes;
    for (let i = 0; i < this.#properties; i++) {
      const hash = entry.hashes[i];
      if (hash !== null && hash !== undefined) o = writeLatin1(b, o, hash, HASH_BYTES);
    }
    o = writeVarint(b, o, lists.length);
    for (const [index, text] of lists) {
      o = writeVarint(b, o, index);
      o = writeVarint(b, o, text.length);
      o += text.copy(b, o);
    }
    this.#used = o;
    this.#blockRecords++;
    this.#total++;
  }

  /** Seals the current block and waits until every sealed block is written. */
  async #flushBlock(): Promise<void> {
    this.#seal();
    await this.#kick();
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Moves the current block's records, framed, to the blocks to write, and starts an empty block at once: a copy of
   * the payload, so that entries added while it is written (or synced) never touch the bytes in flight.
   */
  #seal(): void {
    if (this.#blockRecords === 0) return;
    const payload = this.#block.subarray(0, this.#used);
    const size = FRAME_HEAD + payload.length;
    const framed = this.#frameBuffer(size).subarray(0, size);
    framed.writeUInt32LE(payload.length, 0);
    framed.writeUInt32LE(this.#blockRecords, 4);
    checksum(payload, false).copy(framed, 8);
    payload.copy(framed, FRAME_HEAD);
    this.#sealed.push(framed);
    this.#used = 0;
    this.#blockRecords = 0;
  }

  /**
   * Starts an fsync of what is written so far, which no caller waits for; blocks go on being written meanwhile. A
   * failure fails the writer, as a failed write does.
   */
  #syncInBackground(): void {
    this.#unsynced = 0;
    this.#background = this.#io(() => this.#file.sync()).then(
      () => {
        this.#background = undefined;
      },
      (error: unknown) => {
        this.#failure ??= error;
        this.#background = undefined;
      },
    );
  }

  /**
   * A buffer for a frame of `size` bytes: a spare one when it fits; else a new one, of FRAME_CAPACITY bytes for a
   * full block so that it can be reused, and of its own size for a small block (sealed early by `durable()`).
   */
  #frameBuffer(size: number): Buffer {
    if (size > FRAME_CAPACITY) return Buffer.allocUnsafe(size);
    return this.#spare.pop() ?? Buffer.allocUnsafe(size - FRAME_HEAD < BLOCK_TARGET ? size : FRAME_CAPACITY);
  }

  /** Keeps a written frame for a later block, when it is a whole FRAME_CAPACITY buffer and there is room. */
  #recycle(frame: Buffer): void {
    if (frame.byteOffset !== 0 || frame.buffer.byteLength !== FRAME_CAPACITY) return;
    if (this.#spare.length < SPARE_FRAMES) this.#spare.push(Buffer.from(frame.buffer, 0, FRAME_CAPACITY));
  }

  /** Starts the write loop unless it runs; resolves when it has nothing left to do. */
  #kick(): Promise<void> {
    this.#pump ??= this.#writeLoop().finally(() => {
      this.#pump = undefined;
    });
    return this.#pump;
  }

  /**
   * Writes the sealed blocks in order, then fsyncs for the callers of `durable()` waiting at that moment: callers
   * that come while a write or an fsync is under way share the next one (group commit). Never rejects: a failure
   * is kept in `#failure` and given to every waiter.
   */
  async #writeLoop(): Promise<void> {
    // The callers this loop's fsync answers; callers that come meanwhile wait in #syncWaiters for the next one.
    let syncing: SyncWaiter[] = [];
    try {
      while (this.#failure === undefined && (this.#sealed.length > 0 || this.#syncWaiters.length > 0)) {
        if (this.#sealed.length > 0) {
          const blocks = this.#sealed;
          this.#sealed = [];
          await this.#io(() => this.#file.writev(blocks));
          for (const block of blocks) {
            this.#unsynced += block.length;
            this.#recycle(block);
          }
          if (this.#unsynced >= BACKGROUND_SYNC_BYTES && this.#background === undefined) this.#syncInBackground();
        } else {
          // Every block sealed before these callers asked is written: one fsync covers them all.
          syncing = this.#syncWaiters;
          this.#syncWaiters = [];
          this.#unsynced = 0;
          await this.#io(() => this.#file.sync());
          for (const waiter of syncing) waiter.resolve();
          syncing = [];
        }
      }
    } catch (error) {
      this.#failure = error;
    }
    if (this.#failure !== undefined) {
      this.#sealed = [];
      const waiters = [...syncing, ...this.#syncWaiters];
      this.#syncWaiters = [];
      for (const waiter of waiters) waiter.reject(this.#failure);
    }
  }

  /**
   * Makes the entries added so far durable (written and fsynced), so they survive a crash (the journal, before each
   * batch is sent). Entries can be added meanwhile; concurrent callers share an fsync.
   */
  durable(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    this.#seal();
    return new Promise<void>((resolve, reject) => {
      this.#syncWaiters.push({ resolve, reject });
      void this.#kick();
    });
  }

  /** Writes the last block and the footer, and makes the file durable (fsync). */
  async finish(): Promise<void> {
    await this.#flushBlock();
    await this.#background;
    if (this.#failure !== undefined) throw this.#failure;
    const footer = Buffer.alloc(12);
    footer.writeUInt32LE(FOOTER_MARK, 0);
    footer.writeBigUInt64LE(BigInt(this.#total), 4);
    await this.#io(async () => {
      await this.#file.write(footer);
      await this.#file.sync();
    });
    await this.#file.close();
  }

  /** Closes without finishing (the caller removes the file), once blocks being written are. */
  async abandon(): Promise<void> {
    await this.#pump;
    await this.#background;
    await this.#file.close().catch(() => undefined);
  }
}

function corrupt(path: string, detail: string): StateError {
  return new StateError(`snapshot ${path} is corrupt: ${detail}`, {
    code: "STATE_CORRUPT",
    action:
      "Restore the state folder from a backup, or run `groupsync reset <sync> --yes` to forget it (the next run then re-sends every group).",
  });
}

/**
 * Reads `length` bytes at the file's position. Synchronously: a local state file answers from the page cache in
 * microseconds, and a thread-pool round trip per 64 KiB block cost a run more than a second of its 1M-group
 * snapshot reads.
 */
async function readExactly(
  file: FileHandle,
  length: number,
  path: string,
  what: string,
  into?: Buffer,
): Promise<Buffer> {
  const buffer = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  let read = 0;
  while (read < length) {
    const bytesRead = readSync(file.fd, buffer, read, length - read, null);
    if (bytesRead === 0) throw corrupt(path, `file ends in the middle of ${what} (truncated?)`);
    read += bytesRead;
  }
  return buffer;
}

/** Reads the header of a snapshot file. */
export async function readSnapshotHeader(path: string): Promise<SnapshotHeader> {
  const file = await open(path, "r");
  try {
    return await readHeader(file, path);
  } finally {
    await file.close();
  }
}

/**
 * Reads the header of a journal, or undefined when the file ends inside it: its writer died, or the disk filled,
 * before the header was complete, so no entry was ever made durable and no batch sent on its account.
 */
export async function readJournalHeader(path: string): Promise<SnapshotHeader | undefined> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    if (size < MAGIC.length + 4) return undefined;
    // Read at a position, so that readHeader still starts at the beginning of the file.
    const { buffer } = await file.read(Buffer.alloc(4), 0, 4, MAGIC.length);
    if (size < MAGIC.length + 4 + buffer.readUInt32LE(0)) return undefined;
    return await readHeader(file, path);
  } finally {
    await file.close();
  }
}

async function readHeader(file: FileHandle, path: string): Promise<SnapshotHeader> {
  const magic = await readExactly(file, MAGIC.length + 4, path, "the header");
  if (!magic.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt(path, "not a groupsync snapshot (bad magic)");
  const length = magic.readUInt32LE(MAGIC.length);
  if (length > 16 * 1024 * 1024) throw corrupt(path, "header too large");
  try {
    const header = JSON.parse((await readExactly(file, length, path, "the header")).toString("utf8")) as {
      format?: unknown;
      properties?: unknown;
      hierarchical?: unknown;
    };
    if (
      (header.format !== 1 && header.format !== 2 && header.format !== 3) ||
      !Array.isArray(header.properties) ||
      typeof header.hierarchical !== "boolean"
    ) {
      throw corrupt(path, "unknown header format");
    }
    return {
      properties: header.properties as string[],
      hierarchical: header.hierarchical,
      ...(header.format === 1 ? { format: 1 } : {}),
      ...(header.format !== 3 ? { md5: true } : {}),
    };
  } catch (error) {
    if (error instanceof StateError) throw error;
    throw corrupt(path, "header is not valid JSON");
  }
}

/** A block's 16-byte checksum: MD5 (formats 1 and 2), or CRC-32 and 12 zero bytes (format 3). */
function checksum(payload: Buffer, md5: boolean): Buffer {
  if (md5) return createHash("md5").update(payload).digest();
  const sum = Buffer.alloc(16);
  sum.writeUInt32LE(crc32(payload), 0);
  return sum;
}

/** A verified block of a snapshot file: its payload and how many records it holds. */
interface Block {
  readonly payload: Buffer;
  readonly records: number;
}

/**
 * A snapshot's verified blocks, in order; returns the header. Throws StateError on any corruption, including a
 * missing footer (`tolerateTruncation`: a journal cut short ends quietly instead).
 */
async function* snapshotBlocks(
  path: string,
  options: {
    readonly tolerateTruncation?: boolean;
    /** Reads every payload into one buffer: for a consumer that is done with a block before it asks for the next. */
    readonly reuse?: boolean;
  },
  onHeader: (header: SnapshotHeader) => void,
): AsyncGenerator<Block, SnapshotHeader | undefined> {
  const file = await open(path, "r");
  try {
    const header = await readHeader(file, path);
    onHeader(header);
    let total = 0;
    let shared: Buffer | undefined;
    for (;;) {
      let head: Buffer;
      let rest: Buffer;
      let payload: Buffer;
      try {
        head = await readExactly(file, 4, path, "a block header");
        if (head.readUInt32LE(0) !== FOOTER_MARK) {
          rest = await readExactly(file, 4 + 16, path, "a block header");
          payload = await readExactly(file, head.readUInt32LE(0), path, "a block", shared);
          if (options.reuse && payload.buffer !== shared?.buffer) shared = payload;
        } else {
          rest = payload = Buffer.alloc(0);
        }
      } catch (error) {
        // A journal cut short by a crash: what was not fsynced before a send was never sent.
        if (options.tolerateTruncation) return header;
        throw error;
      }
      const length = head.readUInt32LE(0);
      if (length === FOOTER_MARK) {
        const count = Number((await readExactly(file, 8, path, "the footer")).readBigUInt64LE(0));
        if (count !== total) throw corrupt(path, `footer counts ${count} entries, blocks hold ${total}`);
        const extra = await file.read(Buffer.alloc(1), 0, 1, null);
        if (extra.bytesRead !== 0) throw corrupt(path, "data after the footer");
        return header;
      }
      const records = rest.readUInt32LE(0);
      if (!checksum(payload, header.md5 === true).equals(rest.subarray(4, 20))) {
        if (options.tolerateTruncation) return header;
        throw corrupt(path, `checksum mismatch in the block after entry ${total}`);
      }
      total += records;
      yield { payload, records };
    }
  } finally {
    await file.close();
  }
}

/** Where one record's parts are in its block. */
type RecordVisitor = (
  r: number,
  start: number,
  idStart: number,
  idEnd: number,
  /** The Company ID's bytes run from here to the row hash (`bitmap - HASH_BYTES`); empty when not hierarchical. */
  companyStart: number,
  bitmap: number,
  end: number,
) => void;

/** The number of set bits of each byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, byte) => {
  let bits = 0;
  for (let rest = byte; rest !== 0; rest >>= 1) bits += rest & 1;
  return bits;
});

/** Walks the records of one block, checking every length against the block. */
function walkRecords(path: string, header: SnapshotHeader, block: Block, each: RecordVisitor): void {
  const { payload, records } = block;
  const properties = header.properties.length;
  const bitmapBytes = (properties + 7) >> 3;
  const wholeBytes = properties >> 3;
  const lastMask = (1 << (properties & 7)) - 1;
  const withItems = header.format !== 1;
  let o = 0;
  const at = { offset: 0 };
  const varint = (): number => {
    at.offset = o;
    const value = readVarint(payload, at, payload.length);
    if (value < 0) throw corrupt(path, "record runs past its block");
    o = at.offset;
    return value;
  };
  for (let r = 0; r < records; r++) {
    const start = o;
    const idLength = varint();
    const idStart = o;
    o += idLength;
    const idEnd = o;
    let companyStart = o;
    if (header.hierarchical) {
      const companyLength = varint();
      companyStart = o;
      o += companyLength;
    }
    o += HASH_BYTES;
    const bitmap = o;
    o += bitmapBytes;
    if (o > payload.length) throw corrupt(path, "record runs past its block");
    // The properties set: a byte of the bitmap at a time (bits past the last property are not counted).
    let set = 0;
    for (let j = 0; j < wholeBytes; j++) set += POPCOUNT[payload[bitmap + j]!]!;
    if (lastMask !== 0) set += POPCOUNT[payload[bitmap + wholeBytes]! & lastMask]!;
    o += set * HASH_BYTES;
    if (withItems) {
      const lists = varint();
      for (let l = 0; l < lists; l++) {
        const index = varint();
        const length = varint();
        if (index >= properties) throw corrupt(path, "item list of an unknown property");
        o += length;
      }
    }
    if (o > payload.length) throw corrupt(path, "record runs past its block");
    each(r, start, idStart, idEnd, companyStart, bitmap, o);
  }
  if (o !== payload.length) throw corrupt(path, "block has trailing bytes");
}

/**
 * Streams a snapshot's entries in key order, a block at a time, verifying every block. Throws StateError on any
 * corruption, including a missing footer.
 */
export async function* readSnapshot(
  path: string,
  options: {
    readonly tolerateTruncation?: boolean;
  } = {},
): AsyncGenerator<SnapshotEntry[], SnapshotHeader | undefined> {
  let header: SnapshotHeader | undefined;
  let shape: Shape | undefined;
  const blocks = snapshotBlocks(path, options, (read) => {
    header = read;
    shape = recordShape(read.format !== 1, read.hierarchical, read.properties.length);
  });
  try {
    for (;;) {
      const next = await blocks.next();
      if (next.done) return next.value;
      const block = next.value;
      const { payload } = block;
      const entries: SnapshotEntry[] = new Array(block.records);
      walkRecords(path, header!, block, (r, start, idStart, idEnd, companyStart, bitmap, end) => {
        entries[r] = new StoredEntry(payload, start, end, idStart, idEnd, companyStart, bitmap, shape!);
      });
      yield entries;
    }
  } finally {
    // Stopped early: close the file.
    await blocks.return(undefined);
  }
}

/** A verified block with where each record and its parts are: entries are made only when asked for. */
export interface RecordBlock {
  readonly payload: Buffer;
  readonly count: number;
  /** Record `i` is `payload[start[i], start[i + 1])`. */
  readonly start: Int32Array;
  readonly id: Int32Array;
  readonly idEnd: Int32Array;
  readonly company: Int32Array;
  readonly bitmap: Int32Array;
  readonly shape: Shape;
}

/**
 * Streams a snapshot's verified blocks with their records' offsets. `reuse`: every block is read into the same
 * buffer, for a caller that is done with a block (and its entries) before it asks for the next.
 */
export async function* readRecordBlocks(
  path: string,
  options: { readonly reuse?: boolean } = {},
): AsyncGenerator<RecordBlock> {
  let header: SnapshotHeader | undefined;
  let shape: Shape | undefined;
  for await (const block of snapshotBlocks(path, options, (read) => {
    header = read;
    shape = recordShape(read.format !== 1, read.hierarchical, read.properties.length);
  })) {
    const count = block.records;
    const records: RecordBlock = {
      payload: block.payload,
      count,
      start: new Int32Array(count + 1),
      id: new Int32Array(count),
      idEnd: new Int32Array(count),
      company: new Int32Array(count),
      bitmap: new Int32Array(count),
      shape: shape!,
    };
    walkRecords(path, header!, block, (r, start, idStart, idEnd, companyStart, bitmap, end) => {
      records.start[r] = start;
      records.start[r + 1] = end;
      records.id[r] = idStart;
      records.idEnd[r] = idEnd;
      records.company[r] = companyStart;
      records.bitmap[r] = bitmap;
    });
    yield records;
  }
}

/** Record `i` of a block as an entry (lazy: see StoredEntry). */
export function entryAt(block: RecordBlock, i: number): SnapshotEntry {
  return new StoredEntry(
    block.payload,
    block.start[i]!,
    block.start[i + 1]!,
    block.id[i]!,
    block.idEnd[i]!,
    block.company[i]!,
    block.bitmap[i]!,
    block.shape,
  );
}

/** Adds 1 to `counts[p]` for each property `p` set on records `[from, to)` of a block, from their bitmaps. */
export function countSetInRecords(block: RecordBlock, from: number, to: number, counts: number[]): void {
  for (let r = from; r < to; r++) countBitmap(block.payload, block.bitmap[r]!, counts);
}

/** Adds 1 to `counts[i]` for each bit `i` set in the bitmap at `bytes[bitmap]` (one record's set properties). */
function countBitmap(bytes: Buffer, bitmap: number, counts: number[]): void {
  for (let i = 0; i < counts.length; i++) if (bytes[bitmap + (i >> 3)]! & (1 << (i & 7))) counts[i]!++;
}

/** Adds 1 to `counts[i]` for each property `i` set on `entry` (without decoding an entry read from a file). */
export function countSetProperties(entry: SnapshotEntry, counts: number[]): void {
  StoredEntry.countSet(entry, counts);
}

/**
 * A copy of an entry's hashes or item lists. The arrays of an entry read from a file are frozen, and V8's
 * `Array#slice` of a frozen array takes a slow path (about 2 µs for 12 hashes, against 0.2 µs for this loop): a run
 * copies the arrays of every group it sends.
 */
export function copyList<T>(list: readonly T[]): T[] {
  const copy: T[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) copy[i] = list[i]!;
  return copy;
}

/** An entry as a plain object with its own arrays (for comparing and printing; entries read from files are lazy). */
export function plainEntry(entry: SnapshotEntry): SnapshotEntry {
  const items = entry.items;
  return {
    companyId: entry.companyId,
    groupId: entry.groupId,
    rowHash: entry.rowHash,
    hashes: entry.hashes.slice(),
    ...(items ? { items: items.slice() } : {}),
  };
}
