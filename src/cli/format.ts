/** Human-readable output of the CLI. */
import type { RunSummary } from "../engine/summary.js";

const n = (value: number) => value.toLocaleString("en-US");

export function formatSummary(summary: RunSummary): string {
  const lines: string[] = [];
  const verb = summary.mode === "plan" ? "plan" : "run";
  const state = summary.status === "ok" ? "ok" : summary.status === "rejected" ? "finished with rejects" : "FAILED";
  lines.push(`${summary.sync}: ${verb} ${state} in ${(summary.duration_ms / 1000).toFixed(1)} s`);
  lines.push(`  rows read          ${n(summary.rows_read)}  (unchanged ${n(summary.unchanged)})`);
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

export function formatStatus(rows: readonly { sync: string; last: RunSummary | undefined }[]): string {
  return rows
    .map(({ sync, last }) => {
      if (!last) return `${sync}: never run`;
      const head = `${sync}: last run ${last.finished_at} ${last.status.toUpperCase()} (${(last.duration_ms / 1000).toFixed(1)} s)`;
      const counts = `  read ${n(last.rows_read)}, unchanged ${n(last.unchanged)}, created ${n(last.groups_created)}, updated ${n(last.groups_updated)}, deleted ${n(last.groups_deleted)}, set ${n(last.properties_set)}, unset ${n(last.properties_unset)}, rejected ${n(last.rejected)}`;
      return [head, counts, ...(last.error ? [`  error: ${last.error.message}`] : [])].join("\n");
    })
    .join("\n");
}
