/**
 * checkpoint.json: which snapshot file holds the sync's state, what it describes (its identity) and its
 * properties. Written last, atomically, after the snapshot it names is durable: whatever instant a crash hits,
 * the checkpoint names a complete snapshot.
 */
import { stat } from "node:fs/promises";
import { z } from "zod";
import { StateError } from "../errors.js";
import { readJson, writeJsonAtomic } from "./state-dir.js";

/** What the state is about. A state written for another Group Key or destination must not be diffed against. */
export const identitySchema = z.strictObject({
  sync: z.string(),
  group_key: z.string(),
  hierarchical: z.boolean(),
  /** Destination type plus a short one-way fingerprint of its host and project, never the token itself. */
  destination: z.string(),
});
export type StateIdentity = z.infer<typeof identitySchema>;

export const propertyStateSchema = z.strictObject({
  name: z.string(),
  /** What produced the hashes: column, declared type and source kind. A different definition means re-send. */
  definition: z.string(),
  /** A property that left the mapping but is still set on some groups (its $unset is not acknowledged yet). */
  retired: z.boolean(),
  /** How many groups hold a value for it. */
  groups_set: z.number().int().nonnegative(),
});
export type PropertyState = z.infer<typeof propertyStateSchema>;

export const checkpointSchema = z.strictObject({
  format: z.literal("groupsync-checkpoint"),
  version: z.literal(1),
  identity: identitySchema,
  snapshot: z.strictObject({
    file: z.string().regex(/^snapshot-[A-Za-z0-9_-]+\.bin$/),
    groups: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
  }),
  properties: z.array(propertyStateSchema),
  updated_at: z.string(),
});
export type Checkpoint = z.infer<typeof checkpointSchema>;

export async function readCheckpoint(path: string): Promise<Checkpoint | undefined> {
  const raw = await readJson(path);
  if (raw === undefined) return undefined;
  const parsed = checkpointSchema.safeParse(raw);
  if (!parsed.success) {
    throw new StateError(`${path} is not a groupsync checkpoint (${parsed.error.issues[0]?.message ?? "invalid"})`, {
      code: "STATE_FOREIGN",
      action:
        "Point state_dir at a folder that only groupsync writes, or run `groupsync reset <sync> --yes` to start over (the next run re-sends every group).",
    });
  }
  return parsed.data;
}

/** Checks that a checkpoint belongs to this sync and that its snapshot file is whole. */
export async function verifyCheckpoint(
  checkpoint: Checkpoint,
  identity: StateIdentity,
  path: string,
  snapshotPath: string,
): Promise<void> {
  for (const key of Object.keys(identity) as (keyof StateIdentity)[]) {
    if (checkpoint.identity[key] !== identity[key]) {
      throw new StateError(
        `state in ${path} was written for ${key} ${JSON.stringify(checkpoint.identity[key])}, but the config now says ${JSON.stringify(identity[key])}`,
        {
          code: "STATE_IDENTITY_CHANGED",
          action:
            "The snapshot describes another destination or Group Key, so diffing against it would send wrong updates. Run `groupsync reset <sync> --yes` to start over (every group is re-sent), or restore the previous config.",
        },
      );
    }
  }
  let size: number;
  try {
    size = (await stat(snapshotPath)).size;
  } catch {
    throw new StateError(`snapshot ${snapshotPath} named by ${path} is missing`, {
      code: "STATE_CORRUPT",
      action: "Restore the state folder from a backup, or run `groupsync reset <sync> --yes` (every group is re-sent).",
    });
  }
  if (size !== checkpoint.snapshot.bytes) {
    throw new StateError(
      `snapshot ${snapshotPath} has ${size} bytes, the checkpoint recorded ${checkpoint.snapshot.bytes} (truncated or changed)`,
      {
        code: "STATE_CORRUPT",
        action:
          "Restore the state folder from a backup, or run `groupsync reset <sync> --yes` (every group is re-sent).",
      },
    );
  }
}

export async function writeCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  await writeJsonAtomic(path, checkpoint);
}
