/**
 * The merge at the heart of a run: the source's groups (key order) against the previous snapshot (key order), like
 * a merge join. Each group is diffed per property, its operations are sent, and its new snapshot entry is written
 * once every operation has an outcome, so the new snapshot records only what the destination acknowledged.
 */
import type { Delivery, OperationResult } from "../delivery/delivery.js";
import { SkippedOperations } from "../delivery/skipped.js";
import type { Destination } from "../destination.js";
import {
  type DiffOptions,
  diffGroup,
  type GroupDiff,
  NO_CHANGE,
  type PropertyRule,
  ruleOf,
} from "../diff/diff-group.js";
import { propertyHash, rowHash } from "../diff/hash.js";
import type { Layout } from "../diff/layout.js";
import type { CompiledMapping, ListItem } from "../mapping/mapper.js";
import type { GroupOperation, GroupRef, JsonValue } from "../model.js";
import { redact } from "../secret.js";
import type { Journal } from "../state/journal.js";
import { compareKeys, formatKey, type GroupKey } from "../state/key-order.js";
import type { EntryCursor } from "../state/snapshot-cursor.js";
import { entryAt, type SnapshotEntry, UNKNOWN_HASH } from "../state/snapshot-file.js";
import { CommitWindow, type Slot } from "./commit-window.js";
import { hashedCells } from "./hashed-read.js";
import type { SourceGroup } from "./read-groups.js";
import type { RejectLog } from "./reject-log.js";
import type { RunSummary } from "./summary.js";

/** What the engine needs from a sink of operations: the Delivery, or the plan's counter. */
export type OperationSink = Pick<Delivery, "enqueue" | "flush"> & Partial<Pick<Delivery, "sendBuffered">>;

/** Counts and samples what would be sent; acknowledges nothing. */
export class PlanSink implements OperationSink {
  readonly samples: unknown[] = [];
  /** What the destination could not apply, as a run would report it. */
  readonly skipped = new SkippedOperations();
  constructor(
    private readonly destination: Destination,
    private readonly keep: number,
  ) {}
  async enqueue(operation: GroupOperation): Promise<void> {
    if (this.skipped.check(this.destination, operation)) return;
    if (this.samples.length < this.keep) {
      this.samples.push(JSON.parse(redact(this.destination.encode(operation).json.toString())));
    }
  }
  async flush(): Promise<void> {}
}

export interface MergeOptions {
  /** Plan: count what would be sent; acknowledge and write nothing. */
  readonly plan: boolean;
  readonly summary: RunSummary;
  readonly rejects: RejectLog;
  readonly mapping: CompiledMapping;
  readonly layout: Layout;
  /** Whether the previous snapshot's row hashes were made with this layout. */
  readonly rowHashesValid: boolean;
  /** The row hash the source's hash push-down computes (so the next run can compare); default `rowHash`. */
  readonly rowHash?: (cells: readonly (string | null)[]) => string;
  /**
   * The source's row hashes come with its rows (`HashReader.hashInRows`): a group read without one (an incremental
   * read) gets UNKNOWN_HASH, so the next hash pass fetches it once.
   */
  readonly hashInRows?: boolean;
  readonly sink: OperationSink;
  /** Records keys before they are sent (absent in a plan). */
  readonly journal: Journal | undefined;
  /** Mirror mode with deletes: groups that left the source are delete candidates. */
  readonly mirror: boolean;
  /** A backfill: every non-null property is sent, whatever the snapshot says. */
  readonly sendAll: boolean;
  /**
   * Whether the read covers `key`, so that a group missing from it has left the source. False for the keys an
   * incremental read, a `--where` backfill or a resumed backfill does not read: their entries are carried forward.
   */
  readonly covers: (key: GroupKey) => boolean;
  /** Writes an entry of the new snapshot, in key order. */
  readonly write: (entry: SnapshotEntry, slot?: Slot) => Promise<void> | undefined;
  /** Takes a delete candidate (mirror mode), in key order. */
  readonly spill: (entry: SnapshotEntry) => Promise<void>;
  readonly ref: (key: GroupKey) => GroupRef;
  /** Most groups waiting in memory for acknowledgements before reading pauses. */
  readonly maxWindow: number;
}

