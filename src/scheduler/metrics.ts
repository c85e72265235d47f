/**
 * What `groupsync start` knows about each sync, and its Prometheus text exposition for `/metrics`
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format). A handful of gauges and
 * counters do not need a client library.
 */
import type { RunSummary } from "../engine/summary.js";

/** The live state of one scheduled sync. */
export interface SyncStats {
  readonly sync: string;
  readonly schedule: string;
  readonly timezone: string;
  running: boolean;
  /** The last finished run (from runs.json at start-up, then from each run). */
  last: RunSummary | undefined;
  /** Failed runs in a row, the last one included (0 after a success). */
  consecutiveFailures: number;
  /** Runs finished since start-up, by status. */
  readonly runs: Record<RunSummary["status"], number>;
  /** Ticks skipped because the previous run of the sync was still going. */
  skippedTicks: number;
}

export function newSyncStats(sync: string, schedule: string, timezone: string, history: readonly RunSummary[]) {
  const runs = history.filter((run) => run.mode === "run");
  const failures = runs.findIndex((run) => run.status !== "failed");
  const stats: SyncStats = {
    sync,
    schedule,
    timezone,
    running: false,
    last: runs[0],
    consecutiveFailures: failures < 0 ? runs.length : failures,
    runs: { ok: 0, rejected: 0, failed: 0 },
    skippedTicks: 0,
  };
  return stats;
}

/** A label value escaped as the text format wants it. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "gauge" | "counter";
  readonly samples: readonly { readonly labels: Record<string, string>; readonly value: number }[];
}

function render(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([key, value]) => `${key}="${label(value)}"`)
        .join(",");
      lines.push(`${family.name}${labels ? `{${labels}}` : ""} ${Number.isFinite(sample.value) ? sample.value : 0}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

const STATUSES: readonly RunSummary["status"][] = ["ok", "rejected", "failed"];

/** The `/metrics` body. */
export function renderMetrics(stats: readonly SyncStats[], up: boolean): string {
  const withLast = stats.filter((s) => s.last !== undefined);
  const perSync = (value: (s: SyncStats) => number, of: readonly SyncStats[] = stats) =>
    of.map((s) => ({ labels: { sync: s.sync }, value: value(s) }));
  const last = (value: (run: RunSummary) => number) => perSync((s) => value(s.last!), withLast);
  return render([
    {
      name: "groupsync_up",
      help: "1 while the scheduler runs, 0 while it shuts down.",
      type: "gauge",
      samples: [{ labels: {}, value: up ? 1 : 0 }],
    },
    {
      name: "groupsync_last_run_status",
      help: "Status of the last finished run of each sync: 1 for the status it ended with (ok, rejected: finished with rejected rows, failed).",
      type: "gauge",
      samples: withLast.flatMap((s) =>
        STATUSES.map((status) => ({ labels: { sync: s.sync, status }, value: s.last!.status === status ? 1 : 0 })),
      ),
    },
    {
      name: "groupsync_last_run_timestamp_seconds",
      help: "When the last run of each sync finished (Unix time).",
      type: "gauge",
      samples: last((run) => Date.parse(run.finished_at) / 1000),
    },
    {
      name: "groupsync_last_run_duration_seconds",
      help: "How long the last run of each sync took.",
      type: "gauge",
      samples: last((run) => run.duration_ms / 1000),
    },
    {
      name: "groupsync_last_run_rows_read",
      help: "Rows the last run of each sync read from the source.",
      type: "gauge",
      samples: last((run) => run.rows_read),
    },
    {
      name: "groupsync_last_run_rows_sent",
      help: "Groups the last run of each sync created, updated or deleted in the destination (acknowledged).",
      type: "gauge",
      samples: last((run) => run.groups_created + run.groups_updated + run.groups_deleted),
    },
    {
      name: "groupsync_last_run_rejected",
      help: "Rows and operations the last run of each sync rejected (see rejects.jsonl).",
      type: "gauge",
      samples: last((run) => run.rejected),
    },
    {
      name: "groupsync_consecutive_failures",
      help: "Failed runs in a row of each sync (0 after a successful run).",
      type: "gauge",
      samples: perSync((s) => s.consecutiveFailures),
    },
    {
      name: "groupsync_running",
      help: "1 while a run of the sync is going.",
      type: "gauge",
      samples: perSync((s) => (s.running ? 1 : 0)),
    },
    {
      name: "groupsync_runs_total",
      help: "Runs finished since the scheduler started, by status.",
      type: "counter",
      samples: stats.flatMap((s) =>
        STATUSES.map((status) => ({ labels: { sync: s.sync, status }, value: s.runs[status] })),
      ),
    },
    {
      name: "groupsync_skipped_ticks_total",
      help: "Scheduled ticks skipped because the previous run of the sync was still going.",
      type: "counter",
      samples: perSync((s) => s.skippedTicks),
    },
  ]);
}
