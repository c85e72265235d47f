/**
 * End-to-end: PostgreSQL table → engine → local Segment Tracking API (/v1/batch), across runs. The core case list,
 * then what only Segment has: the userId from a column or a fixed anonymousId, nulls as unsets, messageIds that
 * make retries idempotent, and the 32 KB per-message limit.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type SegmentReceiver, startSegmentReceiver } from "../../connectors/segment/contract-receiver.js";
import { type DestinationE2E, startDestinationE2E } from "../helpers/destination-e2e.js";

const WRITE_KEY = "seg_e2e_write_key_987654";
const MAPPING = `from: companies
group_key: company
group_id: id
user_id: owner
properties:
  name: name
  plan: plan
  employees: seats
on_delete: unset
`;

const destinationYaml = (receiver: SegmentReceiver, extra = "") =>
  `    type: segment
    write_key: \${SEG_KEY}
    api_host: ${receiver.url}
    anonymous_id: groupsync-e2e
    batch_size: 20
    timeout: 2s
${extra}`;

async function start(options: { mode?: "upsert" | "mirror"; mapping?: string; extra?: string } = {}) {
  const receiver = await startSegmentReceiver({ writeKey: WRITE_KEY });
  const e2e = await startDestinationE2E({
    destination: destinationYaml(receiver, options.extra),
    mapping: options.mapping ?? MAPPING,
    mode: options.mode ?? "upsert",
    env: { SEG_KEY: WRITE_KEY },
  });
  await e2e.db.query(`
    create table companies (id text primary key, owner text, name text, plan text, seats int);
    insert into companies values ('acme', 'u-ann', 'Acme', 'enterprise', 50), ('globex', 'u-bob', 'Globex', 'growth', 10),
      ('initech', null, 'Initech', null, 3), ('umbrella', 'u-cy', 'Umbrella', 'enterprise', 400);
  `);
  return { receiver, e2e };
}

/**
 * What Segment must hold, from the table: traits merge, so a trait once sent stays; one that became empty is null.
 * `everSet` lists traits sent before that are now null in the table.
 */
async function expected(e2e: DestinationE2E, traits: Record<string, string>, nulls: Record<string, string[]> = {}) {
  const { rows } = await e2e.db.query(`select * from companies`);
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of rows) {
    const group: Record<string, unknown> = {};
    for (const [trait, column] of Object.entries(traits)) if (row[column] !== null) group[trait] = row[column];
    for (const trait of nulls[row.id] ?? []) group[trait] = null;
    out[row.id] = group;
  }
  return out;
}

const TRAITS = { name: "name", plan: "plan", employees: "seats" };
const held = (receiver: SegmentReceiver) => Object.fromEntries(receiver.groups());
const eventsSince = (receiver: SegmentReceiver, from: number) =>
  receiver.requests.slice(from).flatMap((request) => request.events);

