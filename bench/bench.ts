/**
 * `npm run bench`: measures groupsync on a generated group table, in one run on one machine (issue 7):
 *   (a) baseline: psql COPYing the mapped columns in key order to /dev/null
 *   (b) first sync, every row new          (c) re-sync, nothing changed
 *   (d) re-sync after 1 % of rows changed (half to new values, half to nulls) and 0.1 % deleted, mirror mode
 *   (e) backfill: every group's properties again, several requests in flight
 *   (e') the sending half of (e) alone: as many operations through the real delivery layer and Mixpanel
 *        destination (bench/delivery-child.ts), to show what groupsync can send when the source is not the limit
 *   (f) backfill --where of the second half: the first half's snapshot entries are carried in one stretch (its RSS
 *       shows that they are written out as they go, not held)
 * Each phase runs the real CLI (`node bin/groupsync.js`, as `npx groupsync` in a checkout) as a child process
 * against a receiver in a third process. Writes JSON (`--out`) and prints a markdown table. `--state N` measures a
 * snapshot of N groups instead (add `--rows` to measure both). Counts are checked (exit 1 when one is off);
 * timings never are. (c) and (d), a few seconds each, run `--repeat` times (default 3), each time right after a
 * baseline run of its own: on a shared machine whose speed drifts by a third within minutes, the ratio of two
 * adjacent runs is what holds still. The table shows the repetition with the median ratio; the JSON has all.
 *
 *   npm run bench -- [--rows 1000000] [--repeat 3] [--receiver lean|contract] [--batch-size 200] [--concurrency 4]
 *                    [--state 10000000] [--pg-url postgres://…] [--out bench-results/bench.json]
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process";
import {
  closeSync,
  cpSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { cpus, release, tmpdir, totalmem, type } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { createDatabase, type RunningPostgres, startEmbeddedPostgres } from "../src/demo/embedded-postgres.js";
import { type Measured, measure } from "./measure.js";
import type { FromReceiver, ReceiverKind, ReceiverStats, ToReceiver } from "./receiver.js";
import {
  type BenchResult,
  type MachineInfo,
  markdown,
  type PhaseResult,
  STATE_PROPERTIES,
  type StateResult,
} from "./report.js";
import { applyChanges, COLUMNS, createTable, SYNC, TABLE, writeConfig } from "./table.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin", "groupsync.js");
const PSQL = process.env.PSQL ?? "/usr/bin/psql";

interface Options {
  readonly rows: number | undefined;
  readonly state: number | undefined;
  readonly receiver: ReceiverKind;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly pgUrl: string | undefined;
  readonly out: string;
  /** Paired runs of (c) and (d). */
  readonly repeat: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: "string" },
      state: { type: "string" },
      receiver: { type: "string", default: "lean" },
      "batch-size": { type: "string", default: "200" },
      concurrency: { type: "string", default: "4" },
      "pg-url": { type: "string" },
      out: { type: "string" },
      repeat: { type: "string", default: "3" },
    },
  });
  const count = (name: string, text: string | undefined, min: number): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number(text.replaceAll("_", ""));
    if (!Number.isInteger(value) || value < min) fail(`--${name} must be a whole number ≥ ${min}; got "${text}"`);
    return value;
  };
  if (values.receiver !== "lean" && values.receiver !== "contract") {
    fail(`--receiver must be lean or contract; got "${values.receiver}"`);
  }
  const state = count("state", values.state, 1);
  const rows = count("rows", values.rows, 1000) ?? (state === undefined ? 1_000_000 : undefined);
  return {
    rows,
    state,
    receiver: values.receiver,
    batchSize: count("batch-size", values["batch-size"], 1)!,
    concurrency: count("concurrency", values.concurrency, 1)!,
    pgUrl: values["pg-url"],
    repeat: count("repeat", values.repeat, 1)!,
    out: resolve(values.out ?? join(root, "bench-results", `bench-${rows ?? `state-${state}`}.json`)),
  };
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** A receiver in its own process, asked for its counts over IPC. */
interface ReceiverProcess {
  readonly url: string;
  stats(): Promise<ReceiverStats>;
  reset(): Promise<void>;
  stop(): void;
}

