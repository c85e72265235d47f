/** The last runs of a sync (runs.json in its state folder), newest first, for `groupsync status`. */
import { readJson, writeJsonAtomic } from "../state/state-dir.js";
import type { RunSummary } from "./summary.js";

export const HISTORY_LENGTH = 20;

export async function readRunHistory(path: string): Promise<RunSummary[]> {
  const runs = await readJson(path).catch(() => undefined);
  return Array.isArray(runs) ? (runs as RunSummary[]) : [];
}

export async function appendRunHistory(path: string, summary: RunSummary): Promise<void> {
  const { samples: _samples, ...kept } = summary;
  const runs = await readRunHistory(path);
  await writeJsonAtomic(path, [kept, ...runs].slice(0, HISTORY_LENGTH));
}
