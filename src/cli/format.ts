/** Human-readable output of the CLI. */
import type { RunSummary } from "../engine/summary.js";

const n = (value: number) => value.toLocaleString("en-US");

export function formatSummary(summary: RunSummary): string {
  const lines: string[] = [];
  const verb = summary.mode === "plan" ? "plan" : "run";
  const state = summary.status === "ok" ? "ok" : summary.status === "rejected" ? "finished with rejects" : "FAILED";
  lines.push(`${summary.sync}: ${verb} ${state} in ${(summary.duration_ms / 1000).toFixed(1)} s`);
  lines.push(`  rows read          ${n(summary.rows_read)}  (unchanged ${n(summary.unchanged)})`);
  if (summary.backfill) {
    const scope = summary.backfill.where !== undefined ? ` of rows where ${summary.backfill.where}` : "";
    const resumed = summary.backfill.resumed_after ? `, resumed after ${summary.backfill.resumed_after}` : "";
    const rest = summary.backfill.finished ? "" : `; unfinished: \`groupsync backfill ${summary.sync}\` continues it`;
    lines.push(`  backfill${scope}${resumed}${rest}`);
  } else if (summary.read === "incremental") {
    lines.push(`  incremental read; watermark ${summary.watermark ?? "(none yet)"}`);
  } else if (summary.watermark !== undefined) {
    lines.push(`  full pass; watermark ${summary.watermark}`);
  }
  const would = summary.mode === "plan" ? "would be " : "";
  lines.push(
    `  groups ${would}created ${n(summary.groups_created)}, updated ${n(summary.groups_updated)}, deleted ${n(summary.groups_deleted)}`,
  );
  lines.push(`  properties ${would}set ${n(summary.properties_set)}, unset ${n(summary.properties_unset)}`);
  if (summary.mode === "run") {
    lines.push(`  requests ${n(summary.requests)} (retries ${n(summary.retries)}, ${n(summary.bytes_sent)} bytes)`);
  }
  if (summary.rejected > 0) lines.push(`  rejected ${n(summary.rejected)} (see rejects.jsonl in the state folder)`);
  if (summary.unsent > 0) lines.push(`  not sent ${n(summary.unsent)} (retried next run)`);
  if (summary.skipped > 0) {
    lines.push(
      `  skipped ${n(summary.skipped)} operations the destination cannot apply (planned again every run; see README):`,
    );
    for (const reason of summary.skipped_reasons ?? []) lines.push(`    ${reason}`);
  }
  if (summary.delete_candidates > 0) {
    lines.push(
      `  left the source ${n(summary.delete_candidates)}${summary.deletes_skipped ? `; deletes held back: ${summary.deletes_skipped}` : ""}`,
    );
  }
  if (summary.error) {
    lines.push(`  error: ${summary.error.message}`);
    if (summary.error.action) lines.push(`  ${summary.error.action}`);
  }
  for (const sample of summary.samples ?? []) lines.push(`  sample: ${JSON.stringify(sample)}`);
  return lines.join("\n");
}

/** One sync in `groupsync status`. */
export interface StatusRow {
  readonly sync: string;
  readonly last: RunSummary | undefined;
  /** The run history, newest first (runs.json). */
  readonly runs?: readonly RunSummary[];
  readonly schedule?: string;
  /** Incremental mappings: the watermark, and when the last full pass started. */
  readonly cursor?: { readonly column: string; readonly watermark?: string; readonly full_at: string };
  /** An unfinished backfill: where it continues. */
  readonly backfill?: { readonly where?: string; readonly through?: string };
}

const seconds = (run: RunSummary) => `${(run.duration_ms / 1000).toFixed(1)} s`;

/** One line per run: when, status, duration, what it read and sent, and why it failed. */
function historyLine(run: RunSummary): string {
  const sent = run.groups_created + run.groups_updated + run.groups_deleted;
  const kind = run.backfill ? "backfill" : (run.read ?? "full");
  const error = run.error ? `  ${run.error.message}` : "";
  return `    ${run.finished_at}  ${run.status.toUpperCase().padEnd(8)} ${seconds(run).padStart(8)}  ${kind.padEnd(11)} read ${n(run.rows_read)}, sent ${n(sent)}, rejected ${n(run.rejected)}${error}`;
}

export function formatStatus(rows: readonly StatusRow[], options: { readonly history?: number } = {}): string {
  return rows
    .map(({ sync, last, runs, schedule, cursor, backfill }) => {
      const extra: string[] = [];
      if (schedule) extra.push(`  schedule: ${schedule}`);
      if (cursor) {
        extra.push(
          `  incremental on ${cursor.column}: watermark ${cursor.watermark ?? "(none yet)"}, last full pass ${cursor.full_at}`,
        );
      }
      if (backfill) {
        const scope = backfill.where !== undefined ? ` (--where ${backfill.where})` : "";
        extra.push(`  backfill unfinished${scope}: continues after ${backfill.through ?? "the beginning"}`);
      }
      if (!last) return [`${sync}: never run`, ...extra].join("\n");
      const failures = (runs ?? []).findIndex((run) => run.status !== "failed");
      const streak = failures < 0 ? (runs?.length ?? 0) : failures;
      if (streak > 1) extra.push(`  failed ${streak} runs in a row`);
      const shown = (runs ?? []).slice(0, options.history ?? 0);
      if (shown.length > 0) extra.push(`  last ${shown.length} runs, newest first:`, ...shown.map(historyLine));
      const head = `${sync}: last run ${last.finished_at} ${last.status.toUpperCase()} (${seconds(last)})`;
      const counts = `  read ${n(last.rows_read)}, unchanged ${n(last.unchanged)}, created ${n(last.groups_created)}, updated ${n(last.groups_updated)}, deleted ${n(last.groups_deleted)}, set ${n(last.properties_set)}, unset ${n(last.properties_unset)}, rejected ${n(last.rejected)}${last.skipped ? `, skipped ${n(last.skipped)}` : ""}`;
      return [head, counts, ...(last.error ? [`  error: ${last.error.message}`] : []), ...extra].join("\n");
    })
    .join("\n");
}
