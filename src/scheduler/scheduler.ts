/**
 * `groupsync start`: runs every sync on its `schedule` (node-cron, in the sync's `timezone`). Never two runs of one
 * sync at once: a tick that finds the sync still running is skipped and logged. Different syncs run concurrently, up
 * to `concurrency`. A failed run is simply retried at the next tick; after `alertAfter` failures in a row, every
 * further failure is logged as an ALERT. `shutdown()` stops the ticks, lets runs in flight stop gracefully (no more
 * rows read; what was read is delivered and committed), and after `shutdownGraceMs` stops them hard (requests in
 * flight abandoned; acknowledged progress still committed).
 */
import cron, { type ScheduledTask, type TaskOptions } from "node-cron";
import type { Logger } from "pino";
import type { LoadedConfig, LoadedSync } from "../config/load.js";
import { readRunHistory } from "../engine/run-history.js";
import { type Connectors, type RunSyncOptions, runSync } from "../engine/run-sync.js";
import type { RunSummary } from "../engine/summary.js";
import { syncStatePaths } from "../state/state-dir.js";
import { newSyncStats, renderMetrics, type SyncStats } from "./metrics.js";

export interface SchedulerOptions {
  readonly config: LoadedConfig;
  readonly connectors: Connectors;
  readonly logger: Logger;
  /** Most syncs running at once; default 2. */
  readonly concurrency?: number;
  /** Failed runs in a row after which each failure is logged as an ALERT; default 3. */
  readonly alertAfter?: number;
  /** How long a shutdown lets runs finish gracefully before stopping them hard; default 30 s. */
  readonly shutdownGraceMs?: number;
  /** Extra options for every run (tests: short delivery backoffs). */
  readonly runOptions?: Partial<RunSyncOptions>;
  /** Creates a cron task (tests may pass a fake clock); default node-cron's `schedule`. */
  readonly schedule?: (expression: string, tick: () => void, options: TaskOptions) => Pick<ScheduledTask, "stop">;
}

/** Codes of runs that did not fail on their own: a shutdown stopped them, or another process held the lock. */
const NOT_A_FAILURE = new Set(["STOPPED", "ABORTED", "DELIVERY_CANCELLED", "SYNC_LOCKED"]);