describe("Segment: the core case list", () => {
  let receiver: SegmentReceiver;
  let e2e: DestinationE2E;
  before(async () => ({ receiver, e2e } = await start()));
  after(async () => {
    await receiver.close();
    await e2e.dispose();
  });

  test("first sync: one group call per group, with the user from the column or the fixed anonymousId", async () => {
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.groups_created, 4);
    assert.deepEqual(held(receiver), await expected(e2e, TRAITS));
    assert.deepEqual(Object.fromEntries(receiver.members()), {
      acme: ["user:u-ann"],
      globex: ["user:u-bob"],
      initech: ["anon:groupsync-e2e"],
      umbrella: ["user:u-cy"],
    });
    const events = eventsSince(receiver, 0);
    const initech = events.find((event) => event.groupId === "initech") as Record<string, unknown>;
    assert.deepEqual(
      { ...initech, messageId: undefined },
      {
        type: "group",
        messageId: undefined,
        groupId: "initech",
        anonymousId: "groupsync-e2e",
        traits: { name: "Initech", employees: 3 },
        context: { library: { name: "groupsync" } },
      },
    );
    assert.equal(new Set(events.map((event) => event.messageId)).size, 4, "one messageId per call");
    assert.deepEqual(receiver.dropped, []);
  });

  test("a property changes: just that trait is sent", async () => {
    await e2e.db.query(`update companies set seats = 55 where id = 'acme'`);
    const from = receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.groups_updated, 1);
    assert.deepEqual(
      eventsSince(receiver, from).map((event) => [event.groupId, event.userId, event.traits]),
      [["acme", "u-ann", { employees: 55 }]],
    );
    assert.deepEqual(held(receiver), await expected(e2e, TRAITS));
  });

  test("a property becomes null: the trait is sent as null, once", async () => {
    await e2e.db.query(`update companies set plan = null where id = 'globex'`);
    const from = receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.properties_unset, 1);
    assert.deepEqual(
      eventsSince(receiver, from).map((event) => [event.groupId, event.traits]),
      [["globex", { plan: null }]],
    );
    assert.deepEqual(held(receiver), await expected(e2e, TRAITS, { globex: ["plan"] }));
    const again = receiver.requests.length;
    await e2e.run();
    assert.equal(receiver.requests.length, again, "null staying null sends nothing");
  });

  test("the mapping gains a property (sent) and loses one (null on every group that had it)", async () => {
    await e2e.db.query(
      `alter table companies add column industry text; update companies set industry = 'Retail' where id = 'acme'`,
    );
    e2e.setMapping(MAPPING.replace("  employees: seats\n", "  industry: industry\n"));
    const from = receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    const events = eventsSince(receiver, from);
    assert.deepEqual(
      events.map((event) => [event.groupId, event.traits]).sort(),
      [
        ["acme", { industry: "Retail" }],
        ["acme", { employees: null }],
        ["globex", { employees: null }],
        ["initech", { employees: null }],
        ["umbrella", { employees: null }],
      ].sort(),
    );
    const traits = { name: "name", plan: "plan", industry: "industry" };
    const gone = ["employees"];
    assert.deepEqual(
      held(receiver),
      await expected(e2e, traits, { acme: gone, globex: ["plan", ...gone], initech: gone, umbrella: gone }),
    );
  });
});

describe("Segment mirror mode (on_delete: unset)", () => {
  test("a row that disappears gets its traits sent as null, attributed to the fixed anonymousId", async () => {
    const { receiver, e2e } = await start({ mode: "mirror" });
    try {
      await e2e.db.query(
        `insert into companies select 'extra-' || i, 'u', 'Extra', 'starter', i from generate_series(1, 6) i`,
      );
      assert.equal((await e2e.run()).status, "ok");
      await e2e.db.query(`delete from companies where id = 'globex'`);
      const from = receiver.requests.length;
      const summary = await e2e.run();
      assert.equal(summary.status, "ok", JSON.stringify(summary.error));
      assert.equal(summary.groups_deleted, 1);
      const events = eventsSince(receiver, from);
      assert.equal(events.length, 1);
      assert.equal(events[0]?.anonymousId, "groupsync-e2e", "the row is gone: no user_id to take");
      assert.deepEqual(events[0]?.traits, { name: null, plan: null, employees: null });
      assert.deepEqual(held(receiver).globex, { name: null, plan: null, employees: null });
    } finally {
      await receiver.close();
      await e2e.dispose();
    }
  });
});

