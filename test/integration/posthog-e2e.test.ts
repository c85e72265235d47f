/**
 * End-to-end: PostgreSQL table → engine → local PostHog (capture + Groups REST API), across runs. The core case
 * list, then what only PostHog has: unsets through the REST API or skipped without a personal key, mirror mode
 * through on_delete: unset, and the 5-group-type limit seen at run time.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type PostHogReceiver, startPostHogReceiver } from "../../connectors/posthog/contract-receiver.js";
import { formatSummary } from "../../src/cli/format.js";
import { type DestinationE2E, startDestinationE2E } from "../helpers/destination-e2e.js";

const PROJECT_KEY = "phc_e2e_project_key_123456";
const PERSONAL_KEY = "phx_e2e_personal_key_654321";
const MAPPING = `from: companies
group_key: company
group_id: id
properties:
  name: name
  plan: plan
  seats: seats
on_delete: unset
`;

const destinationYaml = (receiver: PostHogReceiver, personal: boolean) =>
  `    type: posthog
    project_api_key: \${PH_KEY}
    host: ${receiver.url}
    batch_size: 20
    timeout: 2s
${personal ? "    personal_api_key: ${PH_PERSONAL}\n    project_id: 7\n" : ""}`;

async function start(options: { personal: boolean; mode?: "upsert" | "mirror"; groupTypes?: string[] }) {
  const receiver = await startPostHogReceiver({
    projectApiKey: PROJECT_KEY,
    personalApiKey: PERSONAL_KEY,
    projectId: "7",
    ...(options.groupTypes ? { groupTypes: options.groupTypes } : {}),
  });
  const e2e = await startDestinationE2E({
    destination: destinationYaml(receiver, options.personal),
    mapping: MAPPING,
    mode: options.mode ?? "upsert",
    env: { PH_KEY: PROJECT_KEY, PH_PERSONAL: PERSONAL_KEY },
  });
  await e2e.db.query(`
    create table companies (id text primary key, name text, plan text, seats int);
    insert into companies values ('acme', 'Acme', 'enterprise', 50), ('globex', 'Globex', 'growth', 10),
      ('initech', 'Initech', null, 3), ('umbrella', 'Umbrella', 'enterprise', 400);
  `);
  return { receiver, e2e };
}

/** What PostHog must hold, computed from the table independently of the engine (null = never set or removed). */
async function expected(e2e: DestinationE2E, columns = ["name", "plan", "seats"]) {
  const { rows } = await e2e.db.query(`select * from companies`);
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of rows) {
    const group: Record<string, unknown> = {};
    for (const column of columns) if (row[column] !== null) group[column] = row[column];
    out[`company|${row.id}`] = group;
  }
  return out;
}

const held = (receiver: PostHogReceiver) => Object.fromEntries(receiver.groups());
const since = (receiver: PostHogReceiver, from: number) => receiver.requests.slice(from);

