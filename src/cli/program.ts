/**
 * The `groupsync` command line. Exit codes: 0 ok, 1 a sync failed, 2 invalid config or usage, 3 finished with
 * rejected rows, 4 `verify` found drift.
 */
import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { jsonSchema, type SchemaKind } from "../config/json-schema.js";
import { loadConfig } from "../config/load.js";
import { loadConnectors } from "../connectors.js";
import { readRunHistory } from "../engine/run-history.js";
import { type RunSyncOptions, runSync } from "../engine/run-sync.js";
import type { RunSummary } from "../engine/summary.js";
import { ConfigError, GroupsyncError } from "../errors.js";
import { createLogger } from "../log.js";
import { packageDir } from "../package-dir.js";
import { redact } from "../secret.js";
import { readCursorState } from "../state/cursor-file.js";
import { formatKey } from "../state/key-order.js";
import { acquireLock } from "../state/lock.js";
import { readBackfillState } from "../state/progress-file.js";
import { syncStatePaths } from "../state/state-dir.js";
import {
  durationMs,
  EXIT,
  exitCodeFor,
  type GlobalOptions,
  pickSyncs,
  print,
  UsageError,
  wholeNumber,
} from "./common.js";
import { formatStatus, formatSummary, type StatusRow } from "./format.js";
import { progressBar } from "./progress-bar.js";
import { runStart } from "./start-command.js";
import { runValidate, type ValidateFormat } from "./validate-command.js";
import { runVerifyCommand } from "./verify-command.js";

export { EXIT } from "./common.js";

/** How long a stopped `run` or `backfill` may take to finish its batches before it is stopped hard. */
const STOP_GRACE_MS = 30_000;

/**
 * Runs with a stop on SIGINT/SIGTERM: the first signal stops gracefully (no more rows read; the batches in flight
 * finish and the state is written), a second one, or 30 s, stops at once (acknowledged progress is still written).
 */
async function withSignals<T>(work: (options: Pick<RunSyncOptions, "signal" | "stop">) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const hard = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) return hard.abort();
    stop.abort();
    setTimeout(() => hard.abort(), STOP_GRACE_MS).unref();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await work({ signal: hard.signal, stop: stop.signal });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** groupsync's version, from its own package.json (the same from src/cli, dist/src/cli and dist/bundle). */
export function packageVersion(): string {
  const version = packageDir(dirname(fileURLToPath(import.meta.url)), "groupsync")?.manifest.version;
  return typeof version === "string" ? version : "unknown";
}

