/**
 * Bad and awkward values in the source, end to end (real PostgreSQL, Mixpanel contract receiver): each bad one is
 * rejected with its key and reason, counted and logged, and the rest of the run is unharmed; awkward but valid ones
 * (separators in Group IDs, very long IDs, big integers, long strings) arrive exactly.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { startE2E } from "../helpers/e2e.js";

const MAPPING = `from: t
group_key: company
group_id: id
properties:
  name: name
  big: big
  ratio: ratio
  doc: doc
`;

test("bad values are rejected with key and reason, awkward IDs and values arrive exactly, the rest goes on", async () => {
  const e2e = await startE2E({ mapping: MAPPING, mode: "mirror" });
  try {
    const longId = `L${"é".repeat(999)}`;
    const deep = `${"[".repeat(150)}1${"]".repeat(150)}`;
    await e2e.db.query(`create table t (id text, name text, big int8, ratio float8, doc json)`);
    await e2e.db.query(
      `insert into t values
        ('a|b', 'pipe', 1, 0.5, '{"k": [1, "two"]}'),
        ('x:y', 'colon', 2, null, null),
        ('$company:acme', 'prefixed, not hierarchical', 3, null, null),
        ($1, 'very long id', 9007199254740993, null, null),
        ('long', repeat('s', 300), null, null, null),
        ('nan', 'NaN ratio', null, 'NaN', null),
        ('inf', 'infinite ratio', null, '-Infinity', null),
        ('deep', 'deep json', null, null, $2),
        ('surrogate', 'lone surrogate', null, null, '{"a": "\\ud800"}'),
        ('ok', 'fine', 4, 1.25, '{"nested": {"depth": [2]}}')`,
      [longId, deep],
    );
    const summary = await e2e.run();
    assert.equal(summary.status, "rejected", JSON.stringify(summary.error));
    assert.equal(summary.rejected, 4);
    const profiles = new Map<string, Record<string, unknown>>();
    for (const [key, properties] of e2e.receiver.profiles())
      profiles.set(key.split("|").slice(2).join("|"), properties);
    assert.deepEqual(profiles.get("a|b"), { name: "pipe", big: 1, ratio: 0.5, doc: { k: [1, "two"] } });
    assert.deepEqual(profiles.get("x:y"), { name: "colon", big: 2 });
    assert.deepEqual(profiles.get("$company:acme"), { name: "prefixed, not hierarchical", big: 3 });
    assert.deepEqual(
      profiles.get(longId),
      { name: "very long id", big: "9007199254740993" },
      "int8 past 2^53 is sent as its exact digits",
    );
    assert.equal(String(profiles.get("long")?.name).length, 300, "a long string is sent whole");
    assert.deepEqual(profiles.get("ok"), { name: "fine", big: 4, ratio: 1.25, doc: { nested: { depth: [2] } } });
    for (const bad of ["nan", "inf", "deep", "surrogate"]) assert.ok(!profiles.has(bad), `${bad} was not sent`);

    const rejects = readFileSync(join(e2e.dir, "state", "s", "rejects.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { key: string; reason: string });
    const reason = (key: string) => rejects.find((line) => line.key === key)?.reason ?? "(none)";
    assert.match(reason("nan"), /property ratio: .*NaN or Infinity/);
    assert.match(reason("inf"), /property ratio: .*NaN or Infinity/);
    assert.match(reason("deep"), /property doc: .*nested more than 100 levels deep/);
    assert.match(reason("surrogate"), /property doc: .*lone surrogate/);
    const warning = e2e.logs.find((line) => line.property === "name" && line.length === 300);
    assert.match(String(warning?.msg), /group long is 300 characters long; mixpanel keeps only the first 255/);
    assert.ok(
      e2e.logs.some((line) => line.key === "deep" && /nested more than/.test(String(line.reason))),
      "a rejection is logged with its key",
    );

    // A rerun sends nothing for the good groups (the state handles every awkward ID), retries the bad ones.
    const again = await e2e.run();
    assert.equal(again.rejected, 4);
    assert.equal(again.unchanged, 6);
    assert.equal(again.requests, 0);
    // Mirror deletes reach awkward IDs too.
    await e2e.db.query(`delete from t where id in ('a|b', $1)`, [longId]);
    const deleted = await e2e.run();
    assert.equal(deleted.groups_deleted, 2);
    const left = [...e2e.receiver.profiles().keys()].map((key) => key.split("|").slice(2).join("|")).sort();
    assert.deepEqual(left, ["$company:acme", "long", "ok", "x:y"]);
  } finally {
    await e2e.dispose();
  }
});
