/**
 * Hash push-down against a real PostgreSQL: the database's row hashes equal the engine's `rowHash` of the cells a
 * plain read returns (every type, NULLs, non-ASCII text); lookups return exactly the rows asked for; and runs that
 * use it send exactly what plain runs send, fetching full rows only for the keys that changed.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { postgresSourceSchema } from "../../connectors/postgres/config.js";
import { createPostgresSource } from "../../connectors/postgres/source.js";
import { loadConnectors } from "../../src/connectors.js";
import type { Connectors } from "../../src/engine/run-sync.js";
import type { ReadSpec, Source } from "../../src/source.js";
import { type E2E, startE2E } from "../helpers/e2e.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const connectors = await loadConnectors();

describe("PostgreSQL row hashes and lookups", () => {
  let db: TestDatabase;
  let source: Source;
  before(async () => {
    db = await createTestDatabase();
    source = createPostgresSource(postgresSourceSchema.parse({ type: "postgres", url: db.url }));
    await db.query(`
      create table t (
        id text primary key, company text, n int, big bigint, dec numeric, f float8, r real, b boolean,
        ts timestamptz, tsn timestamp, d date, tm time, j jsonb, js json, arr text[], ints int[], bin bytea,
        iv interval, u uuid, ch char(4), ip inet, s text);
      insert into t values
        ('a', 'c1', 1, 9007199254740993, 12345678901234567890.123456789, 0.1, 1.5, true,
         '2024-01-15 10:00:00.123456+02', '2024-01-15 10:00:00', '2024-02-29', '23:59:59.5',
         '{"b": [1, 2, {"c": "ü"}], "a": null}', '{"z": 1,  "a": 2}', '{"x","y z","",NULL}', '{1,2,3}', '\\x00ff10',
         '1 day 2 hours', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ab', '10.0.0.1', ''),
        ('b', 'c1', null, null, null, 'NaN', '-Infinity', false, null, null, null, null, 'null', null, '{}', null, '',
         null, null, null, null, E' lead\\ttab, (x) "q" \\\\'),
        ('ü-中文-😀', 'c2', -5, -1, 0.000, -0.0, 3.4e38, null, '1970-01-01 00:00:00+00', null, '0001-01-01', '00:00',
         '"text"', '[]', '{"with \\"quote\\"","back\\\\slash"}', '{}', null, '-3 years', null, 'x y ', '::1/128', E'nbsp\\u00a0x'),
        ('', 'c2', 0, 0, 1e-20, 1e300, 0, true, 'infinity', '-infinity', 'infinity', null, '{}', '{}', null, null, null,
         null, null, null, null, null),
        ('dup', 'c3', 1, 1, 1, 1, 1, true, null, null, null, null, null, null, null, null, null, null, null, null, null, 'plain'),
        (E'tab\\there\\nnew\\\\line\\N', 'c3', null, null, null, null, null, null, null, null, null, null, null, null,
         null, null, null, null, null, null, null, E'\\N');
    `);
  });
  after(async () => {
    await source.close();
    await db.dispose();
  });

  const columns = ["id", "company", "n", "big", "dec", "f", "r", "b", "ts", "tsn", "d", "tm", "j", "js", "arr"];
  const more = ["ints", "bin", "iv", "u", "ch", "ip", "s"];
  const spec: ReadSpec = { from: "public.t", columns: [...columns, ...more], orderBy: ["id"] };

  async function all<T>(chunks: AsyncIterable<readonly T[]>): Promise<T[]> {
    const out: T[] = [];
    for await (const chunk of chunks) out.push(...chunk);
    return out;
  }

  test("keys(), read() and lookup() return the same row hash, for every type", async () => {
    await source.check();
    await source.describe({ from: "public.t" });
    assert.equal(source.hashes!.hashInRows, true);
    const hashColumns = [...spec.columns.slice(1), "n"]; // a column may appear twice
    const rows = await all(source.read(spec, { batchSize: 2 }));
    const withHash = await all(source.read({ ...spec, rowHash: hashColumns }, { batchSize: 2 }));
    const hashed = await all(source.hashes!.keys({ ...spec, hashColumns }, { batchSize: 2 }));
    const keys = rows.map((row) => [row[0] as string]).reverse();
    const looked = await source.hashes!.lookup({ ...spec, rowHash: hashColumns }, keys, {});
    assert.equal(rows.length, 6);
    assert.equal(hashed.length, rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      assert.deepEqual(withHash[i]!.slice(0, -1), row, "the cells are those of a plain read");
      const hash = withHash[i]!.at(-1);
      assert.match(hash ?? "", /^-?[0-9]{1,19}$/);
      assert.deepEqual(hashed[i], [row[0], hash], `row ${row[0]}`);
      assert.deepEqual(looked[i], withHash[i]);
    }
    assert.equal(new Set(hashed.map((row) => row[1])).size, 6, "a change in any cell changes the hash");
    assert.ok(
      hashed.some((row) => row[0] === "tab\there\nnew\\lineN"),
      "COPY escapes are decoded",
    );
  });

  test("values PostgreSQL's equality or hash functions confuse, but that print differently, hash differently", async () => {
    await db.query("create extension if not exists citext");
    const pairs: [type: string, a: string, b: string][] = [
      ["numeric", "5", "-5"], // numeric's hash ignores the sign
      ["numeric", "1.0", "1.00"], // …and the scale
      ["numeric", "NaN", "Infinity"],
      ["float8", "0", "-0"],
      ["real", "0", "-0"],
      ["bigint", "0", "4294967297"], // int8's hash folds the high 32 bits into the low
      ["timestamptz", "2000-01-01 00:00:00+00", "2000-01-01 01:11:34.967297+00"], // 0 and 2^32 + 1 µs
      ["timestamp", "2000-01-01 00:00:00", "2000-01-01 01:11:34.967297"],
      ["time", "00:00:00", "01:11:34.967297"],
      ["jsonb", '{"a": 5}', '{"a": -5}'],
      ["jsonb", '{"a": 1.0}', '{"a": 1.00}'],
      ["bpchar", "a", "a "],
      ["interval", "1 day", "24 hours"],
      ["int[]", "{1,2}", "[0:1]={1,2}"], // an array's hash covers its elements only
      ["text[]", "{a,b}", "{{a,b}}"],
      ["citext", "A", "a"],
      ["text", "A", "a"],
      ["uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"],
    ];
    // A case-insensitive collation makes 'A' equal 'a' (when the server has ICU).
    const icu = await db
      .query("create collation if not exists ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
      .then(() => true)
      .catch(() => false);
    if (icu) pairs.push(['text collate "ci"', "A", "a"], ['text[] collate "ci"', "{A}", "{a}"]);
    for (const [i, [type, a, b]] of pairs.entries()) {
      await db.query(`create table pair${i} (id text, v ${type})`);
      await db.query(`insert into pair${i} values ('1', $1), ('2', $2)`, [a, b]);
      const pairSpec: ReadSpec = { from: `pair${i}`, columns: ["id", "v"], orderBy: ["id"] };
      await source.describe(pairSpec);
      const texts = await all(source.read(pairSpec, { batchSize: 10 }));
      assert.notEqual(texts[0]![1], texts[1]![1], `${type}: ${a} and ${b} print differently`);
      const hashed = await all(source.hashes!.keys({ ...pairSpec, hashColumns: ["v"] }, { batchSize: 10 }));
      assert.notEqual(hashed[0]![1], hashed[1]![1], `${type}: ${a} and ${b} must hash differently`);
    }
    assert.ok(icu, "the embedded server has ICU, so the nondeterministic collation case ran");
  });

  test("hierarchical keys come back in the plain read's order, with where and after honoured", async () => {
    const two: ReadSpec = { from: "public.t", columns: ["company", "id", "n"], orderBy: ["company", "id"] };
    const plain = await all(
      source.read({ ...two, after: ["c1", "a"], where: "n IS NOT NULL OR id = 'b'" }, { batchSize: 10 }),
    );
    const hashed = await all(
      source.hashes!.keys(
        { ...two, after: ["c1", "a"], where: "n IS NOT NULL OR id = 'b'", hashColumns: ["n"] },
        { batchSize: 10 },
      ),
    );
    assert.deepEqual(
      hashed.map((row) => row.slice(0, 2)),
      plain.map((row) => row.slice(0, 2)),
    );
    assert.deepEqual(
      plain.map((row) => row[1]),
      ["b", "", "ü-中文-😀", "dup"],
    );
  });

  test("lookup returns exactly the rows asked for, in key order, whatever order the keys come in", async () => {
    const rows = await all(source.read(spec, { batchSize: 100 }));
    const byId = new Map(rows.map((row) => [row[0], row]));
    const found = await source.hashes!.lookup(spec, [["ü-中文-😀"], ["a"], ["missing"], [""]], {});
    assert.deepEqual(found, [byId.get("")!, byId.get("a")!, byId.get("ü-中文-😀")!]);
    const two: ReadSpec = { from: "public.t", columns: ["company", "id", "n"], orderBy: ["company", "id"] };
    const pairs = await source.hashes!.lookup(
      two,
      [
        ["c2", ""],
        ["c1", "a"],
        ["c2", "a"],
      ],
      {},
    );
    assert.deepEqual(pairs, [
      ["c1", "a", "1"],
      ["c2", "", "0"],
    ]);
    assert.deepEqual(await source.hashes!.lookup(spec, [], {}), []);
    // Keys of other types are compared as their text, in the read's (code-point) order.
    const numbers: ReadSpec = {
      query: "select g as id, g * 2 as n from generate_series(1, 12) g",
      columns: ["id", "n"],
      orderBy: ["id"],
    };
    await source.describe(numbers);
    assert.deepEqual(await source.hashes!.lookup(numbers, [["3"], ["10"], ["x"]], {}), [
      ["10", "20"],
      ["3", "6"],
    ]);
  });

  test("parallel_hash: the hash pass, and only it, plans without the per-row cost of parallel workers", async () => {
    // The read returns its rows only where the planner's cost of passing a row from a worker is 0.
    const probe: ReadSpec = {
      query: "select id, n from t where current_setting('parallel_tuple_cost')::float8 = 0",
      columns: ["id", "n"],
      orderBy: ["id"],
    };
    const hashed = async (reader: Source) =>
      (await all(reader.hashes!.keys({ ...probe, hashColumns: ["n"] }, { batchSize: 10 }))).length;
    assert.equal(await hashed(source), 6, "the default hash pass");
    assert.equal((await all(source.read(probe, { batchSize: 10 }))).length, 0, "a full read keeps the server's cost");
    const serial = createPostgresSource(
      postgresSourceSchema.parse({ type: "postgres", url: db.url, parallel_hash: false }),
    );
    try {
      await serial.check();
      assert.equal(await hashed(serial), 0, "parallel_hash: false");
    } finally {
      await serial.close();
    }
  });

  test("parallel_hash: a big hash pass runs on parallel workers and keeps the key order", async (t) => {
    // Big enough that, at the server's default costs, workers pay for their set-up once rows are free to pass.
    const name = (await db.query("select current_database() as name")).rows[0].name as string;
    await db.query(`
      create table wide (id text collate "C" primary key, n int, pad text);
      insert into wide select 'k' || g, g, repeat(md5(g::text), 4) from generate_series(1, 200000) g;
      analyze wide;`);
    // The suite's own server is 18; a server given in GROUPSYNC_TEST_PG_URL may predate this counter.
    const counted = Number((await db.query("select current_setting('server_version_num') as v")).rows[0].v) >= 180000;
    const launched = async () =>
      counted
        ? Number(
            (await db.query("select parallel_workers_launched as n from pg_stat_database where datname = $1", [name]))
              .rows[0].n,
          )
        : 0;
    const reader = createPostgresSource(postgresSourceSchema.parse({ type: "postgres", url: db.url }));
    const wideSpec: ReadSpec = { from: "public.wide", columns: ["id"], orderBy: ["id"] };
    const before = await launched();
    let keys: string[];
    let plain: string[];
    try {
      await reader.check();
      await reader.describe(wideSpec);
      const hashSpec = { ...wideSpec, hashColumns: ["n", "pad"] };
      keys = (await all(reader.hashes!.keys(hashSpec, { batchSize: 5000 }))).map((row) => row[0] as string);
      plain = (await all(reader.read(wideSpec, { batchSize: 5000 }))).map((row) => row[0] as string);
    } finally {
      // A backend that ends reports its statistics at once (an idle one waits up to 10 s).
      await reader.close();
    }
    assert.equal(keys.length, 200000);
    assert.deepEqual(keys, plain, "the same keys in the same order as the plain read");
    if (!counted) {
      t.skip("counting parallel workers needs PostgreSQL 18 (pg_stat_database.parallel_workers_launched)");
      return;
    }
    const deadline = Date.now() + 10_000;
    while ((await launched()) === before) {
      assert.ok(Date.now() < deadline, "no parallel worker was launched for the hash pass");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  test("a hash read stopped early leaves no COPY running and the source usable", async () => {
    const many: ReadSpec = {
      query: "select g::text as id, g as n from generate_series(1, 200000) g",
      columns: ["id", "n"],
      orderBy: ["id"],
    };
    for await (const chunk of source.hashes!.keys({ ...many, hashColumns: ["n"] }, { batchSize: 100 })) {
      assert.equal(chunk.length, 100);
      break;
    }
    const deadline = Date.now() + 5000;
    for (;;) {
      const { rows } = await db.query(
        "select count(*)::int as n from pg_stat_activity where datname = current_database() and query like 'COPY%' and state = 'active'",
      );
      if (rows[0].n === 0) break;
      assert.ok(Date.now() < deadline, "the COPY is still running");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal((await source.hashes!.lookup(spec, [["a"]], {})).length, 1);
  });

  test("lookup runs as one statement however many keys it is given", async () => {
    const keys = Array.from({ length: 30_000 }, (_, i) => [`k${i}`]);
    keys.push(["dup"]);
    const found = await source.hashes!.lookup(spec, keys, {});
    assert.equal(found.length, 1);
    assert.equal(found[0]![0], "dup");
  });
});

/** Counts what each kind of read returned: the engine's use of push-down, observed from outside. */
interface ReadCounts {
  plainRows: number;
  hashedRows: number;
  /** Of hashedRows, those read as COPY text (compared as bytes). */
  textRows: number;
  lookups: number;
  lookedUp: number;
}

