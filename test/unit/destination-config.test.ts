/**
 * Config checks of the PostHog and Segment destinations that need the mapping files: PostHog's limit of 5 group
 * types per project, destinations that cannot delete a group in mirror mode, the userId Segment requires, and
 * `user_id` used with a destination that has no use for it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError } from "../../src/errors.js";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes a config with the given destinations and syncs (YAML blocks) and mapping files; loads it. */
async function load(files: { destinations: string; syncs: string; mappings: Record<string, string> }) {
  const dir = mkdtempSync(join(tmpdir(), "groupsync-dest-config-"));
  dirs.push(dir);
  writeFileSync(
    join(dir, "sync.config.yaml"),
    `version: 1
sources:
  db:
    type: postgres
    url: postgres://localhost/x
destinations:
${files.destinations}
syncs:
${files.syncs}
`,
  );
  for (const [name, text] of Object.entries(files.mappings)) writeFileSync(join(dir, name), text);
  return loadConfig(join(dir, "sync.config.yaml"), { env: {} });
}

async function messages(files: Parameters<typeof load>[0]): Promise<string[]> {
  const error = await load(files).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
  return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
}

const mapping = (groupKey: string, extra = "") =>
  `from: t\ngroup_key: ${groupKey}\ngroup_id: id\nproperties:\n  name: name\n${extra}`;
const sync = (name: string, destination: string, file: string, extra = "") =>
  `  ${name}:\n    source: db\n    destination: ${destination}\n    mapping: ${file}\n${extra}`;
const POSTHOG = `  ph:\n    type: posthog\n    project_api_key: phc_abc\n`;

describe("PostHog: at most 5 group types per project", () => {
  const types = ["company", "team", "workspace", "project", "org", "region"];
  test("five group types across the syncs of one project are fine", async () => {
    const loaded = await load({
      destinations: POSTHOG,
      syncs: types
        .slice(0, 5)
        .map((type) => sync(type, "ph", `${type}.yaml`))
        .join(""),
      mappings: Object.fromEntries(types.slice(0, 5).map((type) => [`${type}.yaml`, mapping(type)])),
    });
    assert.equal(loaded.syncs.length, 5);
  });
  test("a sixth is an error naming every group type and its syncs, even through two destinations", async () => {
    const found = await messages({
      destinations: `${POSTHOG}  ph2:\n    type: posthog\n    project_api_key: phc_abc\n    batch_size: 10\n`,
      syncs: types.map((type, i) => sync(type, i % 2 ? "ph2" : "ph", `${type}.yaml`)).join(""),
      mappings: Object.fromEntries(types.map((type) => [`${type}.yaml`, mapping(type)])),
    });
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0]!, /^destinations\.ph: 6 group types .*company \(company\).*region \(region\).*at most 5/);
  });
  test("two projects each hold their own five", async () => {
    const loaded = await load({
      destinations: `${POSTHOG}  other:\n    type: posthog\n    project_api_key: phc_other\n`,
      syncs: types.map((type, i) => sync(type, i < 3 ? "ph" : "other", `${type}.yaml`)).join(""),
      mappings: Object.fromEntries(types.map((type) => [`${type}.yaml`, mapping(type)])),
    });
    assert.equal(loaded.syncs.length, 6);
  });
});

describe("mirror mode with destinations that cannot delete a group", () => {
  for (const [type, block] of [
    ["posthog", POSTHOG],
    ["segment", `  ph:\n    type: segment\n    write_key: wk\n    anonymous_id: groupsync\n`],
  ] as const) {
    test(`${type}: on_delete delete (the default) is an error; unset and ignore are fine`, async () => {
      const found = await messages({
        destinations: block,
        syncs: sync("s", "ph", "m.yaml", "    mode: mirror\n"),
        mappings: { "m.yaml": mapping("company") },
      });
      assert.equal(found.length, 1, found.join("\n"));
      assert.match(found[0]!, /^syncs\.s\.mode: .*no .*deletes .*on_delete: unset/);
      const explicit = await messages({
        destinations: block,
        syncs: sync("s", "ph", "m.yaml", "    mode: mirror\n"),
        mappings: { "m.yaml": mapping("company", "on_delete: delete\n") },
      });
      assert.match(explicit[0]!, /^on_delete: sync "s" mirrors/);
      for (const onDelete of ["unset", "ignore"]) {
        const loaded = await load({
          destinations: block,
          syncs: sync("s", "ph", "m.yaml", "    mode: mirror\n"),
          mappings: { "m.yaml": mapping("company", `on_delete: ${onDelete}\n`) },
        });
        assert.equal(loaded.syncs[0]?.mapping.on_delete, onDelete);
      }
    });
  }
});

