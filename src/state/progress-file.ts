/**
 * How far a run got, for the runs that do not finish.
 *
 * - progress.json is written every few seconds while a run goes: the run's new snapshot is written in key order as
 *   groups are settled, so its temp file is a sorted, checksummed prefix of the final state. Once that prefix is
 *   durable, progress.json names it and the last key in it. A run killed with SIGKILL leaves both behind; the next
 *   run folds the prefix into the state (recover.ts), so acknowledged work is never re-sent.
 * - backfill.json is where an unfinished backfill stopped: every group up to `through` (in key order) was sent and
 *   acknowledged, or refused. `groupsync backfill` continues after it.
 */
import { rm } from "node:fs/promises";
import { z } from "zod";
import { propertyStateSchema } from "./checkpoint.js";
import type { GroupKey } from "./key-order.js";
import { readJson, writeJsonAtomic } from "./state-dir.js";

const keySchema = z.strictObject({ companyId: z.string(), groupId: z.string() });

const backfillScopeSchema = z.strictObject({
  /** The `--where` condition, if the backfill covers a subset. */
  where: z.string().optional(),
  started_at: z.string(),
});
export type BackfillScope = z.infer<typeof backfillScopeSchema>;

export const progressSchema = z.strictObject({
  format: z.literal("groupsync-progress"),
  version: z.literal(1),
  run: z.string(),
  /** The run's snapshot temp file: entries up to `through` are durable. */
  file: z.string().regex(/^snapshot-[A-Za-z0-9_-]+\.bin\.tmp$/),
  /** The snapshot the run diffed against (the checkpoint's); the prefix is only valid on top of it. */
  previous: z.string().nullable(),
  through: keySchema,
  /** The run's property layout, with definitions: the prefix's hashes are in it. */
  properties: z.array(propertyStateSchema),
  backfill: backfillScopeSchema.extend({ through: keySchema.optional() }).optional(),
  updated_at: z.string(),
});
export type Progress = z.infer<typeof progressSchema>;

export const backfillStateSchema = z.strictObject({
  format: z.literal("groupsync-backfill"),
  version: z.literal(1),
  ...backfillScopeSchema.shape,
  /** Every group up to this key was sent and acknowledged (or refused); absent when none was yet. */
  through: keySchema.optional(),
  updated_at: z.string(),
});
export type BackfillState = z.infer<typeof backfillStateSchema>;

/** Reads a state file that only groupsync writes; a file that does not parse is ignored (it is only an optimisation). */
async function readOptional<T>(path: string, schema: z.ZodType<T>): Promise<T | undefined> {
  const raw = await readJson(path).catch(() => undefined);
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

export const readProgress = (path: string) => readOptional(path, progressSchema);
export const readBackfillState = (path: string) => readOptional(path, backfillStateSchema);

export async function writeProgress(path: string, progress: Omit<Progress, "format" | "version" | "updated_at">) {
  await writeJsonAtomic(path, {
    format: "groupsync-progress",
    version: 1,
    ...progress,
    updated_at: new Date().toISOString(),
  } satisfies Progress);
}

export async function writeBackfillState(path: string, scope: BackfillScope, through: GroupKey | undefined) {
  await writeJsonAtomic(path, {
    format: "groupsync-backfill",
    version: 1,
    ...scope,
    ...(through ? { through: { companyId: through.companyId, groupId: through.groupId } } : {}),
    updated_at: new Date().toISOString(),
  } satisfies BackfillState);
}

export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}