/**
 * An operation and what its outcome changes in the group's new entry. `maybe`: what to record when it failed, as it
 * may still have been applied (a `$union`'s items: recorded, a later run can `$remove` them; removing an item that
 * is not there is harmless). `maybeItems`: the same, per property index, for the journal (a crash mid-send).
 */
type Operation = {
  op: GroupOperation;
  apply: () => void;
  maybe?: () => void;
  maybeItems?: ReadonlyMap<number, readonly ListItem[]>;
};

/** One group's operations on their way: what their outcomes so far say. */
interface Sending {
  readonly slot: Slot;
  /** The group was in the previous snapshot. */
  readonly existed: boolean;
  /** The property indexes the operations change. */
  readonly touched: readonly number[];
  acknowledged: boolean;
  failed: boolean;
  skipped: boolean;
}

/** The change of one `op: union` list: items recorded before, items to add and to remove. */
interface ListChange {
  readonly index: number;
  readonly before: ListItem[];
  readonly added: ListItem[];
  readonly removed: ListItem[];
  /** Whether any operation is sent for it. */
  readonly sends: boolean;
}

/** The items recorded for a list, from their JSON text (null: none). */
function parseItems(text: string | null): ListItem[] {
  if (text === null) return [];
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed)
    ? parsed.filter((item): item is ListItem => typeof item === "string" || typeof item === "number")
    : [];
}

/**
 * Previous entries carried in one stretch, with no source group between them (the keys before a resumed backfill's
 * first row, outside a `--where` backfill, between the changed rows of an incremental run, after the last row read),
 * before they are written out: the window holds them until then.
 */
const CARRY_STRETCH = 256;

export class Merge {
  readonly #o: MergeOptions;
  readonly #previous: EntryCursor;
  readonly #window = new CommitWindow();
  readonly #names: readonly string[];
  readonly #width: number;
  /** Each layout property's rule (op, nulls), from its definition. */
  readonly #rules: readonly PropertyRule[];
  /** How every group is diffed (one object for the run). */
  readonly #diffOptions: DiffOptions;
  /** Which properties keep their items in the snapshot: `op: union` without `keep_removed`. */
  readonly #recordsItems: readonly boolean[];

  /** The cells the source's row hash covers (constants are not in the source). */
  readonly #hashed: (cells: readonly (string | null)[]) => readonly (string | null)[];

  /** Entries of the previous snapshot can be written as they are (same layout, comparable row hashes). */
  readonly #passThrough: boolean;

  /** Entries carried since the window was last written out (`keepUp`). */
  #carried = 0;

  constructor(options: MergeOptions, previous: EntryCursor) {
    this.#passThrough = options.layout.identity && options.rowHashesValid;
    this.#hashed = hashedCells(options.mapping);
    this.#o = options;
    this.#previous = previous;
    this.#names = options.layout.properties.map((property) => property.name);
    this.#width = options.layout.properties.length;
    this.#rules = options.layout.properties.map((property) => ruleOf(property.definition));
    this.#recordsItems = this.#rules.map((rule) => rule.op === "union" && !rule.keepRemoved);
    this.#diffOptions = { setAll: options.sendAll, rules: this.#rules };
  }

  /** A previous entry in this run's layout. */
  translate(entry: SnapshotEntry): SnapshotEntry {
    const items = this.#o.layout.translateItems(entry.items);
    // Items are kept for union properties only (a property whose op changed drops them).
    if (items) for (let i = 0; i < items.length; i++) if (!this.#recordsItems[i]) items[i] = null;
    return {
      companyId: entry.companyId,
      groupId: entry.groupId,
      rowHash: this.#o.rowHashesValid ? entry.rowHash : UNKNOWN_HASH,
      hashes: this.#o.layout.translate(entry.hashes),
      ...(items ? { items } : {}),
    };
  }

  /** Records what happened to an operation that failed. */
  failed(key: GroupKey, result: OperationResult & { ok: false }, slot?: Slot): void {
    if (result.skipped) return; // never sent: counted by the delivery, planned again next run
    if (result.rejected) {
      this.#o.rejects.add(formatKey(key), result.reason);
    } else {
      this.#o.summary.unsent++;
      if (slot) slot.unsent = true;
    }
  }

  #carry(entry: SnapshotEntry): void {
    this.#window.push({ entry, pending: 0, keep: true });
    this.#carried++;
  }

