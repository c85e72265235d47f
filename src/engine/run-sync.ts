/**
 * One run of one sync, top to bottom: the previous state (open-state.ts) → what to read (read-plan.ts) → mapped
 * groups in key order (read-groups.ts) → merge with the sorted snapshot, per-property diff, delivery (merge.ts) →
 * mirror deletes (mirror-deletes.ts) → the next snapshot (commit-snapshot.ts). The snapshot and checkpoint are
 * replaced only at the end, atomically; they record only what the destination acknowledged, so a crash at any
 * instant loses nothing (the next run re-sends), and a rejected or unsent change is retried next run. While the run
 * goes, its acknowledged prefix is made durable every few seconds (run-progress.ts), so even SIGKILL loses no work.
 */
import { createHash, randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import type { Logger } from "pino";
import { displayPath } from "../config/check-file.js";
import { destinationProject } from "../config/destination-project.js";
import type { LoadedSync } from "../config/load.js";
import { Delivery, type DeliveryOptions } from "../delivery/delivery.js";
import type { SkippedOperations } from "../delivery/skipped.js";
import type { Destination } from "../destination.js";
import { ruleOf } from "../diff/diff-group.js";
import type { PropertyDefinition } from "../diff/layout.js";
import { planLayout } from "../diff/layout.js";
import { GroupsyncError } from "../errors.js";
import { compileMapping } from "../mapping/mapper.js";
import type { GroupOperation, GroupRef } from "../model.js";
import { redact } from "../secret.js";
import type { Source } from "../source.js";
import { writeCursorState } from "../state/cursor-file.js";
import { Journal } from "../state/journal.js";
import { formatKey, type GroupKey } from "../state/key-order.js";
import { acquireLock, type Lock } from "../state/lock.js";
import { removeFile, writeBackfillState } from "../state/progress-file.js";
import { EntryCursor } from "../state/snapshot-cursor.js";
import { type SnapshotEntry, SnapshotWriter } from "../state/snapshot-file.js";
import { ensureStateDir, syncStatePaths } from "../state/state-dir.js";
import { commitSnapshot } from "./commit-snapshot.js";
import { Merge, type OperationSink, PlanSink } from "./merge.js";
import { deleteGuard, sendMirrorDeletes } from "./mirror-deletes.js";
import { openState } from "./open-state.js";
import { planRead, type ReadPlanOptions } from "./read-plan.js";
import { RejectLog } from "./reject-log.js";
import { appendRunHistory } from "./run-history.js";
import { CountingWriter, RunProgress } from "./run-progress.js";
import { emptySummary, type RunSummary } from "./summary.js";

/** Where sources and destinations come from; tests and the CLI pass the real registry. */
export interface Connectors {
  createSource(sync: LoadedSync): Source;
  createDestination(sync: LoadedSync): Destination;
}

/** How far a run's read got, for progress bars. */
export interface RunProgressReport {
  readonly rowsRead: number;
  /** Rows the read will return, when counted (`countRows`). */
  readonly total?: number;
  /** Groups created or updated so far (acknowledged). */
  readonly groupsSent: number;
  readonly elapsedMs: number;
}

export interface RunSyncOptions {
  readonly stateDir: string;
  readonly connectors: Connectors;
  readonly logger: Logger;
  /** Plan: diff and report, send nothing, change no state. */
  readonly plan?: boolean;
  /** Mirror mode: delete even when the source shrank past max_delete_share or returned no rows. */
  readonly force?: boolean;
  /** Stops the run at once: requests in flight are abandoned; what was acknowledged is still committed. */
  readonly signal?: AbortSignal;
  /**
   * Stops the run gracefully: no more rows are read, what was read is sent and acknowledged (or not) as usual, and
   * the state is committed. `signal` cuts it short.
   */
  readonly stop?: AbortSignal;
  /**
   * A backfill: every group's non-null properties are sent whatever the snapshot says, while `$unset`s and mirror
   * deletes are still computed against it. `where` limits it to a subset (SQL). An unfinished backfill with the
   * same `where` continues where it stopped, unless `restart`.
   */
  readonly backfill?: { readonly where?: string; readonly restart?: boolean };
  /** Incremental mappings (`cursor`): read every row this time (a full pass, which also finds deleted groups). */
  readonly full?: boolean;
  /** Called after each chunk (or page) read. */
  readonly onProgress?: (progress: RunProgressReport) => void;
  /** Count the rows before reading, so `onProgress` has a total (one more query). */
  readonly countRows?: boolean;
  /** How often the run's acknowledged progress is made durable; default 2000 ms. */
  readonly progressIntervalMs?: number;
  /** Rows of an incremental read sorted in memory before spilling to disk; default 50000. */
  readonly stageRows?: number;
  /** Tuning of hashed reads (tests, bench). */
  readonly hashed?: ReadPlanOptions["hashed"];
  /** Overrides of delivery timings (tests use short backoffs). */
  readonly delivery?: Partial<DeliveryOptions>;
  /** Rows per chunk read from the source (and per page of an incremental read); default: the source's fetch size. */
  readonly readBatchSize?: number;
  /** Sample payloads kept in plan mode. */
  readonly samples?: number;
  /** Most groups waiting in memory for acknowledgements before reading pauses. */
  readonly maxWindow?: number;
}

function runId(now: Date): string {
  return `${now.toISOString().replace(/[-:.]/g, "").slice(0, 15)}Z-${randomBytes(3).toString("hex")}`;
}

function destinationIdentity(sync: LoadedSync): string {
  const config = sync.destination.config;
  // A fingerprint of the project, never the token: a new project token means the snapshot describes another project.
  const { host, project } = destinationProject(config);
  const digest = createHash("sha256").update(`${config.type}|${host}|${project}`).digest("hex").slice(0, 16);
  return `${config.type}:${digest}`;
}

function isHierarchical(sync: LoadedSync): boolean {
  const config = sync.destination.config;
  return "hierarchical" in config && config.hierarchical === true;
}

function toError(error: unknown): { code: string; message: string; action?: string } {
  if (error instanceof GroupsyncError) {
    return { code: error.code, message: redact(error.message), ...(error.action ? { action: error.action } : {}) };
  }
  if ((error as Error)?.name === "AbortError") return { code: "ABORTED", message: "the run was stopped" };
  return { code: "INTERNAL", message: redact(String((error as Error)?.message ?? error)) };
}

/** The error of a graceful stop: the run ended early, its acknowledged progress is kept. */
export class RunStopped extends GroupsyncError {
  constructor() {
    super("the run was stopped before it read everything; what was acknowledged is kept", {
      code: "STOPPED",
      action: "Nothing to do: the next run continues.",
    });
  }
}

/** Runs (or plans) one sync. Never throws for a failed run: the summary says what happened. */
export async function runSync(sync: LoadedSync, options: RunSyncOptions): Promise<RunSummary> {
  const started = new Date();
  const plan = options.plan === true;
  const summary = emptySummary(sync.name, plan ? "plan" : "run", started);
  const log = options.logger.child({ sync: sync.name });
  const paths = syncStatePaths(options.stateDir, sync.name);
  const id = runId(started);
  let lock: Lock | undefined;
  const rejects = new RejectLog(log, plan ? undefined : `${paths.rejects}.${id}.tmp`);
  try {
    if (!plan) {
      await ensureStateDir(paths.dir);
      lock = await acquireLock(paths.lock, sync.name);
    }
    await execute(sync, options, summary, rejects, id, started, log);
  } catch (error) {
    summary.status = "failed";
    summary.error = toError(error);
    if (error instanceof RunStopped) log.warn(summary.error.message);
    else log.error({ err: summary.error }, `sync ${sync.name} failed: ${summary.error.message}`);
    if (!(error instanceof GroupsyncError)) log.debug({ err: error }, "failure detail");
  } finally {
    summary.rejected += rejects.count;
    if (summary.status === "ok" && summary.rejected > 0) summary.status = "rejected";
    const finished = new Date();
    summary.finished_at = finished.toISOString();
    summary.duration_ms = finished.getTime() - started.getTime();
    // Without the lock the run never started: the state folder belongs to the run that holds it.
    if (!plan && lock) {
      await rejects
        .commit(paths.rejects)
        .catch((error) => log.warn({ err: toError(error) }, "could not write rejects"));
      await appendRunHistory(paths.runs, summary).catch((error) =>
        log.warn({ err: toError(error) }, "could not write run history"),
      );
    } else {
      await rejects.discard();
    }
    await lock?.release();
  }
  return summary;
}

async function execute(
  sync: LoadedSync,
  options: RunSyncOptions,
  summary: RunSummary,
  rejects: RejectLog,
  id: string,
  started: Date,
  log: Logger,
): Promise<void> {
  const plan = options.plan === true;
  const paths = syncStatePaths(options.stateDir, sync.name);
  const hierarchical = isHierarchical(sync);
  const identity = {
    sync: sync.name,
    group_key: sync.mapping.group_key,
    hierarchical,
    destination: destinationIdentity(sync),
  };

  // 1. The previous state, with whatever a killed run left folded in.
  const { checkpoint, previousPath } = await openState({ paths, identity, hierarchical, plan, runId: id, log });

  // 2. Connect, check the mapping against the real columns.
  const source = options.connectors.createSource(sync);
  const destination = options.connectors.createDestination(sync);
  const previous = new EntryCursor(previousPath);
  const temps: string[] = [];
  // Closed in `finally`, so that a failed run leaves no file open (a long-running `start` would run out of them).
  const writers: { abandon(): Promise<void> }[] = [];
  let dispose = async () => {};
  try {
    await source.check();
    const columns = await source.describe(
      sync.mapping.from !== undefined ? { from: sync.mapping.from } : { query: sync.mapping.query as string },
    );
    const mapping = compileMapping(sync.mapping, columns, {
      hierarchical,
      file: displayPath(sync.mappingFile),
      locate: sync.locateInMapping,
    });
    const definitions: PropertyDefinition[] = mapping.properties.map(({ name, definition }) => ({ name, definition }));
    const layout = planLayout(definitions, checkpoint?.properties ?? []);
    const names = layout.properties.map((property) => property.name);
    const width = layout.properties.length;
    // A row hash from another layout says nothing about this one.
    const rowHashesValid =
      checkpoint !== undefined &&
      width === checkpoint.properties.length &&
      layout.properties.every(
        (property, i) =>
          property.name === checkpoint.properties[i]!.name &&
          property.definition === checkpoint.properties[i]!.definition,
      );

    // 3. What to read: everything, the changes since the watermark, or a backfill.
    const counters = { valid: 0 };
    let total: number | undefined;
    const readPlan = await planRead({
      sync,
      mapping,
      layout,
      source,
      hasState: checkpoint !== undefined,
      paths,
      runId: id,
      plan,
      started,
      log,
      context: {
        mapping,
        summary,
        rejects,
        counters,
        ...(options.onProgress
          ? {
              onRows: (rowsRead: number) =>
                options.onProgress!({
                  rowsRead,
                  ...(total !== undefined ? { total } : {}),
                  groupsSent: summary.groups_created + summary.groups_updated,
                  elapsedMs: Date.now() - started.getTime(),
                }),
            }
          : {}),
      },
      batchSize: options.readBatchSize ?? ("fetch_size" in sync.source.config ? sync.source.config.fetch_size : 5000),
      ...(options.backfill ? { backfill: options.backfill } : {}),
      ...(options.full ? { full: true } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.stop ? { stop: options.stop } : {}),
      ...(options.stageRows !== undefined ? { stageRows: options.stageRows } : {}),
      ...(previousPath !== undefined && rowHashesValid ? { hashedFrom: previousPath } : {}),
      ...(options.hashed ? { hashed: options.hashed } : {}),
    });
    dispose = () => readPlan.dispose();
    summary.read = readPlan.kind;
    if (readPlan.backfill) {
      summary.backfill = {
        ...(readPlan.backfill.scope.where !== undefined ? { where: readPlan.backfill.scope.where } : {}),
        ...(readPlan.backfill.after ? { resumed_after: formatKey(readPlan.backfill.after) } : {}),
        finished: false,
      };
    }
    if (options.countRows && source.count) total = await source.count(readPlan.spec);

    const mainTemp = `${paths.snapshot(`snapshot-${id}.bin`)}.tmp`;
    const spillTemp = `${paths.dir}/deletes-${id}.tmp`;
    const keptTemp = `${paths.dir}/kept-${id}.tmp`;
    const header = { properties: names, hierarchical };
    const mainWriter = plan ? undefined : await SnapshotWriter.create(mainTemp, header);
    const main = mainWriter ? new CountingWriter(mainWriter, width) : undefined;
    if (mainWriter) {
      temps.push(mainTemp);
      writers.push(mainWriter);
    }
    const progress = main
      ? new RunProgress({
          main,
          file: mainTemp,
          progressPath: paths.progress,
          runId: id,
          previous: checkpoint?.snapshot.file ?? null,
          properties: layout.properties,
          ...(readPlan.backfill ? { backfill: readPlan.backfill } : {}),
          intervalMs: options.progressIntervalMs ?? 2000,
        })
      : undefined;

    const mirror = sync.sync.mode === "mirror" && sync.mapping.on_delete !== "ignore";
    let spill: SnapshotWriter | undefined;
    const planSink = plan ? new PlanSink(destination, options.samples ?? 5) : undefined;
    const journal = plan ? undefined : new Journal(paths.dir, id, header);
    if (journal) writers.push(journal);
    const delivery = plan
      ? undefined
      : new Delivery(destination, {
          maxRetries: "max_retries" in sync.destination.config ? sync.destination.config.max_retries : 8,
          logger: log,
          beforeSend: () => journal!.durable(),
          ...(options.signal ? { signal: options.signal } : {}),
          ...options.delivery,
        });
    const sink: OperationSink = planSink ?? (delivery as OperationSink);

    // Member by member, not with spreads: one object per group sent, and nothing else.
    const ref = (key: GroupKey): GroupRef => {
      const made: { -readonly [K in keyof GroupRef]: GroupRef[K] } = {
        groupKey: mapping.groupKey,
        groupId: key.groupId,
      };
      if (hierarchical) made.companyId = key.companyId;
      if (key.userId !== undefined) made.userId = key.userId;
      return made;
    };
    const merge = new Merge(
      {
        plan,
        summary,
        rejects,
        mapping,
        layout,
        rowHashesValid,
        ...(source.hashes?.rowHash ? { rowHash: source.hashes.rowHash } : {}),
        hashInRows: source.hashes?.hashInRows === true,
        sink,
        journal,
        mirror,
        sendAll: readPlan.backfill !== undefined,
        covers: (key) => readPlan.covers(key),
        write: progress ? progress.write : async () => {},
        spill: async (entry) => {
          if (plan) {
            const op = deleteOperation(entry);
            if (op) await sink.enqueue(op, () => undefined);
            return;
          }
          if (!spill) {
            spill = await SnapshotWriter.create(spillTemp, header);
            temps.push(spillTemp);
            writers.push(spill);
          }
          await spill.add(entry);
        },
        ref,
        maxWindow: options.maxWindow ?? 50_000,
      },
      previous,
    );

    const unsetOnDelete = layout.properties.map((property) => {
      const rule = ruleOf(property.definition);
      return rule.op === "set" && rule.nulls === "unset";
    });
    function deleteOperation(entry: SnapshotEntry): GroupOperation | undefined {
      if (sync.mapping.on_delete === "delete") return { kind: "delete", ref: ref(entry) };
      // Only what a null would unset: set_once and nulls: keep values stay, and so do union lists (other writers'
      // items live in them).
      const set = names.filter((_, i) => entry.hashes[i] !== null && unsetOnDelete[i]);
      return set.length > 0 ? { kind: "unset", ref: ref(entry), names: set } : undefined;
    }

    // 4. The merge. A stop (graceful) ends the read; what was read is still delivered.
    let failure: unknown;
    /** Every group unchanged: the previous snapshot stays as it is (step 8 links it under the new name). */
    let reuse: { groups: number; counts: number[] } | undefined;
    try {
      if (readPlan.identical && layout.identity && checkpoint && (await readPlan.identical())) {
        const groups = checkpoint.snapshot.groups;
        reuse = { groups, counts: checkpoint.properties.map((property) => property.groups_set) };
        summary.rows_read = groups;
        summary.unchanged = groups;
        counters.valid = groups;
      }
      for await (const groups of reuse ? [] : readPlan.groups) {
        for (let i = 0; i < groups.length; i++) {
          const wait = merge.group(groups[i]!);
          if (wait) await wait;
          // Every few hundred groups, not once a chunk: with a slow destination, one chunk of fetch_size rows can
          // take minutes, and its settled groups should be written (and made durable) as they settle.
          if (i % 256 === 255 || i === groups.length - 1) {
            await merge.keepUp();
            await progress?.maybeCommit();
            if (options.stop?.aborted) throw new RunStopped();
          }
        }
      }
      if (!reuse) await merge.rest();
    } catch (error) {
      failure = options.stop?.aborted && error === options.stop.reason ? new RunStopped() : error;
    }

    // 5. Every operation gets its outcome; acknowledged ones are recorded even when the run failed.
    try {
      await sink.flush();
    } catch (error) {
      failure ??= error;
    }
    await merge.drain();
    log.debug({ window_peak: merge.windowPeak }, "most groups held in memory at once, waiting to be written");

    // 6. Mirror deletes, only after the whole source was read, and only within the guard.
    let kept: SnapshotWriter | undefined;
    const keep = async (entry: SnapshotEntry) => {
      if (!kept) {
        kept = await SnapshotWriter.create(keptTemp, header);
        temps.push(keptTemp);
        writers.push(kept);
      }
      await kept.add(entry);
    };
    const guard = () =>
      deleteGuard({
        failed: failure !== undefined,
        force: options.force === true,
        validRows: counters.valid,
        previousGroups: checkpoint?.snapshot.groups ?? 0,
        candidates: summary.delete_candidates,
        maxDeleteShare: sync.sync.max_delete_share,
      });
    if (plan && summary.delete_candidates > 0) {
      const skip = guard();
      if (skip) summary.deletes_skipped = skip;
      else summary.groups_deleted = summary.delete_candidates;
    }
    if (spill) {
      await spill.finish();
      const skip = guard();
      if (skip) {
        summary.deletes_skipped = skip;
        if (failure === undefined) {
          log.error(
            { candidates: summary.delete_candidates },
            `mirror deletes held back: ${skip}. Nothing was deleted; check the source, then run with --force to delete.`,
          );
        }
      }
      const stopped = await sendMirrorDeletes({
        candidates: spillTemp,
        skip,
        summary,
        sink,
        journal: journal!,
        operation: deleteOperation,
        failed: (key, result) => merge.failed(key, result),
        keep,
      });
      failure ??= stopped;
    }

    // 7. On failure, the groups not reached keep their previous state.
    if (failure !== undefined && main) await merge.keepRest();

    if (delivery) {
      summary.requests = delivery.stats.requests;
      summary.retries = delivery.stats.retries;
      summary.bytes_sent = delivery.stats.bytes;
    }
    const skipped: SkippedOperations | undefined = delivery?.skipped ?? planSink?.skipped;
    if (skipped && skipped.count > 0) {
      summary.skipped = skipped.count;
      summary.skipped_reasons = [...skipped.reasons];
    }
    if (planSink) summary.samples = planSink.samples;

    // 8. Commit: snapshot first (durable), then the checkpoint that names it; then the watermark and the backfill.
    if (main) {
      await commitSnapshot({
        paths,
        runId: id,
        identity,
        header,
        layout,
        main,
        mainTemp,
        ...(kept ? { kept: { writer: kept, path: keptTemp } } : {}),
        previousPath,
        journal,
        temps,
        ...(reuse && failure === undefined ? { reuse } : {}),
      });
      const cursorState = failure === undefined ? readPlan.cursorState() : undefined;
      if (cursorState) {
        await writeCursorState(paths.cursor, cursorState);
        if (cursorState.watermark !== undefined) summary.watermark = cursorState.watermark;
      }
      if (readPlan.backfill && summary.backfill) {
        if (failure === undefined) {
          await removeFile(paths.backfill);
          summary.backfill.finished = true;
        } else {
          await writeBackfillState(paths.backfill, readPlan.backfill.scope, progress?.resumable);
          if (progress?.resumable) {
            log.info(
              { through: formatKey(progress.resumable) },
              `backfill unfinished: \`groupsync backfill ${sync.name}\` continues after ${formatKey(progress.resumable)}`,
            );
          }
        }
      }
    }
    if (failure !== undefined) throw failure;
  } finally {
    await previous.close();
    await dispose().catch(() => undefined);
    for (const writer of writers) await writer.abandon().catch(() => undefined);
    for (const temp of temps) await rm(temp, { force: true }).catch(() => undefined);
    await source.close().catch(() => undefined);
    await destination.close().catch(() => undefined);
  }
}