/** Connectors whose source is the real one with some of its parts replaced; `parts` gets the real source. */
function wrapSource(parts: (real: Source) => Partial<Source>): Connectors {
  return {
    ...connectors,
    createSource(sync) {
      const real = connectors.createSource(sync);
      return {
        ...real,
        check: () => real.check(),
        describe: (spec) => real.describe(spec),
        close: () => real.close(),
        read: (spec, options) => real.read(spec, options),
        ...parts(real),
      } satisfies Source;
    },
  };
}

function counting(counts: ReadCounts, beforeLookup?: () => Promise<void>): Connectors {
  return wrapSource((real) => {
    const hashes = real.hashes!;
    return {
      async *read(spec, options) {
        for await (const chunk of real.read(spec, options)) {
          counts.plainRows += chunk.length;
          yield chunk;
        }
      },
      hashes: {
        ...(hashes.rowHash ? { rowHash: hashes.rowHash } : {}),
        ...(hashes.hashInRows ? { hashInRows: true } : {}),
        async *keys(spec, options) {
          for await (const chunk of hashes.keys(spec, options)) {
            counts.hashedRows += chunk.length;
            yield chunk;
          }
        },
        keysText(spec, options) {
          const text = hashes.keysText?.(spec, options);
          if (!text) return undefined;
          return (async function* () {
            for await (const chunk of text) {
              for (const byte of chunk) {
                if (byte === 10) {
                  counts.hashedRows++;
                  counts.textRows++;
                }
              }
              yield chunk;
            }
          })();
        },
        async lookup(spec, keys, options) {
          counts.lookups++;
          counts.lookedUp += keys.length;
          await beforeLookup?.();
          return hashes.lookup(spec, keys, options);
        },
      },
    };
  });
}