  /** Most groups the window held at once: what the run kept in memory waiting to be written. */
  get windowPeak(): number {
    return this.#window.peak;
  }

  /** Carries a previous entry: as it is (its bytes are copied) when the layout allows, else translated. */
  #carryPrevious(entry: SnapshotEntry): void {
    this.#carry(this.#passThrough ? entry : this.translate(entry));
  }

  /** A previous entry the read did not return. Returns a promise only when it spills a delete candidate. */
  #absent(entry: SnapshotEntry): Promise<void> | undefined {
    const o = this.#o;
    if (!o.mirror || !o.covers(entry)) {
      this.#carryPrevious(entry);
      return undefined;
    }
    o.summary.delete_candidates++;
    return o.spill(this.translate(entry));
  }

  /** Carries the next `count` snapshot entries, which a hashed read matched to unchanged rows in order. */
  async #carryRun(count: number): Promise<void> {
    this.#o.summary.unchanged += count;
    let carried = 0;
    await this.#previous.take(count, (block, from, to, last) => {
      // As bytes, a block's range at a time (no entry is made but the last, for its key), when the layout allows.
      if (this.#passThrough) this.#window.push({ entry: last, pending: 0, keep: true, records: { block, from, to } });
      else for (let r = from; r < to; r++) this.#carry(this.translate(entryAt(block, r)));
      carried += to - from;
      if (carried < 4096) return undefined;
      carried = 0;
      return this.keepUp();
    });
  }

  /**
   * Diffs one source group against the snapshot and sends what changed. Returns a promise only when it had to wait
   * (the next block of the snapshot, a delete candidate to spill, a batch to send): most groups cost no promise.
   */
  group(group: SourceGroup): Promise<void> | undefined {
    // The snapshot's entries up to the group's key; after a wait, the walk resumes where it stopped.
    const key = group.key;
    for (;;) {
      const next = this.#previous.peekNow();
      if (next === undefined) return this.#previous.peek().then(() => this.group(group));
      if (next === null) return this.#diff(group, undefined);
      const order = compareKeys(next, key);
      if (order > 0) return this.#diff(group, undefined);
      this.#previous.skip();
      if (order === 0) return this.#diff(group, next);
      const spilled = this.#absent(next);
      if (spilled) return spilled.then(() => this.group(group));
      // A long stretch of entries before this group's key (the engine writes the window out only between groups).
      if (this.#carried >= CARRY_STRETCH) return this.keepUp().then(() => this.group(group));
    }
  }

  /** The group against its previous entry (if any). */
  #diff(
    { key, cells, copies, carry, hash: read, run }: SourceGroup,
    previous: SnapshotEntry | undefined,
  ): Promise<void> | undefined {
    const o = this.#o;
    const summary = o.summary;
    if (carry) {
      // A hashed read found the row unchanged (or gone before it could be fetched): the destination holds the entry.
      if (previous) this.#carryPrevious(previous);
      if (carry === "unchanged") {
        summary.unchanged++;
        if (run !== undefined && run > 1) return this.#carryRun(run - 1);
      }
      return undefined;
    }
    const held = previous ? this.translate(previous) : undefined;
    if (copies > 1) {
      o.rejects.add(formatKey(key), `Group ID seen ${copies} times in this run; Group IDs must be unique`, copies);
      if (held) this.#carry(held);
      return undefined;
    }
    const hashes: (string | null)[] = new Array(cells.length);
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[i] ?? null;
      hashes[i] = cell === null ? null : propertyHash(cell);
    }
    const diff = diffGroup(held?.hashes, hashes, this.#diffOptions);
    const hash = read ?? (o.hashInRows ? UNKNOWN_HASH : (o.rowHash ?? rowHash)(this.#hashed(cells)));
    if (diff === NO_CHANGE) {
      summary.unchanged++;
      // The entry as read when nothing about it changed: the snapshot writer copies its bytes.
      if (held) this.#carry(this.#passThrough && previous!.rowHash === hash ? previous! : { ...held, rowHash: hash });
      return undefined;
    }
    // translate() gave `held` arrays of its own, so the new entry takes them over instead of copying them; a refused
    // group (below) carries a fresh translation of its previous entry instead.
    const entry: SnapshotEntry = held
      ? { companyId: held.companyId, groupId: held.groupId, rowHash: hash, hashes: held.hashes }
      : { companyId: key.companyId, groupId: key.groupId, rowHash: hash, hashes: new Array(this.#width).fill(null) };
    if (held?.items) entry.items = held.items;
    const planned = this.#operations(key, cells, hashes, diff, entry);
    if (!planned.ok) {
      o.rejects.add(formatKey(key), planned.reason);
      if (previous) this.#carry(this.translate(previous));
      return undefined;
    }
    const { operations, touched } = planned;
    if (operations.length === 0) {
      // Only hashes moved (a list reordered, a forgotten property): nothing to send.
      summary.unchanged++;
      if (held) this.#carry(entry);
      return undefined;
    }
    return this.#send({ entry, pending: 0, keep: false }, held !== undefined, touched, operations);
  }

  /**
   * The operations that bring one group's changed properties to the destination, each with what its
   * acknowledgement records in `entry`. Values are coerced here, only for the properties sent.
   */
  #operations(
    key: GroupKey,
    cells: readonly (string | null)[],
    hashes: readonly (string | null)[],
    diff: GroupDiff,
    entry: SnapshotEntry,
  ): { ok: true; operations: Operation[]; touched: number[] } | { ok: false; reason: string } {
    const o = this.#o;
    const summary = o.summary;
    const ref = o.ref(key);
    const operations: Operation[] = [];
    const touched: number[] =
      diff.setOnce.length + diff.unset.length === 0 ? diff.set.slice() : [...diff.set, ...diff.setOnce, ...diff.unset];
    for (const index of diff.forget) entry.hashes[index] = null;
    for (let pass = 0; pass < 2; pass++) {
      const kind = pass === 0 ? "set" : "set_once";
      const indexes = pass === 0 ? diff.set : diff.setOnce;
      if (indexes.length === 0) continue;
      const properties: Record<string, JsonValue> = {};
      for (const index of indexes) {
        const value = o.mapping.value(index, cells[index] as string);
        if (!value.ok) return value;
        properties[this.#names[index]!] = value.value;
      }
      operations.push({
        op: { kind, ref, properties },
        apply: () => {
          for (const index of indexes) entry.hashes[index] = hashes[index]!;
          summary.properties_set += indexes.length;
        },
      });
    }
    if (diff.unset.length > 0) {
      operations.push({
        op: { kind: "unset", ref, names: diff.unset.map((index) => this.#names[index]!) },
        apply: () => {
          for (const index of diff.unset) entry.hashes[index] = null;
          summary.properties_unset += diff.unset.length;
        },
      });
    }
    if (diff.union.length > 0) {
      const lists = this.#listChanges(cells, diff.union, entry);
      if (!lists.ok) return lists;
      operations.push(...this.#listOperations(ref, lists.changes, hashes, entry));
      touched.push(...lists.changes.filter((change) => change.sends).map((change) => change.index));
    }
    if (o.plan) {
      summary.properties_set += diff.set.length + diff.setOnce.length;
      summary.properties_unset += diff.unset.length;
    }
    return { ok: true, operations, touched };
  }

  /** For each changed `op: union` property: the items to add and to remove, against the items recorded. */
  #listChanges(
    cells: readonly (string | null)[],
    indexes: readonly number[],
    entry: SnapshotEntry,
  ): { ok: true; changes: ListChange[] } | { ok: false; reason: string } {
    const changes: ListChange[] = [];
    for (const index of indexes) {
      const rule = this.#rules[index]!;
      const cell = index < cells.length ? (cells[index] ?? null) : null;
      let now: ListItem[] = [];
      if (cell !== null) {
        const items = this.#o.mapping.items(index, cell);
        if (!items.ok) return items;
        now = items.items;
      }
      // keep_removed records no items: every current item is (re-)added, which $union makes harmless.
      const before = rule.keepRemoved ? [] : parseItems(entry.items?.[index] ?? null);
      const had = new Set(before);
      const has = new Set(now);
      const added = now.filter((item) => !had.has(item));
      const removed = rule.keepRemoved ? [] : before.filter((item) => !has.has(item));
      changes.push({ index, before, added, removed, sends: added.length + removed.length > 0 });
    }
    return { ok: true, changes };
  }

  /**
   * One `$union` for every list with items to add, and one `$remove` per item that left a list (the API takes one
   * item per update). The recorded items follow each acknowledgement; a list's hash moves once all of its
   * operations were acknowledged.
   */
  #listOperations(
    ref: GroupRef,
    changes: readonly ListChange[],
    hashes: readonly (string | null)[],
    entry: SnapshotEntry,
  ): Operation[] {
    const summary = this.#o.summary;
    const operations: Operation[] = [];
    const recorded = new Map<number, ListItem[]>();
    const record = (index: number, items: ListItem[]) => {
      recorded.set(index, items);
      if (this.#rules[index]!.keepRemoved) return;
      entry.items ??= new Array(this.#width).fill(null);
      entry.items[index] = items.length > 0 ? JSON.stringify(items) : null;
    };
    const pending = new Map<number, number>();
    const settle = (index: number) => {
      const left = pending.get(index)! - 1;
      pending.set(index, left);
      if (left === 0) entry.hashes[index] = hashes[index] ?? null;
    };
    for (const change of changes) {
      recorded.set(change.index, change.before);
      if (!change.sends) {
        // Same items (reordered, or duplicates): only the hash moves.
        entry.hashes[change.index] = hashes[change.index] ?? null;
        continue;
      }
      pending.set(change.index, (change.added.length > 0 ? 1 : 0) + change.removed.length);
    }
    const adding = changes.filter((change) => change.added.length > 0);
    if (adding.length > 0) {
      const lists: Record<string, ListItem[]> = {};
      for (const change of adding) lists[this.#names[change.index]!] = change.added;
      const maybeItems = new Map<number, readonly ListItem[]>();
      for (const change of adding)
        if (!this.#rules[change.index]!.keepRemoved) maybeItems.set(change.index, change.added);
      operations.push({
        op: { kind: "union", ref, lists },
        apply: () => {
          for (const change of adding) {
            record(change.index, [...recorded.get(change.index)!, ...change.added]);
            settle(change.index);
          }
          summary.properties_set += adding.length;
        },
        maybe: () => {
          for (const change of adding) {
            const had = recorded.get(change.index)!;
            record(change.index, [...had, ...change.added.filter((item) => !had.includes(item))]);
          }
        },
        maybeItems,
      });
    }
    for (const change of changes) {
      for (const item of change.removed) {
        const name = this.#names[change.index]!;
        operations.push({
          op: { kind: "remove", ref, name, item },
          apply: () => {
            record(
              change.index,
              recorded.get(change.index)!.filter((kept) => kept !== item),
            );
            settle(change.index);
            summary.properties_unset++;
          },
        });
      }
    }
    if (this.#o.plan) {
      summary.properties_set += adding.length;
      for (const change of changes) summary.properties_unset += change.removed.length;
    }
    return operations;
  }

  /**
   * Sends the operations of one group; its slot records each outcome. `touched` are the property indexes the
   * operations change: journaled before sending, and marked unknown if an operation fails (it may still have
   * been applied: a timeout after the destination applied it looks the same as a refusal). Returns a promise only
   * when the journal or the sink made it wait.
   */
  #send(slot: Slot, existed: boolean, touched: readonly number[], operations: Operation[]): Promise<void> | undefined {
    const o = this.#o;
    if (o.plan) return this.#plan(existed, operations);
    slot.pending = operations.length;
    this.#window.push(slot);
    const sending: Sending = { slot, existed, touched, acknowledged: false, failed: false, skipped: false };
    const recorded = o.journal!.record(slot.entry, touched, journalItems(operations, this.#width));
    if (recorded) return recorded.then(() => this.#enqueue(sending, operations, 0));
    return this.#enqueue(sending, operations, 0);
  }

  /** Nothing is acknowledged in a plan, and nothing is written: counts what would happen. */
  async #plan(existed: boolean, operations: readonly Operation[]): Promise<void> {
    if (existed) this.#o.summary.groups_updated++;
    else this.#o.summary.groups_created++;
    for (const { op } of operations) await this.#o.sink.enqueue(op, () => undefined);
  }

  /** Hands `operations` from `from` on to the sink; returns a promise only when the sink made it wait. */
  #enqueue(sending: Sending, operations: readonly Operation[], from: number): Promise<void> | undefined {
    for (let i = from; i < operations.length; i++) {
      const { op, apply, maybe } = operations[i]!;
      const wait = this.#o.sink.enqueue(op, this.#onResult(sending, apply, maybe));
      if (wait) return i + 1 < operations.length ? wait.then(() => this.#enqueue(sending, operations, i + 1)) : wait;
    }
    return undefined;
  }

  /**
   * The callback for one operation's outcome. It lives until the acknowledgement, so it is made here, where it
   * can hold nothing but what the outcome records: a closure made in `#enqueue` would share that function's
   * context, which holds `operations` for the `.then` there, and so keep every operation's properties alive (and
   * promoted by scavenges) for the length of a request.
   */
  #onResult(sending: Sending, apply: () => void, maybe: (() => void) | undefined): (result: OperationResult) => void {
    return (result) => this.#outcome(sending, apply, maybe, result);
  }

  /** Records one operation's outcome; the group's slot settles with its last one. */
  #outcome(sending: Sending, apply: () => void, maybe: (() => void) | undefined, result: OperationResult): void {
    const { slot, touched } = sending;
    if (result.ok) {
      apply();
      sending.acknowledged = true;
    } else if (result.skipped) {
      // Never sent: the entry keeps what the destination holds, and its row hash must not claim the row is
      // in step (a hashed read would then never plan the operation again).
      sending.skipped = true;
    } else {
      sending.failed = true;
      maybe?.();
      this.failed(slot.entry, result, slot);
    }
    slot.pending--;
    if (slot.pending > 0) return;
    if (sending.skipped) slot.entry.rowHash = UNKNOWN_HASH;
    if (sending.failed) {
      slot.entry.rowHash = UNKNOWN_HASH;
      for (const index of touched) slot.entry.hashes[index] = UNKNOWN_HASH;
    }
    // A failed operation may have reached the destination: keep the group so it can be corrected later.
    slot.keep = sending.existed || sending.acknowledged || sending.failed;
    if (sending.acknowledged) {
      if (sending.existed) this.#o.summary.groups_updated++;
      else this.#o.summary.groups_created++;
    }
    this.#window.notify();
  }

  /** Writes settled groups; pauses (backpressure) while too many wait for acknowledgements. */
  async keepUp(): Promise<void> {
    this.#carried = 0;
    await this.#window.drain(this.#o.write);
    while (this.#window.size > this.#o.maxWindow) {
      // The oldest waiting group's operation may sit in a batch that is not full yet: send it, or we wait forever.
      await this.#o.sink.sendBuffered?.();
      await this.#window.progress();
      await this.#window.drain(this.#o.write);
    }
  }

  /** After the last source group: the snapshot's remaining entries were not read. */
  async rest(): Promise<void> {
    for (let next = await this.#previous.peek(); next; next = await this.#previous.peek()) {
      this.#previous.skip();
      await this.#absent(next);
      if (this.#carried >= CARRY_STRETCH) await this.keepUp();
    }
  }

  /** Writes every settled group (after the sink was flushed, that is all of them). */
  async drain(): Promise<void> {
    await this.#window.drain(this.#o.write);
  }

  /** After a failure: the groups not reached keep their previous state. */
  async keepRest(): Promise<void> {
    for (let next = await this.#previous.peek(); next; next = await this.#previous.peek()) {
      this.#previous.skip();
      await this.#o.write(this.translate(next));
    }
  }
}

/** The items a group's `$union`s may add, by property index, as JSON arrays: what the journal keeps for a crash. */
function journalItems(operations: readonly Operation[], width: number): (string | null)[] | undefined {
  let items: (string | null)[] | undefined;
  for (const { maybeItems } of operations) {
    for (const [index, added] of maybeItems ?? []) {
      items ??= new Array(width).fill(null);
      items[index] = JSON.stringify(added);
    }
  }
  return items;
}
