/**
 * `groupsync verify`: reads a sample of groups back from the destination and reports, property by property, where
 * the destination differs from what groupsync last sent (someone edited a profile, a profile was deleted, a send
 * was lost).
 *
 * How: (1) pick the groups from the state's snapshot (a random sample, reservoir sampling over the sorted file, or
 * `--keys`); (2) read the current source rows of those groups in one streamed pass, keeping only the sampled rows;
 * (3) read the profiles back, paced by the destination's rate limit, honouring 429 Retry-After; (4) compare (see
 * compare.ts). Memory: the sample only. Nothing is written: state, destination and source are only read.
 */
import { displayPath } from "../config/check-file.js";
import type { LoadedSync } from "../config/load.js";
import { DestinationError, StateError } from "../errors.js";
import { compileMapping } from "../mapping/mapper.js";
import type { GroupRef, JsonValue } from "../model.js";
import type { ProfileReader } from "../read-back.js";
import type { Source } from "../source.js";
import { readCheckpoint } from "../state/checkpoint.js";
import { compareKeys, formatKey, type GroupKey } from "../state/key-order.js";
import type { SnapshotEntry } from "../state/snapshot-file.js";
import { syncStatePaths } from "../state/state-dir.js";
import { compareGroup, type GroupFinding } from "./compare.js";
import { pickKeys, sampleSnapshot } from "./sample.js";

export interface VerifyOptions {
  readonly stateDir: string;
  /** Groups to sample at random; ignored when `keys` is given. */
  readonly sample: number;
  /** Exactly these groups (`formatKey` form: `group_id`, or `company_id/group_id` when hierarchical). */
  readonly keys?: readonly string[];
  readonly createSource: (sync: LoadedSync) => Source;
  readonly createReader: (sync: LoadedSync) => ProfileReader;
  /** Called once the sample is known, before the slow part: how many requests, and how long at least. */
  readonly onEstimate?: (estimate: VerifyEstimate) => void;
  readonly signal?: AbortSignal;
  /** Retries of one request on 429, 5xx and network errors. */
  readonly maxRetries?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: (n: number) => number;
}

export interface VerifyEstimate {
  readonly groups: number;
  readonly requests: number;
  /** The least time the reads take at the destination's pace, in seconds. */
  readonly seconds: number;
  readonly note: string;
}

