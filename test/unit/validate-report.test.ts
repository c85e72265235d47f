import assert from "node:assert/strict";
import { test } from "node:test";
import { validateConfig } from "../../src/cli/validate-command.js";
import { renderValidateReport } from "../../src/cli/validate-output.js";
import { jsonSchema } from "../../src/config/json-schema.js";
import { loadConnectors } from "../../src/connectors.js";

const fixtures = "test/fixtures/config";
const offline = { strictEnv: false, checkSource: false, connectors: loadConnectors, env: {} };

test("an unset variable is needed, not an error; a value that fails only because it is unset too", async () => {
  const report = await validateConfig({ ...offline, config: `${fixtures}/missing-env.yaml` });
  assert.equal(report.valid, true);
  assert.deepEqual(report.needs_env, ["TEST_DATABASE_URL", "TEST_MP_TOKEN", "TEST_MP_REGION"]);
  const human = renderValidateReport(report, "human");
  assert.equal(human.stderr, "");
  assert.match(
    human.stdout,
    /would need TEST_DATABASE_URL, TEST_MP_TOKEN, TEST_MP_REGION \(not set here; runs need them\)/,
  );
  assert.deepEqual(JSON.parse(renderValidateReport(report, "json").stdout).needs_env, report.needs_env);
  const github = renderValidateReport(report, "github").stdout.split("\n");
  assert.deepEqual(github.slice(0, 3), [
    "::warning title=groupsync validate::would need TEST_DATABASE_URL: not set in this job (runs need it)",
    "::warning title=groupsync validate::would need TEST_MP_TOKEN: not set in this job (runs need it)",
    "::warning title=groupsync validate::would need TEST_MP_REGION: not set in this job (runs need it)",
  ]);
  const strict = await validateConfig({ ...offline, strictEnv: true, config: `${fixtures}/missing-env.yaml` });
  assert.equal(strict.valid, false);
  assert.deepEqual(strict.needs_env, []);
  assert.deepEqual(
    strict.issues.map((issue) => issue.path),
    ["sources.warehouse.url", "destinations.mixpanel.project_token", "destinations.mixpanel.region"],
  );
});

test("every broken file is reported in each format, with positions; GitHub data and properties are escaped", async () => {
  const report = await validateConfig({ ...offline, config: `${fixtures}/wrong-types.yaml` });
  assert.equal(report.valid, false);
  const human = renderValidateReport(report, "human");
  assert.equal(human.stdout, "");
  assert.match(human.stderr, /^error: test\/fixtures\/config\/wrong-types\.yaml:1:10 version: /);
  const github = renderValidateReport(report, "github").stdout.split("\n");
  assert.equal(github.length, report.issues.length);
  assert.match(
    github[0]!,
    /^::error file=test\/fixtures\/config\/wrong-types\.yaml,line=1,col=10,title=groupsync validate::version: /,
  );
  const tricky = renderValidateReport(
    {
      valid: false,
      config: "c.yaml",
      syncs: [],
      needs_env: [],
      issues: [{ file: "a,b:c.yaml", line: 2, column: 3, path: "k", message: "50% wrong\nsecond line" }],
    },
    "github",
  );
  assert.equal(
    tricky.stdout,
    "::error file=a%2Cb%3Ac.yaml,line=2,col=3,title=groupsync validate::k: 50%25 wrong%0Asecond line",
  );
  const json = JSON.parse(renderValidateReport(report, "json").stdout);
  assert.deepEqual(json.issues, report.issues);
  assert.equal(json.error.issues.length, report.issues.length);
});

test("--check-source without the variables it needs says so for every sync", async () => {
  const report = await validateConfig({ ...offline, checkSource: true, config: `${fixtures}/valid.yaml` });
  assert.equal(report.valid, false);
  assert.deepEqual(
    report.sources?.map((source) => [source.sync, source.error?.message]),
    [
      ["users", "cannot connect without TEST_DATABASE_URL, TEST_MP_TOKEN"],
      ["2024", "cannot connect without TEST_DATABASE_URL, TEST_MP_TOKEN"],
    ],
  );
  assert.match(
    renderValidateReport(report, "github").stdout,
    /^::error title=groupsync validate::users: source check failed: cannot connect without/m,
  );
});

test("the mapping schema: required keys, no unknown keys, the cursor", () => {
  const mapping = jsonSchema("mapping") as {
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, unknown>;
  };
  assert.deepEqual(mapping.required, ["group_key", "group_id"]);
  assert.equal(mapping.additionalProperties, false);
  assert.ok(mapping.properties.cursor);
});
