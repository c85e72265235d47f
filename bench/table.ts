/**
 * The benchmark's group table, its mapping and sync config, and the changes of phase (d). Every row starts with
 * all 12 properties set, so a first sync sends exactly one `$set` per row.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type pg from "pg";

export const TABLE = "bench_groups";
export const SYNC = "bench";
/** The token the bench config sends; the receiver refuses any other, so a misrouted config shows up. */
export const BENCH_TOKEN = "bench-project-token";

/** The mapped columns, in the order of the baseline's COPY. */
export const COLUMNS = [
  "group_id",
  "name",
  "plan",
  "industry",
  "seats",
  "events_30d",
  "arr_usd",
  "health_score",
  "is_enterprise",
  "created_at",
  "renewal_date",
  "attributes",
  "tags",
] as const;

/** Creates and fills the table with `rows` rows (text, int, bigint, numeric, float, boolean, timestamptz, date, jsonb, text[]). */
export async function createTable(client: pg.Client, rows: number): Promise<void> {
  await client.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await client.query(`CREATE TABLE ${TABLE} (
    group_id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    plan text,
    industry text,
    seats integer,
    events_30d bigint,
    arr_usd numeric(14, 2),
    health_score double precision,
    is_enterprise boolean,
    created_at timestamptz,
    renewal_date date,
    attributes jsonb,
    tags text[]
  )`);
  // Inserted in key order, as a warehouse table loaded by an ELT job would mostly be.
  await client.query(
    `INSERT INTO ${TABLE}
     SELECT 'acct_' || lpad(i::text, 8, '0'),
            'Company ' || i || ' ' || md5(i::text),
            (ARRAY['free', 'pro', 'team', 'enterprise'])[1 + i % 4],
            (ARRAY['saas', 'fintech', 'retail', 'health care', 'media'])[1 + i % 5],
            1 + i % 500,
            i::bigint * 7919,
            round((i % 100000) * 12.37, 2),
            (i % 1000) / 10.0 + 0.25,
            i % 4 = 3,
            timestamptz '2019-01-01 00:00:00+00' + i * interval '37 seconds',
            date '2025-01-01' + i % 365,
            jsonb_build_object('region', (ARRAY['emea', 'amer', 'apac'])[1 + i % 3], 'tier', i % 3, 'beta', i % 2 = 0),
            ARRAY['tag' || i % 7, 'tag' || i % 11]
     FROM generate_series(1, $1::int) AS i`,
    [rows],
  );
  await client.query(`VACUUM ANALYZE ${TABLE}`);
}

/** How many groups phase (d) changed, to check what the receiver got. */
export interface Changes {
  /** Rows with properties changed to other non-null values: one `$set` each. */
  readonly changed: number;
  /** Rows with properties set to null: one `$unset` each. */
  readonly nulled: number;
  /** Rows deleted: one `$delete` each (mirror mode). */
  readonly deleted: number;
}

/** 1 % of the rows change (half of them to new values, half to nulls) and 0.1 % are deleted; disjoint sets. */
export async function applyChanges(client: pg.Client): Promise<Changes> {
  const id = "substr(group_id, 6)::int";
  const changed = await client.query(
    `UPDATE ${TABLE} SET plan = 'changed', seats = seats + 1000 WHERE ${id} % 200 = 1`,
  );
  const nulled = await client.query(`UPDATE ${TABLE} SET industry = NULL, health_score = NULL WHERE ${id} % 200 = 101`);
  const deleted = await client.query(`DELETE FROM ${TABLE} WHERE ${id} % 1000 = 7`);
  await client.query(`VACUUM ANALYZE ${TABLE}`);
  return { changed: changed.rowCount ?? 0, nulled: nulled.rowCount ?? 0, deleted: deleted.rowCount ?? 0 };
}

/** Writes sync.config.yaml and mapping.yaml into `dir`; the URLs come from the environment the CLI gets. */
export function writeConfig(dir: string, options: { readonly batchSize: number; readonly concurrency: number }) {
  const configFile = join(dir, "sync.config.yaml");
  writeFileSync(
    configFile,
    `version: 1
state_dir: state
sources:
  db:
    type: postgres
    url: \${BENCH_DATABASE_URL}
destinations:
  mp:
    type: mixpanel
    project_token: \${BENCH_MP_TOKEN}
    api_host: \${BENCH_MP_HOST}
    batch_size: ${options.batchSize}
    concurrency: ${options.concurrency}
syncs:
  ${SYNC}:
    source: db
    destination: mp
    mapping: mapping.yaml
    mode: mirror
`,
  );
  writeFileSync(
    join(dir, "mapping.yaml"),
    `from: ${TABLE}
group_key: company
group_id: group_id
properties:
  $name: name
  plan: plan
  industry: industry
  seats: { column: seats, type: number }
  events_30d: { column: events_30d, type: number }
  arr_usd: { column: arr_usd, type: number }
  health_score: { column: health_score, type: number }
  is_enterprise: is_enterprise
  created_at: { column: created_at, type: datetime }
  renewal_date: { column: renewal_date, type: date }
  attributes: { column: attributes, type: object }
  tags: { column: tags, type: list }
on_delete: delete
`,
  );
  return { configFile, token: BENCH_TOKEN };
}
