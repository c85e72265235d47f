/**
 * End-to-end fixture: a real PostgreSQL database, a local Mixpanel contract receiver, and a config + mapping
 * written to a temp folder and loaded through the real loader, run through the real engine.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import {
  type MixpanelReceiver,
  type ReceiverOptions,
  startMixpanelReceiver,
} from "../../connectors/mixpanel/contract-receiver.js";
import { type LoadedConfig, loadConfig } from "../../src/config/load.js";
import { loadConnectors } from "../../src/connectors.js";
import { type RunSyncOptions, runSync } from "../../src/engine/run-sync.js";
import type { RunSummary } from "../../src/engine/summary.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";

const connectors = await loadConnectors();

export const TOKEN = "e2e-project-token-123456";

export interface E2EOptions {
  /** Mapping file YAML. */
  readonly mapping: string;
  readonly mode?: "upsert" | "mirror";
  readonly hierarchical?: boolean;
  readonly batchSize?: number;
  readonly perRecordErrors?: boolean;
  /** Extra keys for the sync block (YAML lines, indented by the caller). */
  readonly syncExtra?: string;
  readonly destinationExtra?: string;
  /** More receiver options (e.g. the Query API's service account). */
  readonly receiver?: Partial<ReceiverOptions>;
}

export interface E2E {
  readonly db: TestDatabase;
  readonly receiver: MixpanelReceiver;
  readonly dir: string;
  readonly configFile: string;
  /** Log lines written during runs (JSON objects). */
  readonly logs: Record<string, unknown>[];
  load(): Promise<LoadedConfig>;
  run(options?: Partial<RunSyncOptions>): Promise<RunSummary>;
  plan(options?: Partial<RunSyncOptions>): Promise<RunSummary>;
  /** Rewrites the mapping file. */
  setMapping(yaml: string): void;
  /** The receiver's profiles as { "<company>|<group id>": properties }, for one group key. */
  profiles(groupKey?: string): Record<string, Record<string, unknown>>;
  env: Record<string, string>;
  dispose(): Promise<void>;
}

export async function startE2E(options: E2EOptions): Promise<E2E> {
  const db = await createTestDatabase();
  const receiver = await startMixpanelReceiver({
    token: TOKEN,
    hierarchical: options.hierarchical ?? false,
    ...(options.perRecordErrors !== undefined ? { perRecordErrors: options.perRecordErrors } : {}),
    ...options.receiver,
  });
  const dir = mkdtempSync(join(tmpdir(), "groupsync-e2e-"));
  const configFile = join(dir, "sync.config.yaml");
  const env = { TEST_DATABASE_URL: db.url, TEST_MP_TOKEN: TOKEN, TEST_MP_HOST: receiver.url };
  writeFileSync(
    configFile,
    `version: 1
state_dir: state
sources:
  db:
    type: postgres
    url: \${TEST_DATABASE_URL}
destinations:
  mp:
    type: mixpanel
    project_token: \${TEST_MP_TOKEN}
    api_host: \${TEST_MP_HOST}
    hierarchical: ${options.hierarchical ?? false}
    batch_size: ${options.batchSize ?? 50}
    timeout: 2s
${options.destinationExtra ?? ""}
syncs:
  s:
    source: db
    destination: mp
    mapping: mapping.yaml
    mode: ${options.mode ?? "upsert"}
${options.syncExtra ?? ""}
`,
  );
  const setMapping = (yaml: string) => writeFileSync(join(dir, "mapping.yaml"), yaml);
  setMapping(options.mapping);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ level: "debug", pretty: false, destination: sink });
  const load = () => loadConfig(configFile, { env });
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
    receiver,
    dir,
    configFile,
    logs,
    env,
    load,
    run: (extra) => go(false, extra),
    plan: (extra) => go(true, extra),
    setMapping,
    profiles(groupKey) {
      const out: Record<string, Record<string, unknown>> = {};
      for (const [key, properties] of receiver.profiles()) {
        const [gk, company, id] = key.split("|");
        if (groupKey === undefined || gk === groupKey) out[company ? `${company}|${id}` : (id as string)] = properties;
      }
      return out;
    },
    async dispose() {
      await receiver.close();
      await db.dispose();
    },
  };
}
