/**
 * The `groupsync` command line. Exit codes: 0 ok, 1 a sync failed, 2 invalid config or usage, 3 finished with
 * rejected rows.
 */
import { rm } from "node:fs/promises";
import { Command, CommanderError, Option } from "commander";
import { type LoadedConfig, loadConfig } from "../config/load.js";
import { connectors } from "../connectors.js";
import { readRunHistory } from "../engine/run-history.js";
import { runSync } from "../engine/run-sync.js";
import type { RunSummary } from "../engine/summary.js";
import { ConfigError, GroupsyncError } from "../errors.js";
import { createLogger } from "../log.js";
import { redact } from "../secret.js";
import { acquireLock } from "../state/lock.js";
import { syncStatePaths } from "../state/state-dir.js";
import { formatStatus, formatSummary } from "./format.js";

export const EXIT = { ok: 0, failed: 1, invalid: 2, rejected: 3 } as const;

interface GlobalOptions {
  config: string;
  json?: boolean;
  logLevel?: string;
}

function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

function exitCodeFor(summaries: readonly RunSummary[]): number {
  if (summaries.some((summary) => summary.status === "failed")) return EXIT.failed;
  if (summaries.some((summary) => summary.status === "rejected")) return EXIT.rejected;
  return EXIT.ok;
}

function pickSyncs(loaded: LoadedConfig, name: string | undefined, all: boolean | undefined) {
  if (all) return loaded.syncs;
  if (!name) throw new UsageError("name a sync, or use --all");
  const sync = loaded.syncs.find((candidate) => candidate.name === name);
  if (!sync) {
    throw new UsageError(
      `no sync named ${JSON.stringify(name)} in ${loaded.file}; syncs: ${loaded.syncs.map((s) => s.name).join(", ")}`,
    );
  }
  return [sync];
}

class UsageError extends GroupsyncError {
  constructor(message: string) {
    super(message, { code: "USAGE", action: "Run `groupsync --help` for usage." });
  }
}

export function buildProgram(): Command {
  const program = new Command("groupsync")
    .description("Keeps group profiles in Mixpanel in step with warehouse tables, sending only what changed.")
    .option("-c, --config <path>", "path of sync.config.yaml", "sync.config.yaml")
    .option("--json", "machine-readable output on stdout")
    .addOption(new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error", "silent"]))
    .showHelpAfterError()
    .exitOverride();

  const globals = (command: Command): GlobalOptions => command.optsWithGlobals() as GlobalOptions;
  const logger = (options: GlobalOptions) => createLogger(options.logLevel ? { level: options.logLevel } : {});

  program
    .command("validate")
    .description("check the config and every mapping file, offline")
    .action(async (_options, command: Command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config);
      if (options.json) print(JSON.stringify({ valid: true, syncs: loaded.syncs.map((sync) => sync.name) }));
      else
        print(`${options.config}: valid (${loaded.syncs.length} syncs: ${loaded.syncs.map((s) => s.name).join(", ")})`);
    });

  program
    .command("plan")
    .description("connect and diff; print what a run would send, without sending anything or changing state")
    .argument("<sync>", "the sync to plan")
    .option("--samples <n>", "sample payloads to show", (value) => Number.parseInt(value, 10), 5)
    .option("--force", "plan as if --force were given to run")
    .action(async (name: string, commandOptions: { samples: number; force?: boolean }, command: Command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config);
      const [sync] = pickSyncs(loaded, name, false);
      const summary = await runSync(sync!, {
        stateDir: loaded.stateDir,
        connectors,
        logger: logger(options),
        plan: true,
        samples: commandOptions.samples,
        ...(commandOptions.force ? { force: true } : {}),
      });
      print(options.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
      process.exitCode = summary.status === "failed" ? EXIT.failed : EXIT.ok;
    });

  program
    .command("run")
    .description("run one sync (or --all) now")
    .argument("[sync]", "the sync to run")
    .option("--all", "run every sync in the config, one after another")
    .option("--force", "mirror mode: delete even when more than max_delete_share of the groups left the source")
    .action(async (name: string | undefined, commandOptions: { all?: boolean; force?: boolean }, command: Command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config);
      const log = logger(options);
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      const summaries: RunSummary[] = [];
      try {
        for (const sync of pickSyncs(loaded, name, commandOptions.all)) {
          if (controller.signal.aborted) break;
          const summary = await runSync(sync, {
            stateDir: loaded.stateDir,
            connectors,
            logger: log,
            signal: controller.signal,
            ...(commandOptions.force ? { force: true } : {}),
          });
          summaries.push(summary);
          if (!options.json) print(formatSummary(summary));
        }
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
      if (options.json) print(JSON.stringify(summaries.length === 1 ? summaries[0] : summaries, null, 2));
      process.exitCode = exitCodeFor(summaries);
    });

  program
    .command("status")
    .description("the last run of each sync, with its counts and errors")
    .action(async (_options, command: Command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config, { missingEnv: "collect" });
      const rows = await Promise.all(
        loaded.syncs.map(async (sync) => ({
          sync: sync.name,
          last: (await readRunHistory(syncStatePaths(loaded.stateDir, sync.name).runs))[0],
        })),
      );
      print(options.json ? JSON.stringify(rows, null, 2) : formatStatus(rows));
    });

  program
    .command("reset")
    .description("forget a sync's state: the next run re-sends every group")
    .argument("<sync>", "the sync to reset")
    .option("--yes", "confirm")
    .action(async (name: string, commandOptions: { yes?: boolean }, command: Command) => {
      const options = globals(command);
      const loaded = await loadConfig(options.config, { missingEnv: "collect" });
      const [sync] = pickSyncs(loaded, name, false);
      if (!commandOptions.yes) {
        throw new UsageError(
          `reset forgets everything sync ${name} knows about the destination; the next run re-sends every group. Add --yes to confirm.`,
        );
      }
      const paths = syncStatePaths(loaded.stateDir, sync!.name);
      const { mkdir } = await import("node:fs/promises");
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