const MAPPING = `
from: public.accounts
group_key: company
group_id: id
properties:
  $name: name
  plan: plan
  seats: seats
  tags: { column: tags, type: list }
  synced_by: { value: groupsync }
on_delete: delete
`;

function updates(e2e: E2E, from: number) {
  return e2e.receiver.requests.slice(from).flatMap((request) => request.updates.map(({ $token: _t, ...rest }) => rest));
}

async function expected(e2e: E2E) {
  const { rows } = await e2e.db.query(
    "select id, name, plan, seats, tags from accounts where id is not null and btrim(id) <> '' and id not in (select id from accounts where id is not null group by id having count(*) > 1)",
  );
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of rows) {
    const profile: Record<string, unknown> = {};
    if (row.name !== null) profile.$name = row.name;
    if (row.plan !== null) profile.plan = row.plan;
    if (row.seats !== null) profile.seats = row.seats;
    if (row.tags !== null) profile.tags = row.tags;
    profile.synced_by = "groupsync";
    out[row.id] = profile;
  }
  return out;
}

describe("runs with hash push-down", () => {
  let e2e: E2E;
  const fresh = (): ReadCounts => ({ plainRows: 0, hashedRows: 0, textRows: 0, lookups: 0, lookedUp: 0 });
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING, mode: "mirror", batchSize: 50 });
    await e2e.db.query(`
      create table accounts (id text, name text, plan text, seats int, tags text[]);
      insert into accounts
        select 'acc-' || lpad(i::text, 4, '0'), 'Account ' || i, case when i % 3 = 0 then 'pro' end, i,
               array['t' || (i % 4)]
        from generate_series(1, 300) i;
      insert into accounts values (null, 'no id', null, null, null), ('  ', 'blank id', null, null, null);
    `);
  });
  after(() => e2e.dispose());

  test("a first run reads full rows; an unchanged rerun reads keys and hashes only and sends nothing", async () => {
    const first = fresh();
    const one = await e2e.run({ connectors: counting(first) });
    assert.equal(one.groups_created, 300);
    assert.equal(one.rejected, 2);
    assert.deepEqual(first, { plainRows: 302, hashedRows: 0, textRows: 0, lookups: 0, lookedUp: 0 });
    assert.deepEqual(e2e.profiles(), await expected(e2e));

    const requests = e2e.receiver.requests.length;
    const second = fresh();
    const two = await e2e.run({ connectors: counting(second) });
    assert.deepEqual(second, { plainRows: 0, hashedRows: 302, textRows: 302, lookups: 0, lookedUp: 0 });
    assert.equal(two.unchanged, 300);
    assert.equal(two.rows_read, 302);
    assert.equal(two.rejected, 2, "rejected rows are still reported with their reasons");
    assert.equal(e2e.receiver.requests.length, requests);
  });

  test("changes, nulls, inserts, duplicates and deletes: only the changed keys are fetched, and sent exactly", async () => {
    await e2e.db.query(`
      update accounts set plan = 'enterprise' where id = 'acc-0001';
      update accounts set seats = null, tags = null where id = 'acc-0002';
      update accounts set tags = array['t9', 't1'] where id = 'acc-0004';
      delete from accounts where id = 'acc-0005';
      insert into accounts values ('acc-9999', 'New', null, 1, null), ('acc-0010', 'Twin', null, null, null);
    `);
    const counts = fresh();
    const from = e2e.receiver.requests.length;
    const run = await e2e.run({ connectors: counting(counts) });
    assert.equal(counts.plainRows, 0);
    assert.equal(counts.hashedRows, 303);
    assert.equal(counts.lookups, 1);
    assert.equal(counts.lookedUp, 4, "acc-0001, acc-0002, acc-0004 and acc-9999: not the duplicate, not the others");
    assert.equal(run.groups_updated, 3);
    assert.equal(run.groups_created, 1);
    assert.equal(run.groups_deleted, 1);
    assert.equal(run.rejected, 4, "two bad keys and both rows of the duplicated acc-0010");
    assert.deepEqual(
      updates(e2e, from).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        { $group_key: "company", $group_id: "acc-0001", $set: { plan: "enterprise" } },
        { $group_key: "company", $group_id: "acc-0002", $unset: ["seats", "tags"] },
        { $group_key: "company", $group_id: "acc-0004", $set: { tags: ["t9", "t1"] } },
        { $group_key: "company", $group_id: "acc-0005", $delete: "" },
        { $group_key: "company", $group_id: "acc-9999", $set: { $name: "New", seats: 1, synced_by: "groupsync" } },
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    // The duplicated key's profile is kept as it was; everything else equals the table.
    const want = await expected(e2e);
    want["acc-0010"] = { $name: "Account 10", seats: 10, tags: ["t2"], synced_by: "groupsync" };
    assert.deepEqual(e2e.profiles(), want);
    await e2e.db.query("delete from accounts where id = 'acc-0010' and name = 'Twin'");
  });

  test("a row deleted between the hash pass and its lookup is kept, and deleted by the next run", async () => {
    await e2e.db.query("update accounts set plan = 'gone soon' where id = 'acc-0007'");
    const counts = fresh();
    const run = await e2e.run({
      connectors: counting(counts, async () => {
        await e2e.db.query("delete from accounts where id = 'acc-0007'");
      }),
    });
    assert.equal(counts.lookedUp, 1);
    assert.equal(run.groups_deleted, 0);
    assert.ok("acc-0007" in e2e.profiles());
    const next = await e2e.run({ connectors: counting(fresh()) });
    assert.equal(next.groups_deleted, 1);
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });

  test("when most rows changed, the run reads full rows instead of looking each one up", async () => {
    await e2e.db.query("update accounts set seats = seats + 1 where seats % 2 = 0");
    const counts = fresh();
    const run = await e2e.run({ connectors: counting(counts) });
    assert.equal(counts.lookups, 0);
    assert.equal(counts.hashedRows, 301);
    assert.equal(counts.plainRows, 301);
    assert.equal(run.groups_updated, 149);
    assert.equal(run.rejected, 2, "rows are counted once, not once per pass");
    assert.equal(run.rows_read, 301);
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });

  test("lookups are batched: more changed keys than one lookup takes", async () => {
    await e2e.db.query("update accounts set name = name || '!' where id ~ '3$'");
    const counts = fresh();
    const run = await e2e.run({ connectors: counting(counts), hashed: { lookupKeys: 7 } });
    assert.equal(counts.lookedUp, 30);
    assert.equal(counts.lookups, 5);
    assert.equal(run.groups_updated, 30);
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });

  test("the fetch pass runs alongside the hash pass (a small queue): the same sends, each changed key fetched once", async () => {
    const { rows } = await e2e.db.query("select count(*)::int as n from accounts where id ~ '7$'");
    const changing = rows[0].n as number;
    await e2e.db.query("update accounts set name = name || '?' where id ~ '7$'");
    await e2e.db.query("delete from accounts where id = 'acc-0100'");
    const counts = fresh();
    const from = e2e.receiver.requests.length;
    const run = await e2e.run({ connectors: counting(counts), hashed: { queueLimit: 8, lookupKeys: 5 } });
    assert.equal(counts.plainRows, 0, "no fallback");
    assert.equal(counts.lookedUp, changing);
    assert.ok(counts.lookups >= changing / 5, `${counts.lookups} lookups of at most 5 keys`);
    assert.equal(run.groups_updated, changing);
    assert.equal(run.groups_deleted, 1);
    assert.equal(run.rejected, 2);
    assert.equal(updates(e2e, from).length, changing + 1);
    assert.deepEqual(e2e.profiles(), await expected(e2e));

    // The row comes back: created again, alongside as well.
    await e2e.db.query("insert into accounts values ('acc-0100', 'Account 100', null, 100, array['t0'])");
    const back = await e2e.run({ connectors: counting(fresh()), hashed: { queueLimit: 8 } });
    assert.equal(back.groups_created, 1);
    assert.equal(back.groups_updated + back.groups_deleted, 0);
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });

  test("a hash pass that fails fails the run, even when what it read so far would fall back to a plain read", async () => {
    await e2e.db.query("update accounts set seats = seats + 1 where id ~ '[02468]$'"); // half the rows
    const broken = wrapSource((real) => {
      const hashes = real.hashes!;
      return {
        hashes: {
          hashInRows: true,
          keys: (spec, options) => hashes.keys(spec, options),
          lookup: (spec, keys, options) => hashes.lookup(spec, keys, options),
          keysText(spec, options) {
            const text = hashes.keysText!(spec, options)!;
            return (async function* () {
              for await (const chunk of text) yield chunk;
              throw new Error("connection lost in the hash pass");
            })();
          },
        },
      };
    });
    const before = e2e.receiver.requests.length;
    const failed = await e2e.run({ connectors: broken });
    assert.equal(failed.status, "failed");
    assert.match(JSON.stringify(failed.error), /connection lost in the hash pass/);
    assert.equal(failed.rows_read, 0, "no plain read took over");
    assert.equal(e2e.receiver.requests.length, before, "nothing sent");
    const after = await e2e.run();
    assert.ok(after.groups_updated >= 140);
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });

  test("hash_pushdown: false reads full rows every run", async () => {
    const config = await import("node:fs").then((fs) => fs.readFileSync(e2e.configFile, "utf8"));
    const { writeFileSync } = await import("node:fs");
    writeFileSync(e2e.configFile, config.replace("mode: mirror", "mode: mirror\n    hash_pushdown: false"));
    try {
      const counts = fresh();
      await e2e.run({ connectors: counting(counts) });
      assert.deepEqual(counts, { plainRows: 301, hashedRows: 0, textRows: 0, lookups: 0, lookedUp: 0 });
    } finally {
      writeFileSync(e2e.configFile, config);
    }
  });
});