describe("PostHog with a personal API key: the core case list", () => {
  let receiver: PostHogReceiver;
  let e2e: DestinationE2E;
  before(async () => ({ receiver, e2e } = await start({ personal: true })));
  after(async () => {
    await receiver.close();
    await e2e.dispose();
  });

  test("first sync: one $groupidentify per group through /batch/, with the project API key", async () => {
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.groups_created, 4);
    assert.deepEqual(held(receiver), await expected(e2e));
    const captures = receiver.requests.filter((request) => request.kind === "capture");
    const events = captures.flatMap((request) => request.events);
    assert.equal(events.length, 4);
    assert.deepEqual(
      events.find((event) => (event.properties as Record<string, unknown>).$group_key === "initech"),
      {
        event: "$groupidentify",
        distinct_id: "$company_initech",
        properties: {
          $group_type: "company",
          $group_key: "initech",
          $group_set: { name: "Initech", seats: 3 },
          $lib: "groupsync",
        },
      },
    );
    assert.deepEqual(receiver.groupTypes(), ["company"]);
    assert.deepEqual(receiver.dropped, [], "ingestion dropped nothing");
  });

  test("a property changes: just that property is sent", async () => {
    await e2e.db.query(`update companies set seats = 55 where id = 'acme'`);
    const from = receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.groups_updated, 1);
    const events = since(receiver, from).flatMap((request) => request.events);
    assert.deepEqual(
      events.map((event) => (event.properties as Record<string, unknown>).$group_set),
      [{ seats: 55 }],
    );
    assert.deepEqual(held(receiver), await expected(e2e));
  });

  test("a property becomes null: removed with delete_property (the REST API), once", async () => {
    await e2e.db.query(`update companies set plan = null where id = 'globex'`);
    const from = receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.properties_unset, 1);
    assert.equal(summary.skipped, 0);
    const calls = since(receiver, from).filter((request) => request.path.includes("delete_property"));
    assert.deepEqual(
      calls.map((request) => [request.path, request.body, request.status]),
      [["/api/projects/7/groups/delete_property/?group_type_index=0&group_key=globex", { $unset: "plan" }, 200]],
    );
    assert.deepEqual(held(receiver), await expected(e2e));
    const again = receiver.requests.length;
    await e2e.run();
    assert.equal(receiver.requests.length, again, "null staying null sends nothing");
  });

  test("the mapping gains a property (sent) and loses one (removed from every group that had it)", async () => {
    await e2e.db.query(
      `alter table companies add column region text; update companies set region = 'emea' where id = 'acme'`,
    );
    e2e.setMapping(MAPPING.replace("  seats: seats\n", "  region: region\n"));
    const from = receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    const requests = since(receiver, from);
    assert.deepEqual(
      requests
        .flatMap((request) => request.events)
        .map((event) => (event.properties as Record<string, unknown>).$group_set),
      [{ region: "emea" }],
    );
    assert.deepEqual(
      requests
        .filter((request) => request.path.includes("delete_property"))
        .map((request) => (request.body as Record<string, unknown>).$unset),
      ["seats", "seats", "seats", "seats"],
    );
    assert.deepEqual(held(receiver), await expected(e2e, ["name", "plan", "region"]));
  });

  test("plan shows the events it would send and sends nothing", async () => {
    await e2e.db.query(`update companies set name = 'Acme Corp' where id = 'acme'`);
    const from = receiver.requests.length;
    const plan = await e2e.plan();
    assert.deepEqual(plan.samples, [
      {
        event: "$groupidentify",
        distinct_id: "$company_acme",
        properties: {
          $group_type: "company",
          $group_key: "acme",
          $group_set: { name: "Acme Corp" },
          $lib: "groupsync",
        },
      },
    ]);
    assert.equal(receiver.requests.length, from);
    await e2e.run();
    assert.deepEqual(held(receiver), await expected(e2e, ["name", "plan", "region"]));
  });
});

describe("PostHog mirror mode (on_delete: unset)", () => {
  test("a row that disappears has its properties removed through the REST API; the empty group stays", async () => {
    const { receiver, e2e } = await start({ personal: true, mode: "mirror" });
    try {
      await e2e.db.query(
        `insert into companies select 'extra-' || i, 'Extra', 'starter', i from generate_series(1, 6) i`,
      );
      assert.equal((await e2e.run()).status, "ok");
      await e2e.db.query(`delete from companies where id = 'initech'`);
      const from = receiver.requests.length;
      const summary = await e2e.run();
      assert.equal(summary.status, "ok", JSON.stringify(summary.error));
      assert.equal(summary.groups_deleted, 1);
      assert.deepEqual(
        since(receiver, from)
          .filter((request) => request.path.includes("group_key=initech"))
          .map((request) => (request.body as Record<string, unknown>).$unset)
          .sort(),
        ["name", "seats"],
      );
      assert.deepEqual(held(receiver), { ...(await expected(e2e)), "company|initech": {} });
    } finally {
      await receiver.close();
      await e2e.dispose();
    }
  });
});

describe("PostHog without a personal API key", () => {
  test("unsets are skipped and reported every run, never silently dropped; a personal key then applies them", async () => {
    const { receiver, e2e } = await start({ personal: false });
    try {
      assert.equal((await e2e.run()).status, "ok");
      await e2e.db.query(`update companies set plan = null, seats = 51 where id = 'acme'`);
      const from = receiver.requests.length;
      const summary = await e2e.run();
      assert.equal(summary.status, "ok", JSON.stringify(summary.error));
      assert.equal(summary.skipped, 1);
      assert.equal(summary.properties_unset, 0, "a skipped unset is not counted as applied");
      assert.equal(summary.properties_set, 1);
      assert.match(summary.skipped_reasons?.join() ?? "", /^unset: .*personal_api_key/);
      assert.match(formatSummary(summary), /skipped 1 operations.*\n {4}unset: PostHog ingestion cannot remove/);
      assert.ok(
        since(receiver, from).every((request) => request.kind === "capture"),
        "no REST call without a personal key",
      );
      assert.equal(held(receiver)["company|acme"]?.plan, "enterprise", "PostHog still holds the old value");

      const plan = await e2e.plan();
      assert.equal(plan.skipped, 1, "the state did not advance: the unset is still planned");
      const again = await e2e.run();
      assert.equal(again.skipped, 1);
      assert.equal(again.properties_set, 0, "the acknowledged set is not re-sent");

      e2e.setDestination(destinationYaml(receiver, true));
      const fixed = await e2e.run();
      assert.equal(fixed.status, "ok", JSON.stringify(fixed.error));
      assert.equal(fixed.skipped, 0);
      assert.equal(fixed.properties_unset, 1);
      assert.deepEqual(held(receiver), await expected(e2e));
    } finally {
      await receiver.close();
      await e2e.dispose();
    }
  });
});