export interface VerifyReport {
  readonly sync: string;
  readonly destination: string;
  /** Groups in the state. */
  readonly state_groups: number;
  readonly sampled: number;
  /** Sampled groups compared (not unchecked). */
  readonly checked: number;
  /** Groups with drift (a differing property, or a missing profile). */
  readonly drifted: number;
  readonly estimate: VerifyEstimate;
  /** Keys asked for that groupsync never sent. */
  readonly unknown_keys: readonly string[];
  readonly groups: readonly GroupFinding[];
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runVerify(sync: LoadedSync, options: VerifyOptions): Promise<VerifyReport> {
  const paths = syncStatePaths(options.stateDir, sync.name);
  const checkpoint = await readCheckpoint(paths.checkpoint);
  if (!checkpoint) {
    throw new StateError(`sync ${sync.name} has no state yet: groupsync has sent nothing to compare with`, {
      code: "VERIFY_NO_STATE",
      action: `Run \`groupsync run ${sync.name}\` first.`,
    });
  }
  const snapshot = paths.snapshot(checkpoint.snapshot.file);
  const sample = options.keys
    ? await pickKeys(snapshot, options.keys)
    : await sampleSnapshot(snapshot, options.sample, options.random);

  const reader = options.createReader(sync);
  const source = options.createSource(sync);
  try {
    const requests = Math.ceil(sample.entries.length / reader.batchSize);
    const estimate: VerifyEstimate = {
      groups: sample.entries.length,
      requests,
      seconds: Math.ceil((Math.max(0, requests - 1) * reader.minIntervalMs) / 1000),
      note: reader.rateNote,
    };
    options.onEstimate?.(estimate);

    const cells = await readSampledRows(sync, source, sample.entries, options.signal);
    const hierarchical = checkpoint.identity.hierarchical;
    const ref = (key: GroupKey): GroupRef => ({
      groupKey: checkpoint.identity.group_key,
      groupId: key.groupId,
      ...(hierarchical ? { companyId: key.companyId } : {}),
    });
    const profiles = await readProfiles(reader, sample.entries.map(ref), options);
    const mapping = cells.mapping;
    const groups = sample.entries.map((entry, i) =>
      compareGroup({
        key: formatKey(entry),
        mapping,
        layout: checkpoint.properties,
        entry,
        cells: cells.rows.get(formatKey(entry)),
        profile: profiles[i],
      }),
    );
    return {
      sync: sync.name,
      destination: sync.destination.name,
      state_groups: sample.total,
      sampled: sample.entries.length,
      checked: groups.filter((group) => group.status !== "unchecked").length,
      drifted: groups.filter((group) => group.status === "drift" || group.status === "missing").length,
      estimate,
      unknown_keys: sample.unknownKeys,
      groups,
    };
  } finally {
    await Promise.all([reader.close(), source.close()]);
  }
}

/**
 * The current source cells of the sampled groups: one streamed read of the mapping's rows in key order, keeping
 * only the sampled ones, stopping after the last of them.
 */
async function readSampledRows(
  sync: LoadedSync,
  source: Source,
  entries: readonly SnapshotEntry[],
  signal: AbortSignal | undefined,
) {
  await source.check();
  const columns = await source.describe(
    sync.mapping.from !== undefined ? { from: sync.mapping.from } : { query: sync.mapping.query as string },
  );
  const hierarchical = "hierarchical" in sync.destination.config && sync.destination.config.hierarchical === true;
  const mapping = compileMapping(sync.mapping, columns, {
    hierarchical,
    file: displayPath(sync.mappingFile),
    ...(sync.locateInMapping ? { locate: sync.locateInMapping } : {}),
  });
  const wanted = new Set(entries.map((entry) => formatKey(entry)));
  const rows = new Map<string, readonly (string | null)[]>();
  const last = entries.at(-1);
  if (!last) return { mapping, rows };
  const batchSize = "fetch_size" in sync.source.config ? sync.source.config.fetch_size : 5000;
  read: for await (const chunk of source.read(mapping.readSpec, { batchSize, ...(signal ? { signal } : {}) })) {
    for (const row of chunk) {
      const mapped = mapping.map(row);
      if (!mapped.ok) continue;
      if (compareKeys(mapped.key, last) > 0) break read;
      const key = formatKey(mapped.key);
      if (wanted.has(key)) rows.set(key, mapped.cells);
    }
  }
  return { mapping, rows };
}

/** Reads the profiles in batches, one request at a time, spaced by the reader's pace, retrying transient failures. */
async function readProfiles(
  reader: ProfileReader,
  refs: readonly GroupRef[],
  options: VerifyOptions,
): Promise<(Readonly<Record<string, JsonValue>> | undefined)[]> {
  const sleep = options.sleep ?? defaultSleep;
  const maxRetries = options.maxRetries ?? 8;
  const out: (Readonly<Record<string, JsonValue>> | undefined)[] = [];
  let lastStart: number | undefined;
  for (let from = 0; from < refs.length; from += reader.batchSize) {
    const batch = refs.slice(from, from + reader.batchSize);
    for (let attempt = 0; ; attempt++) {
      if (lastStart !== undefined) {
        const wait = lastStart + reader.minIntervalMs - Date.now();
        if (wait > 0) await sleep(wait);
      }
      lastStart = Date.now();
      const outcome = await reader.read(batch, options.signal ? { signal: options.signal } : undefined);
      if (outcome.kind === "ok") {
        out.push(...outcome.profiles);
        break;
      }
      if (outcome.kind === "fatal") {
        throw new DestinationError(outcome.reason, { code: "VERIFY_READ_REFUSED", action: outcome.action });
      }
      if (attempt >= maxRetries) {
        throw new DestinationError(`reading profiles back failed ${attempt + 1} times; last: ${outcome.reason}`, {
          code: "VERIFY_READ_FAILED",
          action: "Try again later, or verify fewer groups (--sample).",
        });
      }
      // Retry-After when given (a rate limit says when), else exponential backoff from 1 s up to 60 s.
      await sleep(outcome.retryAfterMs ?? Math.min(60_000, 1000 * 2 ** attempt));
    }
  }
  return out;
}
