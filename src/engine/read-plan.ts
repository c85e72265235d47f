/**
 * What a run reads, and what a group missing from the read means:
 * - a full pass reads every row: a group missing from it left the source (mirror deletes);
 * - an incremental run (mapping `cursor`) reads only rows changed since the watermark, so missing means nothing:
 *   every other snapshot entry is carried forward. A full pass is made instead on the first run, after the mapping
 *   changed, when `full_every` is due, or when asked (`--full`);
 * - a backfill reads every row (or the `--where` subset, or the keys after where an unfinished one stopped) and
 *   sends every group's properties whatever the snapshot says.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { LoadedSync } from "../config/load.js";
import type { Layout } from "../diff/layout.js";
import { SourceError } from "../errors.js";
import type { CompiledMapping } from "../mapping/mapper.js";
import type { ReadSpec, Source } from "../source.js";
import { type CursorState, readCursorState } from "../state/cursor-file.js";
import { compareKeys, formatKey, type GroupKey } from "../state/key-order.js";
import { type BackfillScope, readBackfillState } from "../state/progress-file.js";
import type { SyncStatePaths } from "../state/state-dir.js";
import { HashedRead, type HashedReadOptions, hashColumns } from "./hashed-read.js";
import { keyTexts, orderedGroups, type ReadContext, type SourceGroup, stageChanges } from "./read-groups.js";
import { SortedSpill } from "./sorted-spill.js";

/** Cursor types compared against the database's clock (a future value must not become the watermark). */
const TIME_KINDS = new Set(["timestamptz", "timestamp", "date"]);

export interface ReadPlan {
  readonly kind: "full" | "incremental";
  /** The read as a spec (for counting rows). */
  readonly spec: ReadSpec;
  /** The source's groups, in key order. */
  readonly groups: AsyncIterable<SourceGroup[]>;
  /** Whether a group missing from the read left the source. */
  covers(key: GroupKey): boolean;
  /** A backfill: its scope, and the key it resumes after. */
  readonly backfill?: { readonly scope: BackfillScope; readonly after?: GroupKey };
  /** Incremental mappings: the cursor state to write once the run succeeded. */
  cursorState(): Omit<CursorState, "format" | "version" | "updated_at"> | undefined;
  /** Removes staging files. */
  dispose(): Promise<void>;
  /**
   * A hashed full read: whether the source holds exactly the snapshot's groups, all unchanged (HashedRead), so the
   * run can keep the previous snapshot as it is instead of reading and writing every entry.
   */
  identical?(): Promise<boolean>;
}

export interface ReadPlanOptions {
  readonly sync: LoadedSync;
  readonly mapping: CompiledMapping;
  readonly layout: Layout;
  readonly source: Source;
  /** Whether there is a previous state at all. */
  readonly hasState: boolean;
  readonly paths: SyncStatePaths;
  readonly runId: string;
  readonly plan: boolean;
  readonly started: Date;
  readonly log: Logger;
  readonly context: ReadContext;
  readonly batchSize: number;
  readonly backfill?: { readonly where?: string; readonly restart?: boolean };
  readonly full?: boolean;
  readonly signal?: AbortSignal;
  readonly stop?: AbortSignal;
  readonly stageRows?: number;
  /** The previous snapshot, when its row hashes were made with this run's layout: a hashed read can use them. */
  readonly hashedFrom?: string;
  /** Tuning of hashed reads (tests). */
  readonly hashed?: Pick<
    HashedReadOptions,
    "lookupKeys" | "maxChangedShare" | "maxLookups" | "streamAfter" | "queueLimit"
  >;
}

const everything = () => true;
const nothing = () => false;

/** A fingerprint of the mapping's properties: incremental runs need the layout the last full pass sent. */
function layoutSignature(layout: Layout): string {
  const current = layout.properties.slice(0, layout.current).map((p) => [p.name, p.definition]);
  return createHash("sha256").update(JSON.stringify(current)).digest("hex").slice(0, 16);
}

