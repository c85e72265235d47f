/**
 * One run of one sync, top to bottom: ordered source rows → mapped groups → merge with the sorted snapshot →
 * per-property diff → operations → delivery → acknowledgements → the next snapshot. The snapshot and checkpoint
 * are replaced only at the end, atomically; they record only what the destination acknowledged, so a crash at any
 * instant loses nothing (the next run re-sends), and a rejected or unsent change is retried next run.
 */
import { createHash, randomBytes } from "node:crypto";
import { rm, stat } from "node:fs/promises";
import type { Logger } from "pino";
import { displayPath } from "../config/check-file.js";
import type { LoadedSync } from "../config/load.js";
import { Delivery, type DeliveryOptions, type OperationResult } from "../delivery/delivery.js";
import type { Destination } from "../destination.js";
import { diffGroup } from "../diff/diff-group.js";
import { propertyHash, rowHash } from "../diff/hash.js";
import type { PropertyDefinition } from "../diff/layout.js";
import { planLayout } from "../diff/layout.js";
import { GroupsyncError, SourceError, StateError } from "../errors.js";
import { compileMapping } from "../mapping/mapper.js";
import type { GroupOperation, GroupRef, JsonValue } from "../model.js";
import { redact } from "../secret.js";
import type { Source } from "../source.js";
import { type Checkpoint, readCheckpoint, verifyCheckpoint, writeCheckpoint } from "../state/checkpoint.js";
import { Journal } from "../state/journal.js";
import { compareKeys, formatKey, type GroupKey } from "../state/key-order.js";
import { acquireLock, type Lock } from "../state/lock.js";
import { recoverJournals } from "../state/recover.js";
import { EntryCursor, mergeSnapshots } from "../state/snapshot-cursor.js";
import { readSnapshotHeader, type SnapshotEntry, SnapshotWriter, UNKNOWN_HASH } from "../state/snapshot-file.js";
import { commitFile, ensureStateDir, removeStrayFiles, syncStatePaths } from "../state/state-dir.js";
import { CommitWindow, type Slot } from "./commit-window.js";
import { RejectLog } from "./reject-log.js";
import { appendRunHistory } from "./run-history.js";
import { emptySummary, type RunSummary } from "./summary.js";

/** Where sources and destinations come from; tests and the CLI pass the real registry. */
export interface Connectors {
  createSource(sync: LoadedSync): Source;
  createDestination(sync: LoadedSync): Destination;
}

export interface RunSyncOptions {
  readonly stateDir: string;
  readonly connectors: Connectors;
  readonly logger: Logger;
  /** Plan: diff and report, send nothing, change no state. */
  readonly plan?: boolean;
  /** Mirror mode: delete even when the source shrank past max_delete_share or returned no rows. */
  readonly force?: boolean;
  readonly signal?: AbortSignal;
  /** Overrides of delivery timings (tests use short backoffs). */
  readonly delivery?: Partial<DeliveryOptions>;
  /** Rows per chunk read from the source; default: the source's fetch size. */
  readonly readBatchSize?: number;
  /** Sample payloads kept in plan mode. */
  readonly samples?: number;
  /** Most groups waiting in memory for acknowledgements before reading pauses. */
  readonly maxWindow?: number;
}

/** What the engine needs from a sink of operations: the Delivery, or the plan's counter. */
interface OperationSink {
  enqueue(operation: GroupOperation, onResult: (result: OperationResult) => void): Promise<void>;
  flush(): Promise<void>;
}

/** Counts and samples what would be sent; acknowledges nothing. */
class PlanSink implements OperationSink {
  readonly samples: unknown[] = [];
  constructor(
    private readonly destination: Destination,
    private readonly keep: number,
  ) {}
  async enqueue(operation: GroupOperation): Promise<void> {
    if (this.samples.length < this.keep) {
      this.samples.push(JSON.parse(redact(this.destination.encode(operation).json)));
    }
  }
  async flush(): Promise<void> {}
}

/** Counts groups holding each property while entries are written. */
class CountingWriter {
  readonly counts: number[];
  constructor(
    readonly writer: SnapshotWriter,
    properties: number,
  ) {
    this.counts = new Array(properties).fill(0);
  }
  readonly add = async (entry: SnapshotEntry): Promise<void> => {
    const hashes = entry.hashes;
    for (let i = 0; i < hashes.length; i++) if (hashes[i] !== null) this.counts[i]!++;
    await this.writer.add(entry);
  };
}

