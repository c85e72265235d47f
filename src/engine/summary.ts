/** The counts a run reports, in its log summary, in `status` and in the run history. */

export interface RunError {
  readonly code: string;
  readonly message: string;
  readonly action?: string;
}

export interface RunSummary {
  sync: string;
  mode: "run" | "plan";
  status: "ok" | "rejected" | "failed";
  started_at: string;
  finished_at: string;
  duration_ms: number;
  /** Rows the source returned. */
  rows_read: number;
  /** Groups whose properties all matched what the destination holds: nothing sent. */
  unchanged: number;
  /** New groups (in plan mode: that would be created). */
  groups_created: number;
  /** Existing groups that got at least one acknowledged $set or $unset. */
  groups_updated: number;
  /** Groups removed in mirror mode ($delete, or $unset of every property with on_delete: unset). */
  groups_deleted: number;
  properties_set: number;
  properties_unset: number;
  /** Rows refused by the mapping (bad key, duplicate, bad value) and operations refused by the destination. */
  rejected: number;
  /** Operations not sent or not acknowledged because the run stopped; they are retried next run. */
  unsent: number;
  /**
   * Operations the destination cannot apply (e.g. PostHog unsets without a personal API key): never sent, never
   * recorded as applied, so they are planned again every run. Absent in summaries written by older versions.
   */
  skipped: number;
  /** Why, once per operation kind: `unset: …`. */
  skipped_reasons?: string[];
  requests: number;
  retries: number;
  bytes_sent: number;
  /** Mirror mode: groups that left the source, and why their deletion was held back, if it was. */
  delete_candidates: number;
  deletes_skipped?: string;
  /** How the source was read: every row, or only the rows changed since the watermark (a mapping's `cursor`). */
  read?: "full" | "incremental";
  /** Incremental mappings: the watermark after the run, exactly as the database rendered it. */
  watermark?: string;
  /** A backfill: every group's properties were sent whatever the snapshot said; `resumed_after` the key it continued after. */
  backfill?: { where?: string; resumed_after?: string; finished: boolean };
  /** A few sample payloads (plan mode). */
  samples?: unknown[];
  error?: RunError;
}

export function emptySummary(sync: string, mode: "run" | "plan", startedAt: Date): RunSummary {
  return {
    sync,
    mode,
    status: "ok",
    started_at: startedAt.toISOString(),
    finished_at: startedAt.toISOString(),
    duration_ms: 0,
    rows_read: 0,
    unchanged: 0,
    groups_created: 0,
    groups_updated: 0,
    groups_deleted: 0,
    properties_set: 0,
    properties_unset: 0,
    rejected: 0,
    unsent: 0,
    skipped: 0,
    requests: 0,
    retries: 0,
    bytes_sent: 0,
    delete_candidates: 0,
  };
}