export function buildProgram(): Command {
  const program = new Command("groupsync")
    .description(
      "Keeps group profiles in Mixpanel, PostHog and Segment in step with warehouse tables, sending only what changed.",
    )
    .version(packageVersion(), "-V, --version", "print groupsync's version")
    .option("-c, --config <path>", "path of sync.config.yaml", "sync.config.yaml")
    .option("--json", "machine-readable output on stdout")
    .addOption(new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error", "silent"]))
    .showHelpAfterError()
    .exitOverride();

  const globals = (command: Command): GlobalOptions => command.optsWithGlobals() as GlobalOptions;
  const logger = (options: GlobalOptions) => createLogger(options.logLevel ? { level: options.logLevel } : {});

  program
    .command("validate")
    .description("check the config and every mapping file; offline unless --check-source")
    .option("--strict-env", "an environment variable that is not set is an error (default: reported as needed)")
    .option("--check-source", "connect: tables and columns exist, Group IDs are unique and non-null")
    .addOption(
      new Option("--format <format>", "output: human, json, or github (Actions annotations)").choices([
        "human",
        "json",
        "github",
      ]),
    )
    .action(async (commandOptions: { strictEnv?: boolean; checkSource?: boolean; format?: string }, command) => {
      const options = globals(command);
      process.exitCode = await runValidate({
        config: options.config,
        format: (commandOptions.format ?? (options.json ? "json" : "human")) as ValidateFormat,
        strictEnv: commandOptions.strictEnv === true,
        checkSource: commandOptions.checkSource === true,
        connectors: loadConnectors,
      });
    });

  program
    .command("schema")
    .description("print the JSON Schema of sync.config.yaml (or of mapping files), for editors")
    .addArgument(
      new Command().createArgument("[kind]", "config or mapping").choices(["config", "mapping"]).default("config"),
    )
    .action(async (kind: SchemaKind) => {
      print(JSON.stringify(jsonSchema(kind), null, 2));
    });

  program
    .command("plan")
    .description("connect and diff; print what a run would send, without sending anything or changing state")
    .argument("<sync>", "the sync to plan")
    .option("--samples <n>", "sample payloads to show", wholeNumber(0), 5)
    .option("--force", "plan as if --force were given to run")
    .option("--full", "incremental mappings: plan a full pass")
    .action(async (name: string, commandOptions: { samples: number; force?: boolean; full?: boolean }, command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config);
      const [sync] = pickSyncs(loaded, name, false);
      const summary = await runSync(sync!, {
        stateDir: loaded.stateDir,
        connectors: await loadConnectors([sync!]),
        logger: logger(options),
        plan: true,
        samples: commandOptions.samples,
        ...(commandOptions.force ? { force: true } : {}),
        ...(commandOptions.full ? { full: true } : {}),
      });
      print(options.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
      process.exitCode = summary.status === "failed" ? EXIT.failed : EXIT.ok;
    });

  program
    .command("verify")
    .description(
      "read a sample of groups back from the destination and report where it differs from what groupsync last sent (exit 4 on drift)",
    )
    .argument("<sync>", "the sync to verify")
    .option("--sample <n>", "groups to pick at random from the state", wholeNumber(1), 20)
    .option("--keys <ids>", "exactly these groups, comma-separated (company_id/group_id in hierarchical projects)")
    .action(async (name: string, commandOptions: { sample: number; keys?: string }, command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config);
      process.exitCode = await runVerifyCommand(loaded, name, {
        sample: commandOptions.sample,
        ...(commandOptions.keys !== undefined ? { keys: commandOptions.keys } : {}),
        json: options.json === true,
      });
    });

  program
    .command("run")
    .description("run one sync (or --all) now")
    .argument("[sync]", "the sync to run")
    .option("--all", "run every sync in the config, one after another")
    .option("--force", "mirror mode: delete even when more than max_delete_share of the groups left the source")
    .option("--full", "incremental mappings: read every row (a full pass, which also finds deleted groups)")
    .action(
      async (name: string | undefined, commandOptions: { all?: boolean; force?: boolean; full?: boolean }, command) => {
        const options = globals(command);
        const loaded = await loadConfig(options.config);
        const log = logger(options);
        const summaries: RunSummary[] = [];
        await withSignals(async (signals) => {
          for (const sync of pickSyncs(loaded, name, commandOptions.all)) {
            if (signals.stop?.aborted) break;
            const summary = await runSync(sync, {
              stateDir: loaded.stateDir,
              connectors: await loadConnectors([sync]),
              logger: log,
              ...signals,
              ...(commandOptions.force ? { force: true } : {}),
              ...(commandOptions.full ? { full: true } : {}),
            });
            summaries.push(summary);
            if (!options.json) print(formatSummary(summary));
          }
        });
        if (options.json) print(JSON.stringify(summaries.length === 1 ? summaries[0] : summaries, null, 2));
        process.exitCode = exitCodeFor(summaries);
      },
    );

  program
    .command("backfill")
    .description(
      "send every group's full current properties whatever the snapshot says (still unsets and mirror deletes); resumable",
    )
    .argument("<sync>", "the sync to backfill")
    .option("--where <condition>", "only rows meeting this SQL condition (a subset: nothing is deleted)")
    .option("--restart", "start over instead of continuing an unfinished backfill")
    .option("--force", "mirror mode: delete even when more than max_delete_share of the groups left the source")
    .option("--no-progress", "no progress bar or progress log lines")
    .action(
      async (
        name: string,
        commandOptions: { where?: string; restart?: boolean; force?: boolean; progress: boolean },
        command,
      ) => {
        const options = globals(command);
        const loaded = await loadConfig(options.config);
        const [sync] = pickSyncs(loaded, name, false);
        const log = logger(options);
        if (commandOptions.where !== undefined && commandOptions.where.trim() === "") {
          throw new UsageError("--where needs a condition, e.g. --where \"plan = 'enterprise'\"");
        }
        const bar = commandOptions.progress
          ? progressBar({
              label: `backfill ${sync!.name}`,
              stream: process.stderr,
              log: log.child({ sync: sync!.name }),
            })
          : undefined;
        const connectors = await loadConnectors([sync!]);
        const summary = await withSignals((signals) =>
          runSync(sync!, {
            stateDir: loaded.stateDir,
            connectors,
            logger: log,
            ...signals,
            backfill: {
              ...(commandOptions.where !== undefined ? { where: commandOptions.where } : {}),
              ...(commandOptions.restart ? { restart: true } : {}),
            },
            ...(commandOptions.force ? { force: true } : {}),
            ...(bar ? { onProgress: bar.report, countRows: true } : {}),
          }),
        );
        bar?.done();
        print(options.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
        process.exitCode = exitCodeFor([summary]);
      },
    );

  program
    .command("start")
    .description("run every sync on its schedule until SIGTERM/SIGINT")
    .option("--port <port>", "serve /healthz and /metrics (Prometheus) on this port", wholeNumber(0))
    .option("--host <host>", "address for --port", "0.0.0.0")
    .option("--concurrency <n>", "most syncs running at once", wholeNumber(1), 2)
    .option(
      "--alert-after <n>",
      "failed runs in a row after which each failure is logged as an ALERT",
      wholeNumber(1),
      3,
    )
    .addOption(
      new Option("--shutdown-timeout <duration>", "how long a stop waits for runs to finish their batches")
        .argParser(durationMs)
        .default(30_000, "30s"),
    )
    .action(
      async (
        commandOptions: {
          port?: number;
          host: string;
          concurrency: number;
          alertAfter: number;
          shutdownTimeout: number;
        },
        command,
      ) => {
        const options = globals(command);
        const loaded = await loadConfig(options.config);
        process.exitCode = await runStart({
          loaded,
          connectors: await loadConnectors(loaded.syncs),
          logger: logger(options),
          ...(commandOptions.port !== undefined ? { port: commandOptions.port } : {}),
          host: commandOptions.host,
          concurrency: commandOptions.concurrency,
          alertAfter: commandOptions.alertAfter,
          shutdownGraceMs: commandOptions.shutdownTimeout,
        });
      },
    );

  program
    .command("status")
    .description("the last run of each sync, with its counts and errors; --history shows more runs")
    .option("--history <n>", "also list the last n runs of each sync", wholeNumber(0), 0)
    .action(async (commandOptions: { history: number }, command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config, { missingEnv: "collect" });
      const rows = await Promise.all(
        loaded.syncs.map(async (sync): Promise<StatusRow> => {
          const paths = syncStatePaths(loaded.stateDir, sync.name);
          const runs = (await readRunHistory(paths.runs)).filter((run) => run.mode === "run");
          const cursor = sync.mapping.cursor !== undefined ? await readCursorState(paths.cursor) : undefined;
          const backfill = await readBackfillState(paths.backfill);
          return {
            sync: sync.name,
            last: runs[0],
            runs,
            ...(sync.sync.schedule ? { schedule: `${sync.sync.schedule} (${sync.sync.timezone})` } : {}),
            ...(cursor
              ? {
                  cursor: {
                    column: cursor.column,
                    full_at: cursor.full_at,
                    ...(cursor.watermark !== undefined ? { watermark: cursor.watermark } : {}),
                  },
                }
              : {}),
            ...(backfill
              ? {
                  backfill: {
                    ...(backfill.where !== undefined ? { where: backfill.where } : {}),
                    ...(backfill.through ? { through: formatKey(backfill.through) } : {}),
                  },
                }
              : {}),
          };
        }),
      );
      if (options.json) {
        print(
          JSON.stringify(
            rows.map(({ runs, ...row }) => ({ ...row, runs: runs?.slice(0, commandOptions.history) })),
            null,
            2,
          ),
        );
      } else {
        print(formatStatus(rows, { history: commandOptions.history }));
      }
    });

  program
    .command("reset")
    .description("forget a sync's state: the next run re-sends every group")
    .argument("<sync>", "the sync to reset")
    .option("--yes", "confirm")
    .action(async (name: string, commandOptions: { yes?: boolean }, command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config, { missingEnv: "collect" });
      const [sync] = pickSyncs(loaded, name, false);
      if (!commandOptions.yes) {
        throw new UsageError(
          `reset forgets everything sync ${name} knows about the destination; the next run re-sends every group. Add --yes to confirm.`,
        );
      }
      const paths = syncStatePaths(loaded.stateDir, sync!.name);
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      const lock = await acquireLock(paths.lock, sync!.name);
      try {
        await rm(paths.checkpoint, { force: true });
        for (const file of ["rejects.jsonl", "runs.json"]) await rm(`${paths.dir}/${file}`, { force: true });
      } finally {
        await lock.release();
      }
      await rm(paths.dir, { recursive: true, force: true });
      print(options.json ? JSON.stringify({ reset: sync!.name }) : `state of sync ${sync!.name} forgotten`);
    });

  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[]);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.invalid;
    }
    const json = argv.includes("--json");
    if (error instanceof GroupsyncError) {
      const message = redact(error.message);
      if (json) {
        const issues = error instanceof ConfigError ? error.issues : undefined;
        print(JSON.stringify({ error: { code: error.code, message, action: error.action, issues } }, null, 2));
      } else {
        process.stderr.write(`error: ${message}\n`);
        if (error.action) process.stderr.write(`  ${error.action}\n`);
      }
      return error instanceof ConfigError || error instanceof UsageError ? EXIT.invalid : EXIT.failed;
    }
    process.stderr.write(`error: ${redact(String((error as Error)?.stack ?? error))}\n`);
    return EXIT.failed;
  }
}
