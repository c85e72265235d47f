/**
 * End-to-end: the per-property options of a mapping (op: set_once, op: union with keep_removed, value constants,
 * nulls: keep) across several runs, PostgreSQL → engine → local Mixpanel receiver. Another writer (an SDK in the
 * product) changes the same profiles through the receiver's /groups endpoint between runs.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type E2E, startE2E, TOKEN } from "../helpers/e2e.js";

const MAPPING = `
from: public.accounts
group_key: company
group_id: id
properties:
  plan: { column: plan, nulls: keep }
  owner: owner
  first_plan: { column: plan, op: set_once }
  features: { column: features, op: union }
  badges: { column: badges, op: union, keep_removed: true }
  synced_by: { value: groupsync }
  sources: { value: [warehouse], op: union }
`;

/** Sends updates to the receiver as another writer would (Mixpanel's /groups API with the project token). */
async function otherWriter(e2e: E2E, ...updates: Record<string, unknown>[]): Promise<void> {
  const body = JSON.stringify(updates.map((update) => ({ $token: TOKEN, $group_key: "company", ...update })));
  const response = await fetch(`${e2e.receiver.url}/groups?strict=1&verbose=2`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  assert.equal(response.status, 200, await response.text());
}

function updatesSince(e2e: E2E, from: number) {
  return e2e.receiver.requests.slice(from).flatMap((request) => request.updates.map(({ $token: _t, ...rest }) => rest));
}

describe("per-property operations through the Mixpanel receiver", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING });
    await e2e.db.query(`
      create table accounts (id text primary key, plan text, owner text, features text[], badges text[]);
      insert into accounts values
        ('acme', 'growth', 'ann', '{sso,audit}', '{early}'),
        ('globex', null, null, null, null);
    `);
  });
  after(() => e2e.dispose());

  test("first run: $set, $set_once, $union, constants", async () => {
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    const updates = updatesSince(e2e, 0);
    const acme = updates.filter((update) => update.$group_id === "acme");
    assert.deepEqual(
      acme.map((update) => Object.keys(update).find((key) => key.startsWith("$") && !key.startsWith("$group")))?.sort(),
      ["$set", "$set_once", "$union"],
      "one operation per update object",
    );
    assert.deepEqual(acme.find((update) => "$union" in update)?.$union, {
      features: ["sso", "audit"],
      badges: ["early"],
      sources: ["warehouse"],
    });
    assert.deepEqual(e2e.profiles(), {
      acme: {
        plan: "growth",
        owner: "ann",
        synced_by: "groupsync",
        first_plan: "growth",
        features: ["sso", "audit"],
        badges: ["early"],
        sources: ["warehouse"],
      },
      globex: { synced_by: "groupsync", sources: ["warehouse"] },
    });
  });

  test("a second run with nothing changed sends nothing", async () => {
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok");
    assert.equal(summary.unchanged, 2);
    assert.deepEqual(updatesSince(e2e, from), []);
  });

  test("added and removed items; another writer's item survives; set_once is never overwritten", async () => {
    await otherWriter(e2e, { $group_id: "acme", $union: { features: ["beta-from-sdk"] } });
    await e2e.db.query(
      "update accounts set plan = 'enterprise', features = '{audit,scim}', badges = '{}' where id = 'acme'",
    );
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    const updates = updatesSince(e2e, from);
    assert.deepEqual(
      updates.map(({ $group_key: _k, ...rest }) => rest),
      [
        { $group_id: "acme", $set: { plan: "enterprise" } },
        { $group_id: "acme", $union: { features: ["scim"] } },
        { $group_id: "acme", $remove: { features: "sso" } },
      ],
      "only the added item is unioned, the removed one removed alone; keep_removed sends nothing; set_once nothing",
    );
    assert.deepEqual(e2e.profiles().acme, {
      plan: "enterprise",
      owner: "ann",
      synced_by: "groupsync",
      first_plan: "growth",
      features: ["audit", "beta-from-sdk", "scim"],
      badges: ["early"],
      sources: ["warehouse"],
    });
  });

  test("nulls: keep keeps the value, default nulls unset; a null list removes only groupsync's items", async () => {
    await e2e.db.query("update accounts set plan = null, owner = null, features = null where id = 'acme'");
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    const updates = updatesSince(e2e, from).map(({ $group_key: _k, $group_id: _id, ...rest }) => rest);
    assert.deepEqual(
      updates.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [{ $remove: { features: "audit" } }, { $remove: { features: "scim" } }, { $unset: ["owner"] }],
    );
    assert.deepEqual(e2e.profiles().acme, {
      plan: "enterprise",
      synced_by: "groupsync",
      first_plan: "growth",
      features: ["beta-from-sdk"],
      badges: ["early"],
      sources: ["warehouse"],
    });
  });

  test("set_once: a value that appears later is set once; a deleted value is not re-set", async () => {
    await e2e.db.query("update accounts set plan = 'free' where id = 'globex'");
    await otherWriter(e2e, { $group_id: "acme", $unset: ["first_plan"] });
    await e2e.db.query("update accounts set plan = 'pro' where id = 'acme'");
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    const updates = updatesSince(e2e, from).map(({ $group_key: _k, ...rest }) => rest);
    assert.deepEqual(
      updates.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        { $group_id: "acme", $set: { plan: "pro" } },
        { $group_id: "globex", $set_once: { first_plan: "free" } },
        { $group_id: "globex", $set: { plan: "free" } },
      ],
    );
    assert.equal(e2e.profiles().acme?.first_plan, undefined, "groupsync set it once; it is not set again");
    assert.equal(e2e.profiles().globex?.first_plan, "free");
  });

  test("changing a constant re-sends it; a list constant's new item is unioned", async () => {
    e2e.setMapping(
      MAPPING.replace("value: groupsync", "value: groupsync-v2").replace(
        "value: [warehouse]",
        "value: [warehouse, crm]",
      ),
    );
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    const updates = updatesSince(e2e, from).filter((update) => update.$group_id === "globex");
    assert.deepEqual(
      updates.map(({ $group_key: _k, $group_id: _id, ...rest }) => rest),
      [{ $set: { synced_by: "groupsync-v2" } }, { $union: { sources: ["crm"] } }],
    );
    assert.deepEqual(e2e.profiles().globex?.sources, ["warehouse", "crm"]);
  });

  test("a failed $remove is retried by the next run", async () => {
    await e2e.db.query("update accounts set features = '{a,b}' where id = 'globex'");
    assert.equal((await e2e.run()).status, "ok");
    await e2e.db.query("update accounts set features = '{a}' where id = 'globex'");
    e2e.receiver.rejectWhen((update) => ("$remove" in update ? "refused for the test" : undefined));
    const failed = await e2e.run();
    assert.equal(failed.rejected, 1);
    e2e.receiver.rejectWhen(() => undefined);
    const from = e2e.receiver.requests.length;
    assert.equal((await e2e.run()).status, "ok");
    assert.deepEqual(
      updatesSince(e2e, from).map(({ $group_key: _k, ...rest }) => rest),
      [{ $group_id: "globex", $remove: { features: "b" } }],
    );
    assert.deepEqual(e2e.profiles().globex?.features, ["a"]);
  });
  test("changing a list from op: union to op: set sends the whole list; back to union re-adds without removing", async () => {
    await e2e.db.query("update accounts set features = '{a,c}' where id = 'globex'");
    // The constants as the test before left them.
    const current = MAPPING.replace("value: groupsync", "value: groupsync-v2").replace(
      "value: [warehouse]",
      "value: [warehouse, crm]",
    );
    e2e.setMapping(current.replace("features: { column: features, op: union }", "features: features"));
    let from = e2e.receiver.requests.length;
    assert.equal((await e2e.run()).status, "ok");
    assert.deepEqual(
      updatesSince(e2e, from)
        .filter((update) => update.$group_id === "globex")
        .map(({ $group_key: _k, $group_id: _id, ...rest }) => rest),
      [{ $set: { features: ["a", "c"] } }],
    );
    e2e.setMapping(current);
    await e2e.db.query("update accounts set features = '{c}' where id = 'globex'");
    from = e2e.receiver.requests.length;
    assert.equal((await e2e.run()).status, "ok");
    assert.deepEqual(
      updatesSince(e2e, from)
        .filter((update) => update.$group_id === "globex")
        .map(({ $group_key: _k, $group_id: _id, ...rest }) => rest),
      [{ $union: { features: ["c"] } }],
      "items recorded under op: union before the switch are forgotten: nothing is removed",
    );
  });
});

