/**
 * `npm run demo`: the whole product on one machine, with nothing to set up. Starts an embedded PostgreSQL, loads
 * sample companies, users and teams (a hierarchical B2B model), starts a local Mixpanel-compatible receiver, and
 * runs the project's own sync.config.yaml against them twice: once from scratch, then after some rows change, to
 * show that only the changes are sent. State lives in a temporary folder, so the demo leaves nothing behind.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startMixpanelReceiver } from "../../connectors/mixpanel/contract-receiver.js";
import { formatSummary } from "../cli/format.js";
import { loadConfig } from "../config/load.js";
import { loadConnectors } from "../connectors.js";
import { runSync } from "../engine/run-sync.js";
import { createLogger } from "../log.js";
import { startEmbeddedPostgres } from "./embedded-postgres.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const here = fileURLToPath(new URL(".", import.meta.url));
const TOKEN = "demo-project-token";

const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const say = (text = "") => process.stdout.write(`${text}\n`);

function table(rows: readonly Record<string, unknown>[]): string {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: unknown) =>
    value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) => values.map((value, i) => value.padEnd(widths[i]!)).join("  ");
  return [
    line(columns),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((row) => line(columns.map((c) => cell(row[c])))),
  ]
    .map((text) => `  ${text}`)
    .join("\n");
}

async function main(): Promise<void> {
  say(bold("groupsync demo: PostgreSQL → Mixpanel group profiles (hierarchical)"));
  say("Starting an embedded PostgreSQL and a local Mixpanel-compatible receiver…");
  const database = await startEmbeddedPostgres();
  const receiver = await startMixpanelReceiver({ token: TOKEN, hierarchical: true });
  const stateDir = mkdtempSync(join(tmpdir(), "groupsync-demo-state-"));
  const client = new pg.Client({ connectionString: database.url });
  try {
    await client.connect();
    await client.query(readFileSync(join(here, "demo-data.sql"), "utf8"));
    say("Loaded analytics.dim_companies (5 rows), analytics.dim_users (6), analytics.dim_teams (4).\n");

    process.env.DATABASE_URL = database.url;
    process.env.MIXPANEL_PROJECT_TOKEN = TOKEN;
    process.env.MIXPANEL_API_HOST = receiver.url;
    const configFile = join(root, "sync.config.yaml");
    const loaded = await loadConfig(configFile);
    const connectors = await loadConnectors(loaded.syncs);
    const logger = createLogger({ level: process.env.GROUPSYNC_LOG_LEVEL ?? "warn" });
    say(`Config: sync.config.yaml with ${loaded.syncs.map((s) => `${s.name} (${s.sync.mode})`).join(", ")}\n`);

    const runAll = async (title: string) => {
      say(bold(title));
      const before = receiver.requests.length;
      for (const sync of loaded.syncs) {
        const summary = await runSync(sync, { stateDir, connectors, logger });
        say(formatSummary(summary));
      }
      const updates = receiver.requests.slice(before).flatMap((request) => request.updates);
      say(
        `\n  ${updates.length} update objects reached the receiver in ${receiver.requests.length - before} requests:`,
      );
      for (const update of updates) {
        const { $token: _token, ...rest } = update;
        say(`    ${JSON.stringify(rest)}`);
      }
      say();
    };

    await runAll("Run 1: first sync, every group is new");
    say(bold("Changing the warehouse:"));
    for (const line of readFileSync(join(here, "demo-changes.sql"), "utf8").split("\n")) {
      if (line.trim() !== "" && !line.startsWith("--")) say(`  ${line.replace(/\s+/g, " ").trim()}`);
    }
    await client.query(readFileSync(join(here, "demo-changes.sql"), "utf8"));
    say();
    await runAll("Run 2: only the changes are sent");
    await runAll("Run 3: nothing changed, nothing is sent");

    say(bold("What the receiver's profiles now hold:"));
    const profiles = [...receiver.profiles()].map(([key, properties]) => {
      const [groupKey, companyId, groupId] = key.split("|");
      return { group_key: groupKey, company: companyId, group_id: groupId, ...properties };
    });
    for (const groupKey of ["$company_id", "$user_id", "team_id"]) {
      say(`\n${groupKey}:`);
      say(
        table(profiles.filter((profile) => profile.group_key === groupKey).map(({ group_key: _g, ...rest }) => rest)),
      );
    }
    say(`\nState files of the run are in ${stateDir} (removed now). Try \`npx groupsync --help\` next.`);
  } finally {
    await client.end().catch(() => undefined);
    await receiver.close();
    await database.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
