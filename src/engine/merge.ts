/**
 * The merge at the heart of a run: the source's groups (key order) against the previous snapshot (key order), like
 * a merge join. Each group is diffed per property, its operations are sent, and its new snapshot entry is written
 * once every operation has an outcome, so the new snapshot records only what the destination acknowledged.
 */
import type { Delivery, OperationResult } from "../delivery/delivery.js";
import { SkippedOperations } from "../delivery/skipped.js";
import type { Destination } from "../destination.js";
import { diffGroup } from "../diff/diff-group.js";
import { propertyHash, rowHash } from "../diff/hash.js";
import type { Layout } from "../diff/layout.js";
import type { CompiledMapping } from "../mapping/mapper.js";
import type { GroupOperation, GroupRef, JsonValue } from "../model.js";
import { redact } from "../secret.js";
import type { Journal } from "../state/journal.js";
import { compareKeys, formatKey, type GroupKey } from "../state/key-order.js";
import type { EntryCursor } from "../state/snapshot-cursor.js";
import { type SnapshotEntry, UNKNOWN_HASH } from "../state/snapshot-file.js";
import { CommitWindow, type Slot } from "./commit-window.js";
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
      this.samples.push(JSON.parse(redact(this.destination.encode(operation).json)));
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
  readonly write: (entry: SnapshotEntry, slot?: Slot) => Promise<void>;
  /** Takes a delete candidate (mirror mode), in key order. */
  readonly spill: (entry: SnapshotEntry) => Promise<void>;
  readonly ref: (key: GroupKey) => GroupRef;
  /** Most groups waiting in memory for acknowledgements before reading pauses. */
  readonly maxWindow: number;
}

type Operation = { op: GroupOperation; apply: () => void };

export class Merge {
  readonly #o: MergeOptions;
  readonly #previous: EntryCursor;
  readonly #window = new CommitWindow();
  readonly #names: readonly string[];
  readonly #width: number;

  constructor(options: MergeOptions, previous: EntryCursor) {
    this.#o = options;
    this.#previous = previous;
    this.#names = options.layout.properties.map((property) => property.name);
    this.#width = options.layout.properties.length;
  }

  /** A previous entry in this run's layout. */
  translate(entry: SnapshotEntry): SnapshotEntry {
    return {
      companyId: entry.companyId,
      groupId: entry.groupId,
      rowHash: this.#o.rowHashesValid ? entry.rowHash : UNKNOWN_HASH,
      hashes: this.#o.layout.translate(entry.hashes),
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
  }

  /** A previous entry the read did not return. */
  async #absent(entry: SnapshotEntry): Promise<void> {
    const o = this.#o;
    if (!o.mirror || !o.covers(entry)) return this.#carry(this.translate(entry));
    o.summary.delete_candidates++;
    await o.spill(this.translate(entry));
  }

  /** Diffs one source group against the snapshot and sends what changed. */
  async group({ key, cells, copies, carry }: SourceGroup): Promise<void> {
    const o = this.#o;
    const summary = o.summary;
    let previous: SnapshotEntry | undefined;
    for (;;) {
      const next = await this.#previous.peek();
      if (!next) break;
      const order = compareKeys(next, key);
      if (order > 0) break;
      this.#previous.skip();
      if (order === 0) {
        previous = next;
        break;
      }
      await this.#absent(next);
    }
    const held = previous ? this.translate(previous) : undefined;
    if (carry) {
      // A hashed read found the row unchanged (or gone before it could be fetched): the destination holds the entry.
      if (held) this.#carry(held);
      if (carry === "unchanged") summary.unchanged++;
      return;
    }
    if (copies > 1) {
      o.rejects.add(formatKey(key), `Group ID seen ${copies} times in this run; Group IDs must be unique`, copies);
      if (held) this.#carry(held);
      return;
    }
    const hashes = cells.map((cell) => (cell === null ? null : propertyHash(cell)));
    const diff = diffGroup(held?.hashes, hashes, { setAll: o.sendAll });
    const hash = (o.rowHash ?? rowHash)(cells);
    if (diff.set.length === 0 && diff.unset.length === 0) {
      summary.unchanged++;
      if (held) this.#carry({ ...held, rowHash: hash });
      return;
    }
    const properties: Record<string, JsonValue> = {};
    for (const index of diff.set) {
      const value = o.mapping.value(index, cells[index] as string);
      if (!value.ok) {
        o.rejects.add(formatKey(key), value.reason);
        if (held) this.#carry(held);
        return;
      }
      properties[this.#names[index]!] = value.value;
    }
    const entry: SnapshotEntry = held
      ? { ...held, rowHash: hash }
      : { companyId: key.companyId, groupId: key.groupId, rowHash: hash, hashes: new Array(this.#width).fill(null) };
    const operations: Operation[] = [];
    if (diff.set.length > 0) {
      operations.push({
        op: { kind: "set", ref: o.ref(key), properties },
        apply: () => {
          for (const index of diff.set) entry.hashes[index] = hashes[index]!;
          summary.properties_set += diff.set.length;
        },
      });
    }
    if (diff.unset.length > 0) {
      operations.push({
        op: { kind: "unset", ref: o.ref(key), names: diff.unset.map((index) => this.#names[index]!) },
        apply: () => {
          for (const index of diff.unset) entry.hashes[index] = null;
          summary.properties_unset += diff.unset.length;
        },
      });
    }
    if (o.plan) {
      summary.properties_set += diff.set.length;
      summary.properties_unset += diff.unset.length;
    }
    await this.#send({ entry, pending: 0, keep: false }, held !== undefined, [...diff.set, ...diff.unset], operations);
  }

  /**
   * Sends the operations of one group; its slot records each outcome. `touched` are the property indexes the
   * operations change: journaled before sending, and marked unknown if an operation fails (it may still have
   * been applied: a timeout after the destination applied it looks the same as a refusal).
   */
  async #send(slot: Slot, existed: boolean, touched: readonly number[], operations: Operation[]): Promise<void> {
    const o = this.#o;
    const summary = o.summary;
    if (o.plan) {
      // Nothing is acknowledged in a plan, and nothing is written: count what would happen.
      if (existed) summary.groups_updated++;
      else summary.groups_created++;
      for (const { op } of operations) await o.sink.enqueue(op, () => undefined);
      return;
    }
    let acknowledged = false;
    let failed = false;
    let skipped = false;
    slot.pending = operations.length;
    this.#window.push(slot);
    await o.journal!.record(slot.entry, touched);
    for (const { op, apply } of operations) {
      await o.sink.enqueue(op, (result) => {
        if (result.ok) {
          apply();
          acknowledged = true;
        } else if (result.skipped) {
          // Never sent: the entry keeps what the destination holds, and its row hash must not claim the row is
          // in step (a hashed read would then never plan the operation again).
          skipped = true;
        } else {
          failed = true;
          this.failed(slot.entry, result, slot);
        }
        slot.pending--;
        if (slot.pending > 0) return;
        if (skipped) slot.entry.rowHash = UNKNOWN_HASH;
        if (failed) {
          slot.entry.rowHash = UNKNOWN_HASH;
          for (const index of touched) slot.entry.hashes[index] = UNKNOWN_HASH;
        }
        // A failed operation may have reached the destination: keep the group so it can be corrected later.
        slot.keep = existed || acknowledged || failed;
        if (acknowledged) {
          if (existed) summary.groups_updated++;
          else summary.groups_created++;
        }
        this.#window.notify();
      });
    }
  }

  /** Writes settled groups; pauses (backpressure) while too many wait for acknowledgements. */
  async keepUp(): Promise<void> {
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