describe("a $union whose answer was lost", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({
      mapping:
        "from: public.accounts\ngroup_key: company\ngroup_id: id\nproperties:\n  features: { column: features, op: union }\n",
      destinationExtra: "    max_retries: 1",
    });
    await e2e.db.query(
      "create table accounts (id text primary key, features text[]); insert into accounts values ('acme', '{a}')",
    );
  });
  after(() => e2e.dispose());

  test("its items count as maybe added: when one leaves the list, the next run removes it", async () => {
    assert.equal((await e2e.run()).status, "ok");
    await e2e.db.query("update accounts set features = '{a,b}'");
    // Every attempt is applied, but answered after the 2 s timeout: the run cannot know that "b" arrived. undici checks
    // timeouts on a coarse clock (about 0.5–1 s), so the answer comes well past it: at 2.5 s it sometimes came first
    // on a loaded machine (a clean-clone CI run saw the run succeed).
    e2e.receiver.fail({ delayMs: 4000 }, { delayMs: 4000 });
    const lost = await e2e.run();
    assert.equal(lost.status, "failed");
    assert.deepEqual(e2e.profiles().acme?.features, ["a", "b"]);
    e2e.receiver.clearFaults();
    await e2e.db.query("update accounts set features = '{a}'");
    const from = e2e.receiver.requests.length;
    assert.equal((await e2e.run()).status, "ok");
    assert.deepEqual(
      updatesSince(e2e, from).map(({ $group_key: _k, ...rest }) => rest),
      [{ $group_id: "acme", $remove: { features: "b" } }],
    );
    assert.deepEqual(e2e.profiles().acme?.features, ["a"]);
  });
});