describe("a run that finds every group unchanged", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING, mode: "mirror", batchSize: 50 });
    await e2e.db.query(`
      create table accounts (id text, name text, plan text, seats int, tags text[]);
      insert into accounts select 'acc-' || i, 'Account ' || i, 'pro', i, array['t'] from generate_series(1, 120) i;
    `);
  });
  after(() => e2e.dispose());

  const snapshot = () => {
    const folder = join(e2e.dir, "state");
    const [sync] = readdirSync(folder);
    const file = readdirSync(join(folder, sync!)).find((name) => name.startsWith("snapshot-"))!;
    return {
      path: join(folder, sync!, file),
      checkpoint: JSON.parse(readFileSync(join(folder, sync!, "checkpoint.json"), "utf8")),
    };
  };

  test("keeps the previous snapshot's bytes under the new name, writes nothing else, and later runs go on", async () => {
    await e2e.run();
    const before = snapshot();
    const inode = statSync(before.path).ino;
    const counts: ReadCounts = { plainRows: 0, hashedRows: 0, textRows: 0, lookups: 0, lookedUp: 0 };
    const requests = e2e.receiver.requests.length;
    const again = await e2e.run({ connectors: counting(counts) });
    const after = snapshot();
    assert.equal(again.unchanged, 120);
    assert.equal(again.rows_read, 120);
    assert.equal(e2e.receiver.requests.length, requests, "nothing sent");
    assert.deepEqual(counts, { plainRows: 0, hashedRows: 120, textRows: 120, lookups: 0, lookedUp: 0 });
    assert.notEqual(after.path, before.path, "the checkpoint names the new run's snapshot");
    assert.equal(statSync(after.path).ino, inode, "the same bytes: a second name, not a copy");
    assert.equal(statSync(after.path).nlink, 1, "the old name is gone");
    assert.equal(existsSync(before.path), false);
    assert.deepEqual(after.checkpoint.properties, before.checkpoint.properties, "per-property counts carried over");
    assert.equal(after.checkpoint.snapshot.groups, 120);

    // A change afterwards is found against the reused snapshot and sent; the next snapshot is a new file.
    await e2e.db.query("update accounts set plan = 'team' where id = 'acc-7'");
    const from = e2e.receiver.requests.length;
    const changed = await e2e.run();
    assert.equal(changed.groups_updated, 1);
    assert.deepEqual(updates(e2e, from), [{ $group_key: "company", $group_id: "acc-7", $set: { plan: "team" } }]);
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });
});