describe("PostHog under faults", () => {
  let receiver: PostHogReceiver;
  let e2e: DestinationE2E;
  before(async () => {
    ({ receiver, e2e } = await start({ personal: true }));
    await e2e.db.query(
      `insert into companies select 'g' || lpad(i::text, 3, '0'), 'G' || i, 'p', i from generate_series(1, 96) i`,
    );
  });
  after(async () => {
    await receiver.close();
    await e2e.dispose();
  });

  test("a 429 storm (capture and REST) with Retry-After is waited out and nothing is lost", async () => {
    receiver.fail(
      { status: 429, retryAfter: 1, on: "capture" },
      { status: 429, on: "capture" },
      { status: 429, on: "capture" },
      { status: 429, retryAfter: 1, on: "api" },
    );
    const started = Date.now();
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.ok(summary.retries >= 4, `retries: ${summary.retries}`);
    assert.ok(Date.now() - started >= 1000, "Retry-After was honoured");
    assert.deepEqual(held(receiver), await expected(e2e));
    await e2e.db.query(`update companies set plan = null where id like 'g0%'`);
    receiver.fail({ status: 429, retryAfter: 1, on: "api" }, { status: 429, on: "api" });
    const unsets = await e2e.run();
    assert.equal(unsets.status, "ok", JSON.stringify(unsets.error));
    assert.equal(unsets.properties_unset, 96);
    assert.deepEqual(held(receiver), await expected(e2e));
  });

  test("500s then recovery, with a dropped connection; retried batches do not repeat what was applied", async () => {
    await e2e.db.query(`update companies set seats = seats + 1000; update companies set plan = null where id = 'acme'`);
    receiver.fail({ status: 500 }, { status: 502, on: "capture" }, { status: 503 }, { drop: true });
    const from = receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.groups_updated, 100);
    assert.deepEqual(held(receiver), await expected(e2e));
    const applied = since(receiver, from)
      .filter((request) => request.status === 200)
      .flatMap((request) => request.events);
    assert.equal(applied.length, 100, "each change was ingested exactly once");
  });

  test("one bad record in a batch: the batch is split, the record rejected with its key, the rest applied", async () => {
    await e2e.db.query(
      `update companies set name = 'poison' where id = 'g042'; update companies set seats = seats + 1`,
    );
    receiver.rejectWhen((event) =>
      ((event.properties as Record<string, unknown>).$group_set as Record<string, unknown>).name === "poison"
        ? "event submitted with an invalid property"
        : undefined,
    );
    const summary = await e2e.run();
    receiver.rejectWhen(undefined);
    assert.equal(summary.status, "rejected");
    assert.equal(summary.rejected, 1);
    assert.equal(summary.groups_updated, 99);
    assert.match(readFileSync(join(e2e.dir, "state", "s", "rejects.jsonl"), "utf8"), /"key":"g042".*invalid property/);
    assert.notEqual(held(receiver)["company|g042"]?.name, "poison");
    const next = await e2e.run();
    assert.equal(next.status, "ok");
    assert.deepEqual(held(receiver), await expected(e2e));
  });

  test("401 stops the run with a message about the key, never the key itself", async () => {
    await e2e.db.query(`update companies set seats = seats + 1 where id = 'acme'`);
    receiver.fail({ status: 401, on: "capture" });
    const summary = await e2e.run();
    assert.equal(summary.status, "failed");
    assert.match(summary.error?.message ?? "", /project API key/);
    assert.match(summary.error?.action ?? "", /project_api_key/);
    assert.doesNotMatch(JSON.stringify([summary, e2e.logs]), new RegExp(`${PROJECT_KEY}|${PERSONAL_KEY}`));
    assert.equal((await e2e.run()).status, "ok");
    assert.deepEqual(held(receiver), await expected(e2e));
  });
});

describe("PostHog's 5 group types, at run time", () => {
  test("with a personal key, a sixth group type fails the run before anything is sent", async () => {
    const { receiver, e2e } = await start({ personal: true, groupTypes: ["a", "b", "c", "d", "e"] });
    try {
      const summary = await e2e.run();
      assert.equal(summary.status, "failed");
      assert.match(summary.error?.message ?? "", /already has 5 group types \(a, b, c, d, e\).*dropped silently/);
      assert.equal(receiver.requests.filter((request) => request.kind === "capture").length, 0);
    } finally {
      await receiver.close();
      await e2e.dispose();
    }
  });
});