async function startReceiver(kind: ReceiverKind): Promise<ReceiverProcess> {
  const child: ChildProcess = fork(join(root, "bench", "receiver.ts"), [kind], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = <T extends FromReceiver["type"]>(wanted: T) =>
    new Promise<Extract<FromReceiver, { type: T }>>((resolveMessage, reject) => {
      const onMessage = (message: FromReceiver) => {
        if (message.type !== wanted) return;
        child.off("message", onMessage);
        child.off("exit", onExit);
        resolveMessage(message as Extract<FromReceiver, { type: T }>);
      };
      const onExit = (code: number | null) => reject(new Error(`the receiver process exited (${code})`));
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
  const send = (message: ToReceiver) => child.send(message);
  const { url } = await next("ready");
  return {
    url,
    async stats() {
      const answer = next("stats");
      send({ type: "stats" });
      return (await answer).stats;
    },
    async reset() {
      const answer = next("reset");
      send({ type: "reset" });
      await answer;
    },
    stop: () => child.kill(),
  };
}

/** A database of its own: on the server at `--pg-url`, or on an embedded PostgreSQL started for the bench. */
async function openDatabase(pgUrl: string | undefined): Promise<{ url: string; close(): Promise<void> }> {
  let server: RunningPostgres | undefined;
  if (pgUrl === undefined) {
    log("starting an embedded PostgreSQL…");
    server = await startEmbeddedPostgres();
  }
  const adminUrl = pgUrl ?? server!.url;
  const { name, url } = await createDatabase(adminUrl, "bench");
  return {
    url,
    async close() {
      const cleanup = new pg.Client({ connectionString: adminUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
      await server?.stop();
    },
  };
}

async function machineInfo(databaseUrl: string | undefined): Promise<MachineInfo> {
  let postgres = "no PostgreSQL";
  if (databaseUrl) {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const { rows } = await client.query<{ v: string }>(
      "SELECT 'PostgreSQL ' || current_setting('server_version') AS v",
    );
    postgres = rows[0]!.v;
    await client.end();
  }
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown CPU",
    cores: cpus().length,
    memoryGb: totalmem() / 1024 ** 3,
    os: `${type()} ${release()}`,
    node: process.versions.node,
    postgres,
  };
}

/** A phase's timings (from `measure`) and what the receiver counted. */
function phaseResult(id: string, label: string, run: Measured, stats: ReceiverStats, baselineMs: number): PhaseResult {
  return {
    id,
    label,
    wallMs: run.wallMs,
    ratio: run.wallMs / baselineMs,
    peakRssMb: run.peakRssMb,
    cpuSec: run.cpuSec,
    requests: stats.requests,
    bytes: stats.bytes,
    updates: stats.updates,
    sets: stats.sets,
    unsets: stats.unsets,
    deletes: stats.deletes,
    maxInFlight: stats.maxInFlight,
  };
}

/** Updates per second: over the receiver's active window, and over `ms` (the command, or the sending loop). */
function rates(stats: ReceiverStats, ms: number) {
  return {
    receiverUpdatesPerSec: stats.activeMs > 0 ? (stats.updates * 1000) / stats.activeMs : 0,
    endToEndUpdatesPerSec: (stats.updates * 1000) / ms,
  };
}

/** Phases (a)–(e) on a fresh table of `rows` rows. */
async function benchTable(options: Options & { rows: number }, databaseUrl: string, problems: string[]) {
  if (!existsSync(PSQL)) {
    fail(
      `the baseline needs PostgreSQL's psql client at ${PSQL}; install it (apt-get install postgresql-client) or set PSQL=/path/to/psql`,
    );
  }
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const dir = mkdtempSync(join(tmpdir(), "groupsync-bench-"));
  const receiver = await startReceiver(options.receiver);
  try {
    log(`creating ${TABLE} with ${options.rows} rows…`);
    await createTable(client, options.rows);
    const { configFile, token } = writeConfig(dir, options);
    const env = {
      ...process.env,
      BENCH_DATABASE_URL: databaseUrl,
      BENCH_MP_TOKEN: token,
      BENCH_MP_HOST: receiver.url,
      GROUPSYNC_LOG_LEVEL: "warn",
      GROUPSYNC_DIST: "1",
    };

    const copy = `COPY (SELECT ${COLUMNS.join(", ")} FROM ${TABLE} ORDER BY group_id) TO STDOUT`;
    const baselineRun = async () => {
      const run = await measure(PSQL, ["-X", "-q", databaseUrl, "-c", copy], { discardStdout: true });
      if (run.code !== 0) throw new Error(`psql failed (${run.code}): ${run.stderr}`);
      return run;
    };
    await baselineRun(); // warms the cache, as the syncs that follow find it
    const baseline = await baselineRun();
    log(`(a) baseline ${(baseline.wallMs / 1000).toFixed(2)} s`);

    const phases: PhaseResult[] = [
      {
        id: "a",
        label: "baseline: psql COPY to /dev/null",
        wallMs: baseline.wallMs,
        ratio: 1,
        peakRssMb: baseline.peakRssMb,
        cpuSec: baseline.cpuSec,
        requests: 0,
        bytes: 0,
        updates: 0,
        sets: 0,
        unsets: 0,
        deletes: 0,
        maxInFlight: 0,
      },
    ];
    /** One run of a phase against `baselineMs`. */
    const runPhase = async (id: string, label: string, args: string[], baselineMs: number) => {
      await receiver.reset();
      const run = await measure(process.execPath, [bin, ...args, SYNC, "--config", configFile, "--json"], {
        env,
        cwd: dir,
      });
      if (run.code !== 0)
        throw new Error(`groupsync ${args.join(" ")} exited ${run.code}:\n${run.stderr}${run.stdout}`);
      const stats = await receiver.stats();
      const summary = JSON.parse(run.stdout) as Record<string, unknown>;
      const { samples: _samples, ...counts } = summary;
      const result: PhaseResult = {
        ...phaseResult(id, label, run, stats, baselineMs),
        ...(id === "e" ? rates(stats, run.wallMs) : {}),
        summary: counts,
      };
      if (stats.refused > 0) problems.push(`(${id}) the receiver refused ${stats.refused} requests`);
      log(
        `(${id}) ${label}: ${(run.wallMs / 1000).toFixed(2)} s (× ${result.ratio.toFixed(2)}), ${stats.requests} requests, ${stats.updates} updates`,
      );
      return result;
    };
    const phase = async (id: string, label: string, args: string[]) => {
      const result = await runPhase(id, label, args, baseline.wallMs);
      phases.push(result);
      return result;
    };
    /**
     * `--repeat` runs of a short phase, each right after a baseline run of its own; `before` restores what the phase
     * starts from. Keeps the run with the median ratio, and every pair under `repetitions`.
     */
    const pairedPhase = async (
      id: string,
      label: string,
      args: string[],
      before: () => void,
      check: (run: PhaseResult) => void,
    ) => {
      const runs: { run: PhaseResult; baselineMs: number }[] = [];
      for (let i = 0; i < options.repeat; i++) {
        before();
        const { wallMs: baselineMs } = await baselineRun();
        const run = await runPhase(id, label, args, baselineMs);
        check(run);
        runs.push({ run, baselineMs });
      }
      const median = [...runs].sort((x, y) => x.run.ratio - y.run.ratio)[Math.floor((runs.length - 1) / 2)]!;
      const result: PhaseResult = {
        ...median.run,
        repetitions: runs.map(({ run, baselineMs }) => ({ wallMs: run.wallMs, baselineMs, ratio: run.ratio })),
      };
      phases.push(result);
      return result;
    };
    const expect = (id: string, what: string, actual: number, expected: number) => {
      if (actual !== expected) problems.push(`(${id}) ${what}: expected ${expected}, got ${actual}`);
    };

    const first = await phase("b", "first sync, all rows new", ["run"]);
    expect("b", "$set updates", first.sets, options.rows);
    expect("b", "other updates", first.updates - first.sets, 0);
    // (c) leaves the state as it found it (the same snapshot, kept), so its repetitions need nothing restored.
    await pairedPhase(
      "c",
      "re-sync, no changes",
      ["run"],
      () => {},
      (run) => expect("c", "requests", run.requests, 0),
    );
    // (d) starts each time from the state (c) left.
    const stateDir = join(dir, "state");
    const savedState = join(dir, "state-before-d");
    cpSync(stateDir, savedState, { recursive: true });
    const changes = await applyChanges(client);
    await pairedPhase(
      "d",
      "re-sync, 1 % changed, 0.1 % deleted",
      ["run"],
      () => {
        rmSync(stateDir, { recursive: true, force: true });
        cpSync(savedState, stateDir, { recursive: true });
        // A real run finds the previous snapshot on disk (its run fsynced it); this copy would otherwise still be in
        // the page cache, and the first fsync of (d) would wait for the kernel to write all of it.
        flushTree(stateDir);
      },
      (run) => {
        expect("d", "$set updates", run.sets, changes.changed);
        expect("d", "$unset updates", run.unsets, changes.nulled);
        expect("d", "$delete updates", run.deletes, changes.deleted);
      },
    );
    const backfill = await phase("e", "backfill, every group again", ["backfill", "--no-progress"]);
    expect("e", "$set updates", backfill.sets, options.rows - changes.deleted);
    expect("e", "other updates", backfill.updates - backfill.sets, 0);

    await receiver.reset();
    const operations = options.rows - changes.deleted;
    const sending = await measure(process.execPath, [
      "--import",
      "tsx",
      join(root, "bench", "delivery-child.ts"),
      receiver.url,
      String(operations),
      String(options.batchSize),
      String(options.concurrency),
    ]);
    if (sending.code !== 0) throw new Error(`the delivery bench failed:\n${sending.stderr}`);
    const stats = await receiver.stats();
    const { ms } = JSON.parse(sending.stdout) as { ms: number };
    phases.push({
      ...phaseResult(
        "e'",
        "sending alone: (e)'s operations through delivery + Mixpanel encode",
        sending,
        stats,
        baseline.wallMs,
      ),
      ...rates(stats, ms),
    });
    log(
      `(e') sending alone: ${(sending.wallMs / 1000).toFixed(2)} s, ${stats.requests} requests, ${stats.updates} updates`,
    );
    expect("e'", "$set updates", stats.sets, operations);

    // (f) A backfill of the second half: the first half's snapshot entries come before its first row and are carried
    // in one stretch, which must be written out as it goes, not held (peak RSS as (e)'s, however large the table).
    const half = `acct_${String(Math.floor(options.rows / 2)).padStart(8, "0")}`;
    const where = `group_id > '${half}'`;
    const { rows: halfRows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${TABLE} WHERE ${where}`);
    const second = await phase("f", "backfill --where of the second half (first half carried)", [
      "backfill",
      "--no-progress",
      "--where",
      where,
    ]);
    expect("f", "$set updates", second.sets, Number(halfRows[0]!.n));
    expect("f", "other updates", second.updates - second.sets, 0);
    return phases;
  } finally {
    receiver.stop();
    await client.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes and reads back a snapshot of `entries` groups, each half in its own measured process. */
async function benchState(entries: number): Promise<StateResult> {
  const dir = mkdtempSync(join(tmpdir(), "groupsync-bench-state-"));
  const file = join(dir, "snapshot.bin");
  const child = join(root, "bench", "state-child.ts");
  try {
    log(`writing a snapshot of ${entries} groups…`);
    const write = await measure(process.execPath, ["--import", "tsx", child, "write", file, String(entries)]);
    if (write.code !== 0) throw new Error(`the state write failed:\n${write.stderr}`);
    const fileBytes = statSync(file).size;
    log(`reading it back…`);
    const read = await measure(process.execPath, ["--import", "tsx", child, "read", file]);
    if (read.code !== 0) throw new Error(`the state read failed:\n${read.stderr}`);
    const readBack = JSON.parse(read.stdout) as { ms: number; entries: number };
    if (readBack.entries !== entries) throw new Error(`read ${readBack.entries} entries back, wrote ${entries}`);
    return {
      entries,
      properties: STATE_PROPERTIES,
      fileBytes,
      writeMs: (JSON.parse(write.stdout) as { ms: number }).ms,
      readMs: readBack.ms,
      writeRssMb: write.peakRssMb,
      readRssMb: read.peakRssMb,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Compiles the project to dist/ (`npm run build`): the phases run the compiled CLI, as an installed package does,
 * not the sources through tsx (which adds most of a second of start-up and its own per-function wrappers).
 */
function build(): void {
  log("compiling to dist/ (npm run build)…");
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const problems: string[] = [];
  if (options.rows !== undefined) build();
  const database = options.rows === undefined ? undefined : await openDatabase(options.pgUrl);
  // Ctrl-C: drop the bench database (and stop the embedded server) rather than leave them behind.
  const onSignal = () => {
    log("stopping…");
    void (database?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let result: BenchResult;
  try {
    const machine = await machineInfo(database?.url);
    const phases =
      database && options.rows !== undefined
        ? await benchTable({ ...options, rows: options.rows }, database.url, problems)
        : undefined;
    const state = options.state === undefined ? undefined : await benchState(options.state);
    result = {
      date: new Date().toISOString(),
      machine,
      ...(phases
        ? {
            rows: options.rows,
            receiver:
              options.receiver === "lean"
                ? "lean (bench/receiver.ts)"
                : "contract (connectors/mixpanel/contract-receiver.ts)",
            runner: "node bin/groupsync.js (compiled dist/)",
            batchSize: options.batchSize,
            concurrency: options.concurrency,
            phases,
          }
        : {}),
      ...(state ? { state } : {}),
      problems,
    };
  } finally {
    await database?.close();
  }
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${markdown(result)}\n`);
  log(`results written to ${options.out}`);
  if (problems.length > 0) process.exitCode = 1;
}

/** fsyncs every file under `dir`, and the folders, as the run that wrote them did. */
function flushTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) flushTree(path);
    else if (entry.isFile()) fsyncPath(path);
  }
  fsyncPath(dir);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

await main();