interface Entry {
  readonly sync: LoadedSync;
  readonly stats: SyncStats;
  /** The run in flight (or waiting for a concurrency slot). */
  current?: Promise<void>;
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  readonly #tasks: Pick<ScheduledTask, "stop">[] = [];
  readonly #graceful = new AbortController();
  readonly #hard = new AbortController();
  #active = 0;
  #waiting: (() => void)[] = [];
  #stopping = false;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: "scheduler" });
  }

  /** Loads each scheduled sync's run history and starts its cron task. Returns the names of the syncs scheduled. */
  async start(): Promise<string[]> {
    const { config } = this.#o;
    const schedule = this.#o.schedule ?? ((expression, tick, options) => cron.schedule(expression, tick, options));
    for (const sync of config.syncs) {
      const expression = sync.sync.schedule;
      if (!expression) {
        this.#log.info({ sync: sync.name }, `sync ${sync.name} has no schedule: \`groupsync start\` does not run it`);
        continue;
      }
      const history = await readRunHistory(syncStatePaths(config.stateDir, sync.name).runs);
      const entry: Entry = { sync, stats: newSyncStats(sync.name, expression, sync.sync.timezone, history) };
      this.#entries.set(sync.name, entry);
      this.#tasks.push(
        schedule(expression, () => this.tick(sync.name), {
          name: `groupsync:${sync.name}`,
          timezone: sync.sync.timezone,
          logger: cronLogger(this.#log.child({ sync: sync.name })),
        }),
      );
      this.#log.info(
        { sync: sync.name, schedule: expression, timezone: sync.sync.timezone },
        `scheduled ${sync.name}: "${expression}" (${sync.sync.timezone})`,
      );
    }
    return [...this.#entries.keys()];
  }

  /** One tick of a sync's schedule: starts a run unless one is going. */
  tick(name: string): void {
    const entry = this.#entries.get(name);
    if (!entry || this.#stopping) return;
    if (entry.current) {
      entry.stats.skippedTicks++;
      this.#log.warn(
        { sync: name, skipped_ticks: entry.stats.skippedTicks },
        `sync ${name} is still running: this tick is skipped`,
      );
      return;
    }
    entry.current = this.#run(entry).finally(() => {
      entry.current = undefined;
    });
  }

  async #run(entry: Entry): Promise<void> {
    await this.#slot();
    try {
      if (this.#stopping) return;
      entry.stats.running = true;
      const summary = await runSync(entry.sync, {
        stateDir: this.#o.config.stateDir,
        connectors: this.#o.connectors,
        logger: this.#o.logger,
        signal: this.#hard.signal,
        stop: this.#graceful.signal,
        ...this.#o.runOptions,
      });
      this.#record(entry, summary);
    } catch (error) {
      // runSync reports failures in its summary; this is a bug, and the next tick tries again.
      this.#log.error({ sync: entry.sync.name, err: error }, `sync ${entry.sync.name}: unexpected error`);
    } finally {
      entry.stats.running = false;
      this.#release();
    }
  }

  #record(entry: Entry, summary: RunSummary): void {
    const { stats } = entry;
    const name = entry.sync.name;
    const code = summary.error?.code;
    if (summary.status === "failed" && code && NOT_A_FAILURE.has(code)) {
      this.#log.info({ sync: name, code }, `sync ${name}: run not completed (${summary.error?.message})`);
      return;
    }
    stats.last = summary;
    stats.runs[summary.status]++;
    if (summary.status !== "failed") {
      if (stats.consecutiveFailures >= (this.#o.alertAfter ?? 3)) {
        this.#log.warn({ sync: name }, `sync ${name} recovered after ${stats.consecutiveFailures} failed runs`);
      }
      stats.consecutiveFailures = 0;
      return;
    }
    stats.consecutiveFailures++;
    const alertAfter = this.#o.alertAfter ?? 3;
    if (stats.consecutiveFailures >= alertAfter) {
      this.#log.error(
        { sync: name, alert: true, consecutive_failures: stats.consecutiveFailures, err: summary.error },
        `ALERT: sync ${name} has failed ${stats.consecutiveFailures} runs in a row (last: ${summary.error?.message ?? "unknown error"}); it is retried at every tick`,
      );
    } else {
      this.#log.warn({ sync: name }, `sync ${name} failed; it is retried at the next tick`);
    }
  }

  async #slot(): Promise<void> {
    while (this.#active >= Math.max(1, this.#o.concurrency ?? 2) && !this.#stopping) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#active++;
  }

  #release(): void {
    this.#active--;
    this.#waiting.shift()?.();
  }

  /** The scheduled syncs' live state (for `/metrics`, `/healthz` and tests). */
  get stats(): SyncStats[] {
    return [...this.#entries.values()].map((entry) => entry.stats);
  }

  /** False once a shutdown began. */
  get healthy(): boolean {
    return !this.#stopping;
  }

  metrics(): string {
    return renderMetrics(this.stats, !this.#stopping);
  }

  health(): unknown {
    return {
      status: this.#stopping ? "stopping" : "ok",
      syncs: this.stats.map((s) => ({
        sync: s.sync,
        running: s.running,
        last_status: s.last?.status ?? null,
        last_finished_at: s.last?.finished_at ?? null,
        consecutive_failures: s.consecutiveFailures,
      })),
    };
  }

  /**
   * Stops the ticks and the runs in flight: gracefully, then, after the grace period (or at once with `hard`),
   * hard. Resolves once every run has committed its state, or after `graceMs` plus `hardWaitMs` with false.
   */
  async shutdown(options: { readonly hard?: boolean; readonly hardWaitMs?: number } = {}): Promise<boolean> {
    if (!this.#stopping) {
      this.#stopping = true;
      for (const task of this.#tasks) await task.stop();
      for (const wake of this.#waiting.splice(0)) wake();
      this.#graceful.abort();
    }
    const running = () => Promise.all([...this.#entries.values()].map((entry) => entry.current));
    const within = (ms: number) =>
      Promise.race([running().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    if (!options.hard && (await within(this.#o.shutdownGraceMs ?? 30_000))) return true;
    if (!this.#hard.signal.aborted) {
      this.#log.warn("stopping the runs in flight now; what was acknowledged is kept");
      this.#hard.abort();
    }
    return within(options.hardWaitMs ?? 10_000);
  }
}

/** node-cron's own messages (missed ticks, errors) go to our log, not to the console. */
function cronLogger(log: Logger): NonNullable<TaskOptions["logger"]> {
  return {
    info: (message) => log.debug(message),
    warn: (message) => log.warn(`cron: ${message}`),
    error: (message) => log.error(`cron: ${String(message)}`),
    debug: (message) => log.debug(String(message)),
  };
}
