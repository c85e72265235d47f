/**
 * Snowflake test fixture: the local REST stand-in with a user, a warehouse and tables, and sources configured to
 * reach it through the driver's own `access_url`. Key material for key-pair logins is generated per run.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type MixpanelReceiver, startMixpanelReceiver } from "../../connectors/mixpanel/contract-receiver.js";
import { type SnowflakeSourceConfig, snowflakeSourceSchema } from "../../connectors/snowflake/config.js";
import { createSnowflakeSource } from "../../connectors/snowflake/source.js";
import {
  type SnowflakeStandIn,
  type StandInOptions,
  startSnowflakeStandIn,
} from "../../connectors/snowflake/stand-in.js";
import { type LoadedConfig, loadConfig } from "../../src/config/load.js";
import { loadConnectors } from "../../src/connectors.js";
import { type RunSyncOptions, runSync } from "../../src/engine/run-sync.js";
import type { RunSummary } from "../../src/engine/summary.js";
import { createLogger } from "../../src/log.js";
import type { RawRow, ReadSpec, Source } from "../../src/source.js";

const connectors = await loadConnectors();

export const ACCOUNT = "testorg-testacct";
export const PASSWORD = "pw-Snowflake-test-7731";
export const OAUTH_TOKEN = "oauth-access-token-5521";
export const PASSPHRASE = "key-passphrase-8817";

export interface KeyFiles {
  /** Encrypted PKCS#8 PEM file (passphrase PASSPHRASE). */
  readonly encryptedFile: string;
  /** Unencrypted PKCS#8 PEM text. */
  readonly pem: string;
  readonly publicKey: string;
}

export function makeKeys(): KeyFiles {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), "groupsync-sf-keys-"));
  const encryptedFile = join(dir, "rsa_key.p8");
  writeFileSync(
    encryptedFile,
    privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: PASSPHRASE }),
    { mode: 0o600 },
  );
  return {
    encryptedFile,
    pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** A stand-in with user GROUPSYNC (password, key pair, OAuth; roles READER and PUBLIC) and warehouse WH. */
export async function startStandIn(keys: KeyFiles, options: Partial<StandInOptions> = {}): Promise<SnowflakeStandIn> {
  const standIn = await startSnowflakeStandIn({
    account: ACCOUNT,
    users: [
      {
        name: "GROUPSYNC",
        password: PASSWORD,
        publicKey: keys.publicKey,
        oauthToken: OAUTH_TOKEN,
        roles: ["READER", "PUBLIC"],
      },
    ],
    ...options,
  });
  standIn.data.warehouses.add("WH");
  return standIn;
}

/** A source config (password login) pointing at the stand-in; `extra` overrides keys. */
export function sourceConfig(standIn: SnowflakeStandIn, extra: Record<string, unknown> = {}): SnowflakeSourceConfig {
  const base: Record<string, unknown> = {
    type: "snowflake",
    account: ACCOUNT,
    username: "groupsync",
    password: PASSWORD,
    warehouse: "wh",
    database: "db",
    schema: "public",
    role: "reader",
    access_url: standIn.url,
  };
  const merged = { ...base, ...extra };
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
  return snowflakeSourceSchema.parse(merged);
}

export function snowflakeSource(
  standIn: SnowflakeStandIn,
  extra: Record<string, unknown> = {},
  sync = "companies",
): Source {
  return createSnowflakeSource(sourceConfig(standIn, extra), { sync });
}

/** Every row of a read, with the batch sizes seen. */
export async function readAll(
  source: Source,
  spec: ReadSpec,
  batchSize = 1000,
  options: { signal?: AbortSignal } = {},
): Promise<{ rows: RawRow[]; batches: number[] }> {
  const rows: RawRow[] = [];
  const batches: number[] = [];
  for await (const batch of source.read(spec, { batchSize, ...options })) {
    batches.push(batch.length);
    rows.push(...batch);
  }
  return { rows, batches };
}

/** The core of an end-to-end run: a config and mapping in a temp folder, loaded through the real loader. */
export interface SnowflakeE2E {
  readonly dir: string;
  readonly receiver: MixpanelReceiver;
  readonly logs: Record<string, unknown>[];
  load(): Promise<LoadedConfig>;
  run(options?: Partial<RunSyncOptions>): Promise<RunSummary>;
  /** The variables the config file uses, for running other commands on it (validate). */
  readonly env: Record<string, string>;
  readonly configFile: string;
  /** The receiver's profiles as { "<group id>": properties }. */
  profiles(): Record<string, Record<string, unknown>>;
  dispose(): Promise<void>;
}

export const E2E_TOKEN = "sf-e2e-project-token-9911";

/** A sync `companies` from the stand-in (password login) to a local Mixpanel receiver. */
export async function startSnowflakeE2E(
  standIn: SnowflakeStandIn,
  options: { mapping: string; mode?: "upsert" | "mirror"; schema?: string },
): Promise<SnowflakeE2E> {
  const receiver = await startMixpanelReceiver({ token: E2E_TOKEN });
  const dir = mkdtempSync(join(tmpdir(), "groupsync-sf-e2e-"));
  const configFile = join(dir, "sync.config.yaml");
  writeFileSync(
    configFile,
    `version: 1
state_dir: state
sources:
  snow:
    type: snowflake
    account: ${ACCOUNT}
    username: groupsync
    password: \${SF_PASSWORD}
    warehouse: wh
    database: db
    schema: ${options.schema ?? "public"}
    role: reader
    access_url: \${SF_URL}
destinations:
  mp:
    type: mixpanel
    project_token: \${MP_TOKEN}
    api_host: \${MP_HOST}
    batch_size: 50
    timeout: 2s
syncs:
  companies:
    source: snow
    destination: mp
    mapping: mapping.yaml
    mode: ${options.mode ?? "upsert"}
`,
  );
  writeFileSync(join(dir, "mapping.yaml"), options.mapping);
  const env = { SF_PASSWORD: PASSWORD, SF_URL: standIn.url, MP_TOKEN: E2E_TOKEN, MP_HOST: receiver.url };
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ level: "debug", pretty: false, destination: sink });
  const load = () => loadConfig(configFile, { env });
  return {
    dir,
    receiver,
    logs,
    load,
    env,
    configFile,
    async run(extra = {}) {
      const loaded = await load();
      return runSync(loaded.syncs[0]!, {
        stateDir: loaded.stateDir,
        connectors,
        logger,
        delivery: { baseDelayMs: 5, maxDelayMs: 50, jitterMs: [0, 5] },
        ...extra,
      });
    },
    profiles() {
      const out: Record<string, Record<string, unknown>> = {};
      for (const [key, properties] of receiver.profiles()) out[key.split("|")[2] as string] = properties;
      return out;
    },
    dispose: () => receiver.close(),
  };
}
