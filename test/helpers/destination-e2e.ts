/**
 * End-to-end fixture for any destination: a real PostgreSQL database, a config (with the destination block the
 * test gives) and a mapping written to a temp folder, loaded through the real loader and run through the real
 * engine. The test starts the destination's contract receiver itself and points the destination at it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type LoadedConfig, loadConfig } from "../../src/config/load.js";
import { loadConnectors } from "../../src/connectors.js";
import { type RunSyncOptions, runSync } from "../../src/engine/run-sync.js";
import type { RunSummary } from "../../src/engine/summary.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";

const connectors = await loadConnectors();

export interface DestinationE2EOptions {
  /** The destination block: YAML lines indented by four spaces (`    type: posthog`…). */
  readonly destination: string;
  /** Mapping file YAML. */
  readonly mapping: string;
  readonly mode?: "upsert" | "mirror";
  /** Variables the config may use as `${NAME}`. */
  readonly env?: Record<string, string>;
}

export interface DestinationE2E {
  readonly db: TestDatabase;
  readonly dir: string;
  /** Log lines written during runs (JSON objects). */
  readonly logs: Record<string, unknown>[];
  load(): Promise<LoadedConfig>;
  run(options?: Partial<RunSyncOptions>): Promise<RunSummary>;
  plan(options?: Partial<RunSyncOptions>): Promise<RunSummary>;
  setMapping(yaml: string): void;
  /** Rewrites the destination block (the state stays). */
  setDestination(yaml: string): void;
  dispose(): Promise<void>;
}

export async function startDestinationE2E(options: DestinationE2EOptions): Promise<DestinationE2E> {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), "groupsync-dest-e2e-"));
  const env = { ...options.env, TEST_DATABASE_URL: db.url };
  const setDestination = (destination: string) =>
    writeFileSync(
      join(dir, "sync.config.yaml"),
      `version: 1
state_dir: state
sources:
  db:
    type: postgres
    url: \${TEST_DATABASE_URL}
destinations:
  dest:
${destination}
syncs:
  s:
    source: db
    destination: dest
    mapping: mapping.yaml
    mode: ${options.mode ?? "upsert"}
`,
    );
  const setMapping = (yaml: string) => writeFileSync(join(dir, "mapping.yaml"), yaml);
  setDestination(options.destination);
  setMapping(options.mapping);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ level: "debug", pretty: false, destination: sink });
  const load = () => loadConfig(join(dir, "sync.config.yaml"), { env });
  const go = async (plan: boolean, extra: Partial<RunSyncOptions> = {}) => {
    const loaded = await load();
    return runSync(loaded.syncs[0]!, {
      stateDir: loaded.stateDir,
      connectors,
      logger,
      plan,
      delivery: { baseDelayMs: 5, maxDelayMs: 50, jitterMs: [0, 5] },
      ...extra,
    });
  };
  return {
    db,
    dir,
    logs,
    load,
    run: (extra) => go(false, extra),
    plan: (extra) => go(true, extra),
    setMapping,
    setDestination,
    async dispose() {
      await db.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
