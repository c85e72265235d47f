/**
 * cursor.json: the incremental watermark of a sync whose mapping has a `cursor`. Written after the checkpoint, so a
 * crash in between leaves the older watermark: the next run reads a little more than it needs, never less.
 */
import { z } from "zod";
import { readJson, writeJsonAtomic } from "./state-dir.js";

export const cursorStateSchema = z.strictObject({
  format: z.literal("groupsync-cursor"),
  version: z.literal(1),
  /** The cursor column the watermark is for. */
  column: z.string(),
  /** The greatest cursor value read, exactly as the database rendered it; absent when no row had one. */
  watermark: z.string().optional(),
  /** Fingerprint of the mapping's properties the last full pass sent: an incremental run needs the same. */
  layout: z.string(),
  /** When the last full pass started (ISO 8601). */
  full_at: z.string(),
  updated_at: z.string(),
});
export type CursorState = z.infer<typeof cursorStateSchema>;

/** The cursor state; undefined when there is none or it cannot be read (the next run is then a full pass). */
export async function readCursorState(path: string): Promise<CursorState | undefined> {
  const raw = await readJson(path).catch(() => undefined);
  const parsed = cursorStateSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

export async function writeCursorState(path: string, state: Omit<CursorState, "format" | "version" | "updated_at">) {
  await writeJsonAtomic(path, {
    format: "groupsync-cursor",
    version: 1,
    ...state,
    updated_at: new Date().toISOString(),
  } satisfies CursorState);
}
