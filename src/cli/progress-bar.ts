/**
 * Progress of a long run (a backfill): a bar with rate and ETA redrawn in place on a terminal, periodic log lines
 * otherwise (CI, containers, files).
 */
import type { Logger } from "pino";
import type { RunProgressReport } from "../engine/run-sync.js";

export interface ProgressOptions {
  readonly label: string;
  /** Where the bar is drawn; a terminal gets the bar, anything else log lines. */
  readonly stream: NodeJS.WriteStream;
  readonly log: Logger;
  /** Log lines this far apart when not on a terminal; default 10 s. */
  readonly logEveryMs?: number;
}

const n = (value: number) => Math.round(value).toLocaleString("en-US");

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** The numbers a bar or a log line shows. Pure. */
export function describeProgress(progress: RunProgressReport) {
  const seconds = progress.elapsedMs / 1000;
  const rate = seconds > 0 ? progress.rowsRead / seconds : 0;
  const total = progress.total;
  const fraction = total ? Math.min(1, progress.rowsRead / total) : undefined;
  const eta = total !== undefined && rate > 0 ? Math.max(0, total - progress.rowsRead) / rate : undefined;
  return { rate, fraction, eta };
}

export function progressBar(options: ProgressOptions): { report(progress: RunProgressReport): void; done(): void } {
  const tty = Boolean(options.stream.isTTY);
  const logEvery = options.logEveryMs ?? 10_000;
  let lastDraw = 0;
  let lastLog = Date.now();
  let drawn = false;
  return {
    report(progress) {
      const now = Date.now();
      const { rate, fraction, eta } = describeProgress(progress);
      if (tty) {
        if (now - lastDraw < 100) return;
        lastDraw = now;
        const width = 30;
        const filled = fraction === undefined ? 0 : Math.round(fraction * width);
        const bar =
          fraction === undefined
            ? ""
            : `[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${Math.floor(fraction * 100)}% `;
        const of = progress.total !== undefined ? `/${n(progress.total)}` : "";
        const line = `${options.label} ${bar}${n(progress.rowsRead)}${of} rows · ${n(rate)}/s · sent ${n(progress.groupsSent)}${eta !== undefined ? ` · ETA ${clock(eta)}` : ""}`;
        options.stream.write(`\r\x1b[2K${line}`);
        drawn = true;
        return;
      }
      if (now - lastLog < logEvery) return;
      lastLog = now;
      const percent = fraction === undefined ? "" : ` (${Math.floor(fraction * 100)} %)`;
      const of = progress.total !== undefined ? ` of ${n(progress.total)}` : "";
      options.log.info(
        {
          rows_read: progress.rowsRead,
          total: progress.total ?? null,
          rows_per_second: Math.round(rate),
          eta_seconds: eta === undefined ? null : Math.round(eta),
        },
        `${options.label}: ${n(progress.rowsRead)}${of} rows${percent}, ${n(rate)} rows/s, sent ${n(progress.groupsSent)}${eta !== undefined ? `, ${clock(eta)} left` : ""}`,
      );
    },
    done() {
      if (drawn) options.stream.write("\n");
    },
  };
}
