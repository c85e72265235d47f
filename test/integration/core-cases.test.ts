/**
 * The core end-to-end cases (test/helpers/core-cases.ts) with each source: a real PostgreSQL table, and a Snowflake
 * table served by the REST stand-in through the real snowflake-sdk. The same cases, the same expectations.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import type { SnowflakeStandIn } from "../../connectors/snowflake/stand-in.js";
import type { StandInTable } from "../../connectors/snowflake/stand-in-data.js";
import { CORE_MAPPING, type CompanyRow, coreCases } from "../helpers/core-cases.js";
import { startE2E } from "../helpers/e2e.js";
import { makeKeys, startSnowflakeE2E, startStandIn } from "../helpers/snowflake.js";

coreCases("postgres", async (mode) => {
  const e2e = await startE2E({ mapping: CORE_MAPPING, mode });
  await e2e.db.query("create table companies (id text primary key, name text, plan text, seats int, region text)");
  return {
    receiver: e2e.receiver,
    async setRows(rows: readonly CompanyRow[]) {
      await e2e.db.query("delete from companies");
      await e2e.db.query("insert into companies select * from json_populate_recordset(null::companies, $1)", [
        JSON.stringify(rows),
      ]);
    },
    setMapping: (yaml) => e2e.setMapping(yaml),
    run: (options) => e2e.run(options),
    profiles: () => e2e.profiles(),
    dispose: () => e2e.dispose(),
  };
});

let standIn: SnowflakeStandIn;
before(async () => {
  standIn = await startStandIn(makeKeys(), { inlineRows: 3, chunkRows: 2 });
});
after(() => standIn.close());

let tables = 0;

coreCases("snowflake", async (mode) => {
  // Each harness reads its own table (COMPANIES in its own schema), so the two modes never share rows.
  const schema = `S${++tables}`;
  const table: StandInTable = {
    columns: [
      { name: "ID", type: "text" },
      { name: "NAME", type: "text" },
      { name: "PLAN", type: "text" },
      { name: "SEATS", type: "fixed", precision: 38, scale: 0 },
      { name: "REGION", type: "text" },
    ],
    rows: [],
  };
  standIn.data.tables.set(`DB.${schema}.COMPANIES`, table);
  const e2e = await startSnowflakeE2E(standIn, { mapping: CORE_MAPPING, mode, schema });
  return {
    receiver: e2e.receiver,
    async setRows(rows: readonly CompanyRow[]) {
      table.rows = rows.map((row) => [
        row.id,
        row.name,
        row.plan,
        row.seats === null ? null : String(row.seats),
        row.region,
      ]);
    },
    setMapping: (yaml) => writeFileSync(join(e2e.dir, "mapping.yaml"), yaml),
    run: (options) => e2e.run(options),
    profiles: () => e2e.profiles(),
    dispose: () => e2e.dispose(),
  };
});