export async function planRead(options: ReadPlanOptions): Promise<ReadPlan> {
  const { mapping, source, context, log } = options;
  const readOptions = { batchSize: options.batchSize, ...(options.signal ? { signal: options.signal } : {}) };
  const base = mapping.readSpec;
  // A reader whose row hashes come with its rows (PostgreSQL) returns them on every full read and backfill, so the
  // snapshot can keep them for the next run's hash pass.
  const withHash = source.hashes?.hashInRows === true && options.sync.sync.hash_pushdown;
  const hashAt = withHash ? base.columns.length : undefined;
  const rowHash = withHash ? { rowHash: hashColumns(mapping) } : {};

  /**
   * A full read of every row: hashed when the source can hash rows, the sync allows it and the previous snapshot's
   * row hashes can be compared (hashed-read.ts); plain otherwise.
   */
  function fullRead(): Pick<ReadPlan, "groups" | "dispose" | "identical"> {
    const plain = () => orderedGroups(source.read({ ...base, ...rowHash }, readOptions), context, undefined, hashAt);
    const reader = source.hashes;
    if (!reader || options.hashedFrom === undefined || !options.sync.sync.hash_pushdown) {
      return { groups: plain(), dispose: async () => {} };
    }
    const hashed = new HashedRead({
      reader,
      mapping,
      previousPath: options.hashedFrom,
      context,
      readOptions,
      log,
      fallback: plain,
      ...options.hashed,
    });
    return { groups: hashed.groups(), identical: () => hashed.identical(), dispose: () => hashed.dispose() };
  }

  if (options.backfill) {
    const where = options.backfill.where;
    const saved = options.backfill.restart ? undefined : await readBackfillState(options.paths.backfill);
    const resume = saved && saved.where === where ? saved : undefined;
    if (saved && !resume) {
      log.warn(
        { previous_where: saved.where ?? null },
        "an unfinished backfill had another --where; this one starts from the beginning",
      );
    }
    const after = resume?.through;
    if (after) log.info({ after: formatKey(after) }, `resuming the unfinished backfill after ${formatKey(after)}`);
    const spec: ReadSpec = {
      ...base,
      ...rowHash,
      ...(where !== undefined ? { where } : {}),
      ...(after ? { after: keyTexts(base, after) } : {}),
    };
    return {
      kind: "full",
      spec,
      groups: orderedGroups(source.read(spec, readOptions), context, after, hashAt),
      covers: where !== undefined ? nothing : after ? (key) => compareKeys(key, after) > 0 : everything,
      backfill: {
        scope: {
          ...(where !== undefined ? { where } : {}),
          started_at: resume?.started_at ?? options.started.toISOString(),
        },
        ...(after ? { after } : {}),
      },
      cursorState: () => undefined,
      dispose: async () => {},
    };
  }

  const cursor = mapping.cursor;
  if (!cursor) {
    return { kind: "full", spec: base, ...fullRead(), covers: everything, cursorState: () => undefined };
  }

  const changes = source.changes;
  if (!changes) {
    throw new SourceError(`the ${options.sync.source.config.type} source cannot read incrementally`, {
      code: "SOURCE_UNSUPPORTED",
      action: "Remove `cursor` from the mapping file: every run then reads the whole table.",
    });
  }
  const column = cursor.column.name;
  const signature = layoutSignature(options.layout);
  const state = options.hasState ? await readCursorState(options.paths.cursor) : undefined;
  // The database's clock caps the read: a row stamped in the future is read once its time has come.
  const until = TIME_KINDS.has(cursor.column.kind) ? await changes.now() : undefined;
  const fullEvery = options.sync.sync.full_every;
  const reason = !state
    ? "no watermark yet"
    : state.column !== column
      ? `the cursor column changed (${state.column} → ${column})`
      : state.layout !== signature || options.layout.properties.length !== options.layout.current
        ? "the mapping's properties changed since the last full pass"
        : options.full
          ? "a full pass was asked for"
          : fullEvery !== undefined && options.started.getTime() - Date.parse(state.full_at) >= fullEvery
            ? "full_every is due"
            : undefined;

  if (reason || !state) {
    log.info({ reason }, `full pass: ${reason}`);
    const watermark = await changes.watermark({ ...base, cursor: column, ...(until !== undefined ? { until } : {}) });
    return {
      kind: "full",
      spec: base,
      ...fullRead(),
      covers: everything,
      cursorState: () => ({
        column,
        layout: signature,
        full_at: options.started.toISOString(),
        ...(watermark !== undefined ? { watermark } : {}),
      }),
    };
  }

  // A plan changes no state, not even temp files in the state folder.
  const folder = options.plan ? await mkdtemp(join(tmpdir(), "groupsync-plan-")) : options.paths.dir;
  const spill = new SortedSpill((n) => join(folder, `stage-${options.runId}-${n}.tmp`), options.stageRows);
  let watermark = state.watermark;
  log.info({ since: state.watermark ?? null }, `incremental read of rows changed since ${state.watermark ?? "ever"}`);
  async function* staged(): AsyncGenerator<SourceGroup[]> {
    watermark = await stageChanges(
      changes!,
      {
        cursor: column,
        pageSize: options.batchSize,
        ...(state!.watermark !== undefined ? { since: state!.watermark } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.stop ? { stop: options.stop } : {}),
      },
      context,
      spill,
    );
    yield* spill.groups();
  }
  return {
    kind: "incremental",
    spec: base,
    groups: staged(),
    covers: nothing,
    cursorState: () => ({
      column,
      layout: signature,
      full_at: state.full_at,
      ...(watermark !== undefined ? { watermark } : {}),
    }),
    dispose: async () => {
      await spill.dispose();
      if (options.plan) await rm(folder, { recursive: true, force: true });
    },
  };
}
