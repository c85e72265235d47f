/**
 * The small table several engine tests sync: `t(id text, name text, n int)`, Group IDs `g` and a zero-padded
 * number, mapped to the properties `name` and `n`; and the profiles it should leave at the receiver.
 */
import type { E2E } from "./e2e.js";

export const SIMPLE_MAPPING = "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  name: name\n  n: n\n";

/** Creates `t` with `rows` rows: `g00001`, `name 1`, 1, … (`digits` wide). */
export async function createSimpleTable(e2e: E2E, rows: number, digits = 5): Promise<void> {
  await e2e.db.query(`create table t (id text, name text, n int)`);
  await e2e.db.query(
    `insert into t select 'g' || lpad(i::text, $2, '0'), 'name ' || i, i from generate_series(1, $1) i`,
    [rows, digits],
  );
}

/** The profiles the table's rows make: each non-null property, by Group ID. */
export async function simpleProfiles(e2e: E2E): Promise<Record<string, Record<string, unknown>>> {
  const { rows } = await e2e.db.query("select id, name, n from t");
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of rows) {
    const profile: Record<string, unknown> = {};
    if (row.name !== null) profile.name = row.name;
    if (row.n !== null) profile.n = row.n;
    out[row.id] = profile;
  }
  return out;
}
