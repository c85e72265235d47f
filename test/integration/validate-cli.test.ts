/**
 * `groupsync validate` as CI runs it (a child process of bin/groupsync.js): human, JSON and GitHub Actions output on
 * broken configs, unset variables reported as needed (or errors with --strict-env), `--check-source` against a real
 * PostgreSQL, and `groupsync schema`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin/groupsync.js");
const fixtures = "test/fixtures/config";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: root, env: { ...clean(process.env), GROUPSYNC_LOG_LEVEL: "warn", ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The environment without the variables the fixtures reference, as on a CI runner without secrets. */
function clean(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(([name, value]) => value !== undefined && !name.startsWith("TEST_")),
  ) as Record<string, string>;
}

describe("validate: broken configs in three formats", () => {
  const broken = ["validate", "--config", `${fixtures}/mapping-errors.yaml`];

  test("human: every issue with file:line:column on stderr, exit 2", async () => {
    const result = await cli(broken);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /^error: test\/fixtures\/config\/mappings\/bad-type\.yaml:3:11 group_id: must name a column/m,
    );
    assert.match(result.stderr, /bad-type\.yaml:7:33 properties\.arr\.type: expected one of string, number/);
    assert.match(result.stderr, /dollar-property\.yaml:7:3 properties\.\$emial: .*did you mean "\$email"/);
  });

  test("json (--json): valid false, every issue with its position, exit 2", async () => {
    const result = await cli([...broken, "--json"]);
    assert.equal(result.code, 2);
    const report = JSON.parse(result.stdout);
    assert.equal(report.valid, false);
    assert.equal(report.issues.length, 6);
    assert.deepEqual(
      { file: report.issues[0].file, line: report.issues[0].line, column: report.issues[0].column },
      { file: `${fixtures}/mappings/bad-type.yaml`, line: 3, column: 11 },
    );
    assert.equal(report.error.code, "CONFIG_INVALID", "the shape every command prints on error");
  });

  test("github: one ::error annotation per issue, at its file and line, with special characters escaped", async () => {
    const result = await cli([...broken, "--format", "github"]);
    assert.equal(result.code, 2);
    const lines = result.stdout.trim().split("\n");
    assert.equal(lines.length, 6);
    assert.equal(
      lines[0],
      `::error file=${fixtures}/mappings/bad-type.yaml,line=3,col=11,title=groupsync validate::group_id: must name a column; it is empty or blank`,
    );
    for (const line of lines) assert.match(line, /^::error file=[^,]+,line=\d+,col=\d+,title=groupsync validate::\S/);
  });

  test("unset variables are warnings (would need …), not errors, unless --strict-env", async () => {
    const config = ["validate", "--config", `${fixtures}/missing-env.yaml`, "--format", "github"];
    const github = await cli(config);
    assert.equal(github.code, 0);
    assert.match(github.stdout, /^::warning title=groupsync validate::would need TEST_MP_TOKEN: not set in this job/m);
    const strict = await cli([...config, "--strict-env"]);
    assert.equal(strict.code, 2);
    assert.match(
      strict.stdout,
      /^::error file=[^:]+missing-env\.yaml,line=9,col=20,title=groupsync validate::destinations\.mixpanel\.project_token: environment variable TEST_MP_TOKEN is not set/m,
    );
  });

  test("schema: a JSON Schema for sync.config.yaml and one for mapping files", async () => {
    const config = JSON.parse((await cli(["schema"])).stdout);
    assert.equal(config.$schema, "https://json-schema.org/draft/2020-12/schema");
    const sync = config.properties.syncs.additionalProperties;
    assert.deepEqual(Object.keys(sync.properties).slice(0, 4), ["source", "destination", "mapping", "mode"]);
    assert.equal(sync.properties.timezone.default, "UTC");
    const postgres = config.properties.sources.additionalProperties.oneOf.find(
      (option: { properties: { type: { const: string } } }) => option.properties.type.const === "postgres",
    );
    assert.equal(postgres.properties.url.type, "string", "a secret is a string on the input side");
    assert.match(postgres.properties.url.description, /A secret/);
    assert.ok(
      postgres.properties.fetch_size.anyOf.some((option: { pattern?: string }) => option.pattern),
      "${VAR} allowed",
    );
  });
});

describe("validate --check-source", () => {
  let db: TestDatabase;
  let dir: string;
  before(async () => {
    db = await createTestDatabase();
    await db.query(`create table companies (id text, name text, updated_at timestamptz, tags jsonb);
      insert into companies values ('a', 'A', now(), null), ('b', 'B', now(), null), ('b', 'B2', now(), null),
        ('c', 'C', now(), null), ('c', 'C2', now(), null), ('c', 'C3', now(), null), (null, 'X', now(), null),
        ('  ', 'Y', now(), null)`);
    dir = mkdtempSync(join(tmpdir(), "groupsync-validate-"));
    writeFileSync(
      join(dir, "sync.config.yaml"),
      `version: 1
sources:
  db: { type: postgres, url: "\${DB_URL}" }
destinations:
  mp: { type: mixpanel, project_token: "\${MP_TOKEN:-t}" }
syncs:
  ok: { source: db, destination: mp, mapping: ok.yaml }
  missing: { source: db, destination: mp, mapping: missing.yaml }
`,
    );
    writeFileSync(
      join(dir, "ok.yaml"),
      "from: companies\ngroup_key: company\ngroup_id: id\ncursor: updated_at\nproperties:\n  name: name\n",
    );
    writeFileSync(
      join(dir, "missing.yaml"),
      "from: companies\ngroup_key: company\ngroup_id: id\ncursor: tags\nproperties:\n  plan: plan\n",
    );
  });
  after(() => db.dispose());

  test("counts NULL and duplicated Group IDs, and finds missing columns and unusable cursors, at their lines", async () => {
    const args = ["validate", "--check-source", "--config", join(dir, "sync.config.yaml")];
    const result = await cli([...args, "--json"], { DB_URL: db.url });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const report = JSON.parse(result.stdout);
    const ok = report.sources.find((source: { sync: string }) => source.sync === "ok");
    assert.deepEqual(ok.keys, { rows: 8, nullKeys: 2, duplicateKeys: 2, duplicateRows: 5 });
    assert.deepEqual(
      ok.issues.map((issue: { line: number; message: string }) => [issue.line, issue.message]),
      [
        [3, "2 of 8 rows have a NULL or blank Group ID; they would be rejected"],
        [3, "2 Group ID values appear on more than one row (5 rows); they would be rejected: Group IDs must be unique"],
      ],
    );
    const missing = report.sources.find((source: { sync: string }) => source.sync === "missing");
    assert.deepEqual(
      missing.issues.map((issue: { line: number; message: string }) => [issue.line, issue.message]),
      [
        [6, 'column "plan" does not exist in companies; available columns: id, name, updated_at, tags'],
        [
          4,
          'column "tags" is jsonb, which cannot serve as a cursor; use a timestamp, date or number that rises when a row changes',
        ],
      ],
    );
    const github = await cli([...args, "--format", "github"], { DB_URL: db.url });
    assert.match(
      github.stdout,
      /^::error file=[^,]*ok\.yaml,line=3,col=11,title=groupsync validate::ok: group_id: 2 of 8 rows/m,
    );
  });
});
