/**
 * `groupsync start`: the long-running scheduler (scheduler/scheduler.ts), with `/healthz` and `/metrics` on
 * `--port`. SIGTERM or SIGINT: runs in flight stop gracefully (in-flight batches finish, state is written), after
 * `--shutdown-timeout` they are stopped hard (acknowledged progress is still written); a second signal stops them
 * hard at once. Exits 0 once every run has written its state.
 */
import type { Logger } from "pino";
import type { LoadedConfig } from "../config/load.js";
import type { Connectors } from "../engine/run-sync.js";
import { type HealthServer, startHealthServer } from "../scheduler/health-server.js";
import { Scheduler } from "../scheduler/scheduler.js";
import { EXIT, UsageError } from "./common.js";

export interface StartOptions {
  readonly loaded: LoadedConfig;
  readonly connectors: Connectors;
  readonly logger: Logger;
  readonly port?: number;
  readonly host: string;
  readonly concurrency: number;
  readonly alertAfter: number;
  readonly shutdownGraceMs: number;
}

export async function runStart(options: StartOptions): Promise<number> {
  const log = options.logger;
  const scheduler = new Scheduler({
    config: options.loaded,
    connectors: options.connectors,
    logger: log,
    concurrency: options.concurrency,
    alertAfter: options.alertAfter,
    shutdownGraceMs: options.shutdownGraceMs,
  });
  const scheduled = await scheduler.start();
  if (scheduled.length === 0) {
    await scheduler.shutdown({ hard: true });
    throw new UsageError(`no sync in ${options.loaded.file} has a schedule; add \`schedule: "*/30 * * * *"\` to one`);
  }
  let server: HealthServer | undefined;
  if (options.port !== undefined) {
    server = await startHealthServer(scheduler, options.port, options.host);
    log.info(
      { port: server.port, host: options.host },
      `serving /healthz and /metrics on ${options.host}:${server.port}`,
    );
  }
  log.info({ syncs: scheduled }, `groupsync started: ${scheduled.length} scheduled syncs`);

  const finished = await new Promise<boolean>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        log.info({ signal }, `${signal}: stopping; runs in flight finish their batches and write their state`);
        scheduler.shutdown().then(resolve, () => resolve(false));
      } else {
        log.warn({ signal }, `${signal} again: stopping the runs in flight now`);
        void scheduler.shutdown({ hard: true });
      }
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  await server?.close();
  if (!finished) {
    log.error("some runs did not stop in time; their next run recovers from the journal");
    return EXIT.failed;
  }
  log.info("stopped");
  return EXIT.ok;
}
