/** Pieces every command shares: exit codes, output, usage errors, picking syncs. */
import type { LoadedConfig, LoadedSync } from "../config/load.js";
import type { RunSummary } from "../engine/summary.js";
import { GroupsyncError } from "../errors.js";

export const EXIT = { ok: 0, failed: 1, invalid: 2, rejected: 3, drift: 4 } as const;

export interface GlobalOptions {
  config: string;
  json?: boolean;
  logLevel?: string;
}

export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export class UsageError extends GroupsyncError {
  constructor(message: string) {
    super(message, { code: "USAGE", action: "Run `groupsync --help` for usage." });
  }
}

export function exitCodeFor(summaries: readonly RunSummary[]): number {
  if (summaries.some((summary) => summary.status === "failed")) return EXIT.failed;
  if (summaries.some((summary) => summary.status === "rejected")) return EXIT.rejected;
  return EXIT.ok;
}

export function pickSyncs(loaded: LoadedConfig, name: string | undefined, all: boolean | undefined): LoadedSync[] {
  if (all) return [...loaded.syncs];
  if (!name) throw new UsageError("name a sync, or use --all");
  const sync = loaded.syncs.find((candidate) => candidate.name === name);
  if (!sync) {
    throw new UsageError(
      `no sync named ${JSON.stringify(name)} in ${loaded.file}; syncs: ${loaded.syncs.map((s) => s.name).join(", ")}`,
    );
  }
  return [sync];
}

/** Parses a whole number option (commander passes the previous value second). */
export function wholeNumber(min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min)
      throw new UsageError(`expected a whole number ≥ ${min}, got ${value}`);
    return parsed;
  };
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `30s`, `2m`, `500ms` (a bare number is seconds) into milliseconds. */
export function durationMs(value: string): number {
  const match = DURATION.exec(value.trim());
  if (!match) throw new UsageError(`expected a duration such as 30s, 2m or 500ms, got ${value}`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? "s"]!);
}