describe("Segment under faults", () => {
  let receiver: SegmentReceiver;
  let e2e: DestinationE2E;
  before(async () => {
    ({ receiver, e2e } = await start());
    await e2e.db.query(
      `insert into companies select 'g' || lpad(i::text, 3, '0'), 'u' || i, 'G' || i, 'p', i from generate_series(1, 96) i`,
    );
  });
  after(async () => {
    await receiver.close();
    await e2e.dispose();
  });

  test("a 429 storm with Retry-After is waited out and nothing is lost", async () => {
    receiver.fail({ status: 429, retryAfter: 1 }, { status: 429, retryAfter: 1 }, { status: 429 }, { status: 429 });
    const started = Date.now();
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.ok(summary.retries >= 4, `retries: ${summary.retries}`);
    assert.ok(Date.now() - started >= 1000, "Retry-After was honoured");
    assert.deepEqual(held(receiver), await expected(e2e, TRAITS));
  });

  test("500s then recovery: a retried batch carries the same messageIds (Segment de-duplicates it)", async () => {
    await e2e.db.query(`update companies set seats = seats + 1000`);
    const from = receiver.requests.length;
    receiver.fail({ status: 500 }, { status: 502 }, { status: 503 }, { drop: true });
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.groups_updated, 100);
    assert.deepEqual(held(receiver), await expected(e2e, TRAITS));
    const requests = receiver.requests.slice(from);
    const ids = (index: number) => (requests[index]?.events ?? []).map((event) => event.messageId).sort();
    const failed = requests.findIndex((request) => request.status === 500);
    const retried = requests.findIndex(
      (request, index) =>
        index > failed && request.status === 200 && request.events[0]?.groupId === requests[failed]?.events[0]?.groupId,
    );
    assert.ok(failed >= 0 && retried > failed, "the failed batch was sent again");
    assert.deepEqual(ids(retried), ids(failed));
  });

  test("one bad record in a batch: the batch is split, the record rejected with its key, the rest applied", async () => {
    await e2e.db.query(
      `update companies set name = 'poison' where id = 'g042'; update companies set seats = seats + 1`,
    );
    receiver.rejectWhen((event) =>
      (event.traits as Record<string, unknown>).name === "poison" ? "traits.name is not accepted" : undefined,
    );
    const summary = await e2e.run();
    receiver.rejectWhen(undefined);
    assert.equal(summary.status, "rejected");
    assert.equal(summary.rejected, 1);
    assert.equal(summary.groups_updated, 99);
    assert.match(readFileSync(join(e2e.dir, "state", "s", "rejects.jsonl"), "utf8"), /"key":"g042".*not accepted/);
    assert.notEqual(held(receiver).g042?.name, "poison");
    assert.equal((await e2e.run()).status, "ok");
    assert.deepEqual(held(receiver), await expected(e2e, TRAITS));
  });

  test("a message over 32 KB is rejected with its key, before sending; the rest goes", async () => {
    await e2e.db.query(
      `update companies set name = repeat('x', 40000) where id = 'g007'; update companies set seats = seats + 1`,
    );
    const from = receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "rejected");
    assert.equal(summary.rejected, 1);
    assert.match(
      readFileSync(join(e2e.dir, "state", "s", "rejects.jsonl"), "utf8"),
      /"key":"g007".*over the limit of 32768/,
    );
    assert.ok(
      receiver.requests.slice(from).every((request) => request.status === 200),
      "Segment never saw it",
    );
    assert.ok(receiver.requests.slice(from).every((request) => request.bytes <= 500 * 1024));
  });

  test("401 stops the run with a message about the write key, never the key itself", async () => {
    await e2e.db.query(`update companies set name = 'G7' where id = 'g007'`);
    receiver.fail({ status: 401 });
    const summary = await e2e.run();
    assert.equal(summary.status, "failed");
    assert.match(summary.error?.message ?? "", /write key/);
    assert.doesNotMatch(JSON.stringify([summary, e2e.logs]), new RegExp(WRITE_KEY));
    assert.equal((await e2e.run()).status, "ok");
    assert.deepEqual(held(receiver), await expected(e2e, TRAITS));
  });
});

describe("Segment options", () => {
  test("unset_as_null: false skips unsets (reported), and the old value stays", async () => {
    const { receiver, e2e } = await start({ extra: "    unset_as_null: false\n" });
    try {
      await e2e.run();
      await e2e.db.query(`update companies set plan = null where id = 'acme'`);
      const summary = await e2e.run();
      assert.equal(summary.skipped, 1);
      assert.match(summary.skipped_reasons?.join() ?? "", /unset_as_null/);
      assert.equal(held(receiver).acme?.plan, "enterprise");
      assert.equal((await e2e.run()).skipped, 1, "planned again: never recorded as applied");
    } finally {
      await receiver.close();
      await e2e.dispose();
    }
  });

  test("without anonymous_id, a row whose user_id is empty is rejected with its key", async () => {
    const receiver = await startSegmentReceiver({ writeKey: WRITE_KEY });
    const e2e = await startDestinationE2E({
      destination: destinationYaml(receiver).replace("    anonymous_id: groupsync-e2e\n", ""),
      mapping: MAPPING,
      env: { SEG_KEY: WRITE_KEY },
    });
    try {
      await e2e.db.query(`create table companies (id text, owner text, name text, plan text, seats int);
        insert into companies values ('a', 'u1', 'A', null, 1), ('b', '', 'B', null, 2)`);
      const summary = await e2e.run();
      assert.equal(summary.status, "rejected");
      assert.equal(summary.rejected, 1);
      assert.match(readFileSync(join(e2e.dir, "state", "s", "rejects.jsonl"), "utf8"), /"key":"b".*no userId/);
      assert.deepEqual(Object.keys(held(receiver)), ["a"]);
    } finally {
      await receiver.close();
      await e2e.dispose();
    }
  });
});