describe("Segment's userId or anonymousId", () => {
  test("neither a user_id column nor an anonymous_id is an error", async () => {
    const found = await messages({
      destinations: "  seg:\n    type: segment\n    write_key: wk\n",
      syncs: sync("s", "seg", "m.yaml"),
      mappings: { "m.yaml": mapping("company") },
    });
    assert.equal(found.length, 1);
    assert.match(found[0]!, /^syncs\.s\.destination: Segment requires a userId or an anonymousId/);
  });
  test("a user_id column, or an anonymous_id, is enough", async () => {
    const withColumn = await load({
      destinations: "  seg:\n    type: segment\n    write_key: wk\n",
      syncs: sync("s", "seg", "m.yaml"),
      mappings: { "m.yaml": mapping("company", "user_id: owner_id\n") },
    });
    assert.equal(withColumn.syncs[0]?.mapping.user_id, "owner_id");
    const withAnonymous = await load({
      destinations: "  seg:\n    type: segment\n    write_key: wk\n    anonymous_id: groupsync\n    region: eu\n",
      syncs: sync("s", "seg", "m.yaml"),
      mappings: { "m.yaml": mapping("company") },
    });
    const config = withAnonymous.syncs[0]?.destination.config;
    assert.ok(config?.type === "segment");
    assert.equal(config.region, "eu");
    assert.equal(config.unset_as_null, true);
  });
  test("user_id with a destination other than Segment is an error", async () => {
    const found = await messages({
      destinations: POSTHOG,
      syncs: sync("s", "ph", "m.yaml"),
      mappings: { "m.yaml": mapping("company", "user_id: owner_id\n") },
    });
    assert.equal(found.length, 1);
    assert.match(found[0]!, /^user_id: user_id names the user of Segment group calls.*posthog/);
  });
});

describe("per-property options each destination supports", () => {
  const OPTIONS = `  plan: { column: plan, nulls: keep }\n  synced_by: { value: groupsync }\n`;
  const REFUSED = `  first_plan: { column: plan, op: set_once }\n  tags:\n    column: tags\n    op: union\n`;
  const SEGMENT = "  seg:\n    type: segment\n    write_key: wk\n    anonymous_id: groupsync\n";

  for (const [type, destinations] of [
    ["posthog", POSTHOG],
    ["segment", SEGMENT],
  ] as const) {
    const name = type === "posthog" ? "ph" : "seg";
    test(`${type}: value constants and nulls: keep are accepted`, async () => {
      const loaded = await load({
        destinations,
        syncs: sync("s", name, "m.yaml"),
        mappings: { "m.yaml": mapping("company").replace("  name: name\n", `  name: name\n${OPTIONS}`) },
      });
      assert.deepEqual(loaded.syncs[0]?.mapping.properties.synced_by, { value: "groupsync" });
    });
    test(`${type}: op set_once and op union are refused with file, line and key`, async () => {
      const error = await load({
        destinations,
        syncs: sync("s", name, "m.yaml"),
        mappings: { "m.yaml": mapping("company").replace("  name: name\n", `  name: name\n${REFUSED}`) },
      }).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      assert.ok(error instanceof ConfigError, String(error));
      const found = error.issues.map((issue) => [issue.file.endsWith("m.yaml"), issue.line, issue.path, issue.message]);
      assert.equal(found.length, 2, JSON.stringify(found));
      assert.deepEqual(found[0]!.slice(0, 3), [true, 6, "properties.first_plan.op"]);
      assert.match(
        String(found[0]![3]),
        new RegExp(`op: set_once cannot be used with destination "${name}".*use op: set`),
      );
      assert.deepEqual(found[1]!.slice(0, 3), [true, 9, "properties.tags.op"]);
      assert.match(String(found[1]![3]), /op: union cannot be used .*use op: set to send the whole list/);
    });
  }

  test("mixpanel takes every option", async () => {
    const loaded = await load({
      destinations: "  mp:\n    type: mixpanel\n    project_token: tok\n",
      syncs: sync("s", "mp", "m.yaml"),
      mappings: {
        "m.yaml": mapping("company").replace(
          "  name: name\n",
          `  name: name\n${OPTIONS}${REFUSED}    keep_removed: true\n  sources: { value: [warehouse], op: union }\n`,
        ),
      },
    });
    assert.equal(loaded.syncs[0]?.mapping.properties.tags && typeof loaded.syncs[0].mapping.properties.tags, "object");
  });

  test("mapping errors: column and value together, keep_removed without union, a list constant without union", async () => {
    const found = await messages({
      destinations: "  mp:\n    type: mixpanel\n    project_token: tok\n",
      syncs: sync("s", "mp", "m.yaml"),
      mappings: {
        "m.yaml": mapping("company").replace(
          "  name: name\n",
          "  a: { column: x, value: 1 }\n  b: { column: y, keep_removed: true }\n  c: { value: [x] }\n  d: { op: set }\n",
        ),
      },
    });
    assert.deepEqual(found, [
      "properties.a.value: give exactly one of `column` (a warehouse column) or `value` (a constant)",
      "properties.b.keep_removed: only applies to op: union (items that left the list); remove it or set op: union",
      "properties.c.value: a list constant needs op: union (or write it as a column)",
      "properties.d: give exactly one of `column` (a warehouse column) or `value` (a constant)",
    ]);
  });
});