function runId(now: Date): string {
  return `${now.toISOString().replace(/[-:.]/g, "").slice(0, 15)}Z-${randomBytes(3).toString("hex")}`;
}

function destinationIdentity(sync: LoadedSync): string {
  const config = sync.destination.config;
  // A fingerprint of the project, never the token: a new project token means the snapshot describes another project.
  const project = "project_token" in config ? config.project_token.reveal() : "";
  const host = "api_host" in config ? (config.api_host ?? config.region) : "";
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
    await execute(sync, options, summary, rejects, paths, id, log);
  } catch (error) {
    summary.status = "failed";
    summary.error = toError(error);
    log.error({ err: summary.error }, `sync ${sync.name} failed: ${summary.error.message}`);
    if (!(error instanceof GroupsyncError)) log.debug({ err: error }, "failure detail");
  } finally {
    summary.rejected += rejects.count;
    if (summary.status === "ok" && summary.rejected > 0) summary.status = "rejected";
    const finished = new Date();
    summary.finished_at = finished.toISOString();
    summary.duration_ms = finished.getTime() - started.getTime();
    if (!plan) {
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
  paths: ReturnType<typeof syncStatePaths>,
  id: string,
  log: Logger,
): Promise<void> {
  const plan = options.plan === true;
  const hierarchical = isHierarchical(sync);
  const identity = {
    sync: sync.name,
    group_key: sync.mapping.group_key,
    hierarchical,
    destination: destinationIdentity(sync),
  };

  // 1. The previous state: verified before anything is read or sent.
  let checkpoint: Checkpoint | undefined = await readCheckpoint(paths.checkpoint);
  if (checkpoint) {
    await verifyCheckpoint(checkpoint, identity, paths.checkpoint, paths.snapshot(checkpoint.snapshot.file));
  }
  if (!plan) {
    // A run that died mid-delivery left a journal of what it may have changed: fold it in first.
    const recovery = await recoverJournals({ paths, checkpoint, identity, hierarchical, runId: id });
    if (recovery.recovered > 0) {
      log.warn(
        { groups: recovery.recovered },
        `the previous run stopped mid-delivery; ${recovery.recovered} groups it may have changed will be checked and re-sent`,
      );
    }
    checkpoint = recovery.checkpoint;
  }
  let previousPath: string | undefined;
  if (checkpoint) {
    previousPath = paths.snapshot(checkpoint.snapshot.file);
    const header = await readSnapshotHeader(previousPath);
    const names = checkpoint.properties.map((property) => property.name);
    if (header.hierarchical !== hierarchical || JSON.stringify(header.properties) !== JSON.stringify(names)) {
      throw new StateError(`snapshot ${previousPath} does not match ${paths.checkpoint}`, {
        code: "STATE_CORRUPT",
        action:
          "Restore the state folder from a backup, or run `groupsync reset <sync> --yes` (every group is re-sent).",
      });
    }
  }
  if (!plan) await removeStrayFiles(paths.dir, new Set(checkpoint ? [checkpoint.snapshot.file] : []));

  // 2. Connect, check the mapping against the real columns.
  const source = options.connectors.createSource(sync);
  const destination = options.connectors.createDestination(sync);
  const cursor = new EntryCursor(previousPath);
  const temps: string[] = [];
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

    const mainTemp = `${paths.snapshot(`snapshot-${id}.bin`)}.tmp`;
    const spillTemp = `${paths.dir}/deletes-${id}.tmp`;
    const keptTemp = `${paths.dir}/kept-${id}.tmp`;
    const header = { properties: names, hierarchical };
    const main = plan ? undefined : new CountingWriter(await SnapshotWriter.create(mainTemp, header), width);
    if (main) temps.push(mainTemp);
    const write = main ? main.add : async () => {};

    const mirror = sync.sync.mode === "mirror" && sync.mapping.on_delete !== "ignore";
    let spill: SnapshotWriter | undefined;
    const spillAdd = async (entry: SnapshotEntry) => {
      if (!spill) {
        spill = await SnapshotWriter.create(spillTemp, header);
        temps.push(spillTemp);
      }
      await spill.add(entry);
    };

    const planSink = plan ? new PlanSink(destination, options.samples ?? 5) : undefined;
    const journal = plan ? undefined : new Journal(paths.dir, id, header);
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
    const window = new CommitWindow();
    const maxWindow = options.maxWindow ?? 50_000;

    const ref = (key: GroupKey): GroupRef =>
      hierarchical
        ? { groupKey: mapping.groupKey, groupId: key.groupId, companyId: key.companyId }
        : { groupKey: mapping.groupKey, groupId: key.groupId };

    const onFailure = (key: GroupKey, result: OperationResult & { ok: false }) => {
      if (result.rejected) rejects.add(formatKey(key), result.reason);
      else summary.unsent++;
    };

    /**
     * Sends the operations of one group; its slot records each outcome. `touched` are the property indexes the
     * operations change: journaled before sending, and marked unknown if an operation fails (it may still have
     * been applied: a timeout after the destination applied it looks the same as a refusal).
     */
    const send = async (
      slot: Slot,
      existed: boolean,
      touched: readonly number[],
      operations: { op: GroupOperation; apply: () => void }[],
    ) => {
      let acknowledged = false;
      let failed = false;
      slot.pending = operations.length;
      if (plan) {
        // Nothing is acknowledged in a plan, and nothing is written: count what would happen.
        if (existed) summary.groups_updated++;
        else summary.groups_created++;
        for (const { op } of operations) await sink.enqueue(op, () => undefined);
        return;
      }
      window.push(slot);
      await journal!.record(slot.entry, touched);
      for (const { op, apply } of operations) {
        await sink.enqueue(op, (result) => {
          if (result.ok) {
            apply();
            acknowledged = true;
          } else {
            failed = true;
            onFailure(slot.entry, result);
          }
          slot.pending--;
          if (slot.pending === 0) {
            if (failed) {
              slot.entry.rowHash = UNKNOWN_HASH;
              for (const index of touched) slot.entry.hashes[index] = UNKNOWN_HASH;
            }
            // A failed operation may have reached the destination: keep the group so it can be corrected later.
            slot.keep = existed || acknowledged || failed;
            if (acknowledged && !plan) {
              if (existed) summary.groups_updated++;
              else summary.groups_created++;
            }
            window.notify();
          }
        });
      }
    };

    const carry = (entry: SnapshotEntry) => window.push({ entry, pending: 0, keep: true });

    const translate = (entry: SnapshotEntry): SnapshotEntry => ({
      companyId: entry.companyId,
      groupId: entry.groupId,
      rowHash: rowHashesValid ? entry.rowHash : UNKNOWN_HASH,
      hashes: layout.translate(entry.hashes),
    });

    const absent = async (entry: SnapshotEntry) => {
      if (mirror) {
        summary.delete_candidates++;
        if (plan) {
          const op = deleteOperation(translate(entry));
          if (op) await sink.enqueue(op, () => undefined);
          return;
        }
        await spillAdd(translate(entry));
      } else {
        carry(translate(entry));
      }
    };

    const processGroup = async (key: GroupKey, cells: readonly (string | null)[], copies: number) => {
      let previous: SnapshotEntry | undefined;
      for (;;) {
        const next = await cursor.peek();
        if (!next) break;
        const order = compareKeys(next, key);
        if (order > 0) break;
        cursor.skip();
        if (order === 0) {
          previous = next;
          break;
        }
        await absent(next);
      }
      const held = previous ? translate(previous) : undefined;
      if (copies > 1) {
        rejects.add(formatKey(key), `Group ID seen ${copies} times in this run; Group IDs must be unique`, copies);
        if (held) carry(held);
        return;
      }
      const hashes = cells.map((cell) => (cell === null ? null : propertyHash(cell)));
      const diff = diffGroup(held?.hashes, hashes);
      const hash = rowHash(cells);
      if (diff.set.length === 0 && diff.unset.length === 0) {
        summary.unchanged++;
        if (held) carry({ ...held, rowHash: hash });
        return;
      }
      const properties: Record<string, JsonValue> = {};
      for (const index of diff.set) {
        const value = mapping.value(index, cells[index] as string);
        if (!value.ok) {
          rejects.add(formatKey(key), value.reason);
          if (held) carry(held);
          return;
        }
        properties[names[index]!] = value.value;
      }
      const entry: SnapshotEntry = held
        ? { ...held, rowHash: hash }
        : { companyId: key.companyId, groupId: key.groupId, rowHash: hash, hashes: new Array(width).fill(null) };
      const operations: { op: GroupOperation; apply: () => void }[] = [];
      if (diff.set.length > 0) {
        operations.push({
          op: { kind: "set", ref: ref(key), properties },
          apply: () => {
            for (const index of diff.set) entry.hashes[index] = hashes[index]!;
            summary.properties_set += diff.set.length;
          },
        });
      }
      if (diff.unset.length > 0) {
        operations.push({
          op: { kind: "unset", ref: ref(key), names: diff.unset.map((index) => names[index]!) },
          apply: () => {
            for (const index of diff.unset) entry.hashes[index] = null;
            summary.properties_unset += diff.unset.length;
          },
        });
      }
      if (plan) {
        summary.properties_set += diff.set.length;
        summary.properties_unset += diff.unset.length;
      }
      await send({ entry, pending: 0, keep: false }, held !== undefined, [...diff.set, ...diff.unset], operations);
    };

    const keepUp = async () => {
      await window.drain(write);
      while (window.size > maxWindow) {
        await window.progress();
        await window.drain(write);
      }
    };

    // 3. The merge.
    let failure: unknown;
    let pending: { key: GroupKey; cells: readonly (string | null)[]; copies: number } | undefined;
    let validRows = 0;
    try {
      const batchSize =
        options.readBatchSize ?? ("fetch_size" in sync.source.config ? sync.source.config.fetch_size : 5000);
      const read = source.read(mapping.readSpec, { batchSize, ...(options.signal ? { signal: options.signal } : {}) });
      for await (const chunk of read) {
        for (const raw of chunk) {
          summary.rows_read++;
          const row = mapping.map(raw);
          if (!row.ok) {
            rejects.add(row.key ?? "(no key)", row.reason);
            continue;
          }
          validRows++;
          if (pending) {
            const order = compareKeys(pending.key, row.key);
            if (order === 0) {
              pending.copies++;
              continue;
            }
            if (order > 0) {
              throw new SourceError(
                `rows arrived out of order (${formatKey(pending.key)} before ${formatKey(row.key)}); the diff needs code-point order`,
                {
                  code: "SOURCE_ORDER",
                  action:
                    "Check that the database encoding is UTF-8 and that the Group ID and Company ID columns are text or integers.",
                },
              );
            }
            await processGroup(pending.key, pending.cells, pending.copies);
          }
          pending = { key: row.key, cells: row.cells, copies: 1 };
        }
        await keepUp();
      }
      if (pending) {
        const last = pending;
        pending = undefined;
        await processGroup(last.key, last.cells, last.copies);
      }
      for (let next = await cursor.peek(); next; next = await cursor.peek()) {
        cursor.skip();
        await absent(next);
      }
    } catch (error) {
      failure = error;
    }

    // 4. Every operation gets its outcome; acknowledged ones are recorded even when the run failed.
    try {
      await sink.flush();
    } catch (error) {
      failure ??= error;
    }
    await window.drain(write);

    // 5. Mirror deletes, only after the whole source was read, and only within the guard.
    let kept: SnapshotWriter | undefined;
    const keep = async (entry: SnapshotEntry) => {
      if (!kept) {
        kept = await SnapshotWriter.create(keptTemp, header);
        temps.push(keptTemp);
      }
      await kept.add(entry);
    };
    const deleteGuard = (): string | undefined => {
      const candidates = summary.delete_candidates;
      const previousGroups = checkpoint?.snapshot.groups ?? 0;
      if (failure !== undefined) return "the run failed";
      if (options.force) return undefined;
      if (validRows === 0) return "the source returned no valid rows";
      if (previousGroups > 0 && candidates / previousGroups > sync.sync.max_delete_share) {
        return `${candidates} of ${previousGroups} groups (${Math.round((100 * candidates) / previousGroups)} %) left the source, more than max_delete_share ${sync.sync.max_delete_share * 100} %`;
      }
      return undefined;
    };
    if (plan && summary.delete_candidates > 0) {
      const skip = deleteGuard();
      if (skip) summary.deletes_skipped = skip;
      else summary.groups_deleted = summary.delete_candidates;
    }
    if (spill) {
      await spill.finish();
      const candidates = summary.delete_candidates;
      const skip = deleteGuard();
      if (skip) {
        summary.deletes_skipped = skip;
        if (failure === undefined) {
          log.error(
            { candidates },
            `mirror deletes held back: ${skip}. Nothing was deleted; check the source, then run with --force to delete.`,
          );
        }
      }
      const deletions = new CommitWindow();
      const cursorDeletes = new EntryCursor(spillTemp);
      if (!skip) await journal!.nextSection();
      try {
        for (let entry = await cursorDeletes.peek(); entry; entry = await cursorDeletes.peek()) {
          cursorDeletes.skip();
          if (skip) {
            await keep(entry);
            continue;
          }
          const op = deleteOperation(entry);
          if (!op) continue; // on_delete unset with nothing set: nothing to remove
          const slot: Slot = { entry, pending: 1, keep: true };
          deletions.push(slot);
          try {
            await journal!.record(entry, "all");
            await sink.enqueue(op, (result) => {
              if (result.ok) {
                slot.keep = false;
                summary.groups_deleted++;
              } else {
                onFailure(entry, result);
                // It may have been applied: whatever was set is now unknown.
                entry.rowHash = UNKNOWN_HASH;
                for (let i = 0; i < entry.hashes.length; i++)
                  if (entry.hashes[i] !== null) entry.hashes[i] = UNKNOWN_HASH;
              }
              slot.pending = 0;
              deletions.notify();
            });
          } catch (error) {
            failure ??= error;
            slot.pending = 0;
          }
          await deletions.drain(keep);
        }
        try {
          await sink.flush();
        } catch (error) {
          failure ??= error;
        }
        await deletions.drain(keep);
      } finally {
        await cursorDeletes.close();
      }
    }

    function deleteOperation(entry: SnapshotEntry): GroupOperation | undefined {
      if (sync.mapping.on_delete === "delete") return { kind: "delete", ref: ref(entry) };
      const set = names.filter((_, i) => entry.hashes[i] !== null);
      return set.length > 0 ? { kind: "unset", ref: ref(entry), names: set } : undefined;
    }

    // 6. On failure, the groups not reached keep their previous state.
    if (failure !== undefined && main) {
      for (let next = await cursor.peek(); next; next = await cursor.peek()) {
        cursor.skip();
        await main.add(translate(next));
      }
    }

    if (delivery) {
      summary.requests = delivery.stats.requests;
      summary.retries = delivery.stats.retries;
      summary.bytes_sent = delivery.stats.bytes;
    }
    if (planSink) summary.samples = planSink.samples;

    // 7. Commit: snapshot first (durable), then the checkpoint that names it.
    if (main) {
      await main.writer.finish();
      let final = mainTemp;
      let counts = main.counts;
      let groups = main.writer.count;
      if (kept) {
        await kept.finish();
        const mergedTemp = `${paths.dir}/merged-${id}.tmp`;
        temps.push(mergedTemp);
        const merged = new CountingWriter(await SnapshotWriter.create(mergedTemp, header), width);
        await mergeSnapshots(mainTemp, keptTemp, merged.add);
        await merged.writer.finish();
        final = mergedTemp;
        counts = merged.counts;
        groups = merged.writer.count;
      }
      const file = `snapshot-${id}.bin`;
      await commitFile(final, paths.snapshot(file), paths.dir);
      const bytes = (await stat(paths.snapshot(file))).size;
      await writeCheckpoint(paths.checkpoint, {
        format: "groupsync-checkpoint",
        version: 1,
        identity,
        snapshot: { file, groups, bytes },
        properties: layout.properties.map((property, i) => ({ ...property, groups_set: counts[i] ?? 0 })),
        updated_at: new Date().toISOString(),
      });
      if (previousPath) await rm(previousPath, { force: true });
      await journal?.remove();
    }
    if (failure !== undefined) throw failure;
  } finally {
    await cursor.close();
    for (const temp of temps) await rm(temp, { force: true }).catch(() => undefined);
    await source.close().catch(() => undefined);
    await destination.close().catch(() => undefined);
  }
}
