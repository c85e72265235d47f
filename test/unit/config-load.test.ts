import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { MIXPANEL_RESERVED_PROPERTIES } from "../../connectors/mixpanel/config.js";
import { interpolateString } from "../../src/config/interpolate.js";
import { type LoadOptions, loadConfig } from "../../src/config/load.js";
import { ConfigError, type ConfigIssue } from "../../src/errors.js";
import { Secret } from "../../src/secret.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const fixtures = fileURLToPath(new URL("../fixtures/config/", import.meta.url));
/** A fixture's path as a user would pass it: relative to the working folder. Issues show files this way. */
const fixture = (name: string) => relative(process.cwd(), join(fixtures, name));

const ENV = {
  TEST_DATABASE_URL: "postgres://app:s3cret-db-password@db.internal:5432/warehouse",
  TEST_MP_TOKEN: "0123456789abcdef-secret-token",
};

async function issuesOf(name: string, options: LoadOptions = {}): Promise<ConfigError> {
  const error = await loadConfig(fixture(name), options).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ConfigError, `${name} should fail with a ConfigError, got ${inspect(error)}`);
  return error;
}

type Expected = Omit<ConfigIssue, "message"> & { readonly message: string | RegExp };

function assertIssues(actual: readonly ConfigIssue[], expected: readonly Expected[]): void {
  const text = (issues: readonly (ConfigIssue | Expected)[]) =>
    issues.map((i) => `${i.file}:${i.line}:${i.column} ${i.path}: ${String(i.message)}`).join("\n");
  assert.equal(actual.length, expected.length, `issues:\n${text(actual)}\nexpected:\n${text(expected)}`);
  expected.forEach((want, index) => {
    const got = actual[index] as ConfigIssue;
    const { message, ...where } = want;
    assert.deepEqual({ file: got.file, line: got.line, column: got.column, path: got.path }, where);
    if (typeof message === "string") assert.equal(got.message, message);
    else assert.match(got.message, message);
  });
}

const at = (file: string, line: number, column: number, path: string, message: string | RegExp): Expected => ({
  file: fixture(file),
  line,
  column,
  path,
  message,
});

describe("interpolateString", () => {
  const env = { A: "alpha", EMPTY: "" };
  const cases: { text: string; value: string; variables?: string[]; missing?: string[]; error?: RegExp }[] = [
    { text: "plain", value: "plain" },
    { text: "${A}", value: "alpha", variables: ["A"] },
    { text: "x-${A}-y", value: "x-alpha-y", variables: ["A"] },
    { text: "${B:-fallback}", value: "fallback", variables: ["B"] },
    { text: "${EMPTY:-fallback}", value: "fallback", variables: ["EMPTY"] },
    { text: "${EMPTY}", value: "", variables: ["EMPTY"] },
    { text: "${A:-unused}", value: "alpha", variables: ["A"] },
    { text: "${B:-}", value: "", variables: ["B"] },
    { text: "${B:-https://api.mixpanel.com}", value: "https://api.mixpanel.com", variables: ["B"] },
    { text: "$${A}", value: "${A}" },
    { text: "price $${amount} and ${A}", value: "price ${amount} and alpha", variables: ["A"] },
    { text: "$A $ { $company_id", value: "$A $ { $company_id" },
    { text: "${MISSING}", value: "<MISSING>", variables: ["MISSING"], missing: ["MISSING"] },
    { text: "${1A}", value: "${1A}", error: /invalid reference "\$\{1A\}"/ },
    { text: "${A-default}", value: "${A-default}", error: /invalid reference/ },
    { text: "${A:-${B}}", value: "${A:-${B}}", error: /a default cannot contain a reference/ },
    { text: "url ${A", value: "url ${A", error: /unclosed reference "\$\{A"/ },
  ];
  for (const c of cases) {
    it(`${c.text} → ${c.value}`, () => {
      const result = interpolateString(c.text, env, (name) => `<${name}>`);
      assert.equal(result.value, c.value);
      assert.deepEqual(result.variables, c.variables ?? []);
      assert.deepEqual(result.missing, c.missing ?? []);
      if (c.error) {
        assert.equal(result.errors.length, 1);
        assert.match(result.errors[0] as string, c.error);
      } else {
        assert.deepEqual(result.errors, []);
      }
    });
  }
});

describe("loadConfig: valid files", () => {
  it("loads a config and its mappings, with defaults, interpolation, escapes and absolute paths", async () => {
    const loaded = await loadConfig(fixture("valid.yaml"), { env: ENV });
    assert.equal(loaded.file, join(fixtures, "valid.yaml"));
    assert.equal(loaded.stateDir, resolve(fixtures, "../state"));
    assert.deepEqual(loaded.missingEnv, []);
    // File order, although JavaScript would list the key "2024" first.
    assert.deepEqual(
      loaded.syncs.map((sync) => sync.name),
      ["users", "2024"],
    );
    const [users, companies] = loaded.syncs;
    assert.equal(users?.mappingFile, join(fixtures, "mappings/users.yaml"));
    assert.equal(companies?.mappingFile, join(fixtures, "mappings/companies.yaml"));
    assert.equal(users?.sync.mode, "upsert");
    assert.equal(users?.sync.max_delete_share, 0.5);
    assert.equal(companies?.sync.mode, "mirror");
    assert.equal(companies?.sync.schedule, "*/30 * * * *");

    const source = companies?.source.config;
    assert.equal(companies?.source.name, "warehouse");
    assert.equal(source?.statement_timeout, 600_000);
    assert.equal(source?.fetch_size, 1000, "a number from a ${VAR:-default} becomes a number");
    assert.ok(source?.type === "postgres" && source.url instanceof Secret);
    assert.equal(source.url.reveal(), ENV.TEST_DATABASE_URL);

    const destination = companies?.destination.config;
    assert.ok(destination?.type === "mixpanel");
    assert.equal(companies?.destination.name, "mixpanel");
    assert.equal(destination?.region, "eu");
    assert.equal(destination?.api_host, "http://127.0.0.1:8080", "plain http to loopback needs no allow_insecure");
    assert.equal(destination?.hierarchical, true);
    assert.equal(destination?.batch_size, 200);
    assert.equal(destination?.project_token.reveal(), ENV.TEST_MP_TOKEN);

    assert.deepEqual(companies?.mapping, {
      from: "analytics.dim_companies",
      group_key: "$company_id",
      group_id: "company_id",
      company_id: "company_id",
      properties: {
        $name: "company_name",
        plan: "plan",
        arr: { column: "arr_usd", type: "number" },
        note: "from the default",
        literal: "price ${amount}",
      },
      on_delete: "unset",
    });
    assert.equal(
      users?.mapping.query,
      "select user_id, company_id, email\nfrom analytics.dim_users\nwhere email like '%${domain}'\n",
    );
    assert.equal(users?.mapping.from, undefined);
  });

  it("never shows a secret when the loaded config is printed", async () => {
    const loaded = await loadConfig(fixture("valid.yaml"), { env: ENV });
    for (const text of [
      JSON.stringify(loaded),
      inspect(loaded, { depth: 10 }),
      String(loaded.config.sources.warehouse?.type === "postgres" && loaded.config.sources.warehouse.url),
    ]) {
      assert.ok(!text.includes("s3cret-db-password"), text);
      assert.ok(!text.includes(ENV.TEST_MP_TOKEN), text);
    }
  });

  it("in collect mode, records unset variables and loads with placeholders", async () => {
    const loaded = await loadConfig(fixture("valid.yaml"), { env: {}, missingEnv: "collect" });
    assert.deepEqual(loaded.missingEnv, ["TEST_DATABASE_URL", "TEST_MP_TOKEN"]);
    assert.equal(loaded.syncs.length, 2);
    const warehouse = loaded.config.sources.warehouse;
    assert.ok(warehouse?.type === "postgres");
    assert.notEqual(warehouse.url.reveal(), "");
  });

  it("uses a set variable instead of the default, and reads booleans from the environment", async () => {
    const env = { ...ENV, TEST_MP_HOST: "http://mixpanel-proxy.internal", TEST_ALLOW_INSECURE: "true" };
    const loaded = await loadConfig(fixture("http-host.yaml"), { env });
    const destination = loaded.syncs[0]?.destination.config;
    assert.ok(destination?.type === "mixpanel");
    assert.equal(destination?.api_host, "http://mixpanel-proxy.internal");
    assert.equal(destination?.allow_insecure, true);
  });

  it("loads the project's own sync.config.yaml and mappings", async () => {
    const env = { DATABASE_URL: "postgres://localhost/analytics", MIXPANEL_PROJECT_TOKEN: "demo-token" };
    const loaded = await loadConfig(join(root, "sync.config.yaml"), { env });
    assert.deepEqual(
      loaded.syncs.map((s) => [s.name, s.sync.mode, s.mapping.group_key, s.mapping.from]),
      [
        ["companies", "mirror", "$company_id", "analytics.dim_companies"],
        ["users", "upsert", "$user_id", "analytics.dim_users"],
        ["teams", "upsert", "team_id", "analytics.dim_teams"],
      ],
    );
    for (const sync of loaded.syncs) {
      assert.equal(sync.source.name, "warehouse");
      assert.equal(sync.destination.name, "mixpanel");
      const config = sync.destination.config;
      assert.ok(config.type === "mixpanel");
      assert.equal(config.hierarchical, true);
      assert.equal(config.api_host, "https://api.mixpanel.com");
      assert.equal(sync.mapping.company_id, "company_id");
      assert.equal(sync.mappingFile, join(root, "mappings", `${sync.name}.yaml`));
    }
    assert.equal(loaded.stateDir, join(root, ".groupsync"));
    const withHost = await loadConfig(join(root, "sync.config.yaml"), {
      env: { ...env, MIXPANEL_API_HOST: "http://127.0.0.1:4000" },
    });
    const first = withHost.syncs[0]?.destination.config;
    assert.ok(first?.type === "mixpanel");
    assert.equal(first.api_host, "http://127.0.0.1:4000");
  });
});

describe("loadConfig: broken files", () => {
  const cases: { name: string; env?: Record<string, string>; issues: Expected[] }[] = [
    {
      // .txt: Biome parses .yaml files, and would fail the lint on this one.
      name: "malformed.yaml.txt",
      issues: [at("malformed.yaml.txt", 6, 1, "", /^YAML syntax error: Flow sequence in block collection/)],
    },
    {
      name: "two-documents.yaml",
      issues: [
        at(
          "two-documents.yaml",
          3,
          1,
          "",
          "the file holds more than one YAML document (a line with ---); it must hold exactly one",
        ),
      ],
    },
    {
      name: "wrong-types.yaml",
      issues: [
        at("wrong-types.yaml", 1, 10, "version", "expected 1; found 2"),
        at("wrong-types.yaml", 6, 17, "sources.warehouse.fetch_size", "expected at least 100; found 10"),
        at(
          "wrong-types.yaml",
          7,
          24,
          "sources.warehouse.statement_timeout",
          'expected a duration such as "500ms", "30s", "10m" or "1h"; found "ten minutes"',
        ),
        at("wrong-types.yaml", 9, 11, "sources.lake.type", 'expected one of postgres, snowflake; found "postgress"'),
        // A secret field: its type, never its value.
        at("wrong-types.yaml", 13, 20, "destinations.mixpanel.project_token", "expected a string; found a number"),
        at("wrong-types.yaml", 14, 13, "destinations.mixpanel.region", 'expected one of us, eu, in; found "mars"'),
        at("wrong-types.yaml", 15, 17, "destinations.mixpanel.batch_size", 'expected a number; found "many"'),
        // A missing key: at its parent mapping.
        at(
          "wrong-types.yaml",
          18,
          5,
          "syncs.companies.mapping",
          'required key "mapping" is missing (expected a string)',
        ),
        at("wrong-types.yaml", 20, 11, "syncs.companies.mode", 'expected one of upsert, mirror; found "sometimes"'),
      ],
    },
    {
      name: "unknown-keys.yaml",
      issues: [
        at(
          "unknown-keys.yaml",
          6,
          5,
          "sources.warehouse.fetch_sise",
          'unknown key "fetch_sise" (did you mean "fetch_size"?)',
        ),
        at(
          "unknown-keys.yaml",
          16,
          5,
          "syncs.companies.colour",
          'unknown key "colour"; allowed keys: source, destination, mapping, mode, schedule, max_delete_share, timezone, full_every, hash_pushdown',
        ),
        // The mapping file's issues come in the same error.
        at("mappings/unknown-key.yaml", 1, 1, "group_id", 'required key "group_id" is missing (expected a string)'),
        at("mappings/unknown-key.yaml", 3, 1, "gruop_id", 'unknown key "gruop_id" (did you mean "group_id"?)'),
        at("mappings/unknown-key.yaml", 5, 25, "properties.plan.typ", 'unknown key "typ" (did you mean "type"?)'),
      ],
    },
    {
      name: "duplicate-sync.yaml",
      issues: [
        at(
          "duplicate-sync.yaml",
          15,
          3,
          "syncs.companies",
          'duplicate sync name "companies" (first defined at line 11)',
        ),
      ],
    },
    {
      name: "missing-mapping.yaml",
      issues: [
        at(
          "missing-mapping.yaml",
          14,
          14,
          "syncs.companies.mapping",
          `mapping file not found: ${join(fixtures, "mappings/does-not-exist.yaml")}`,
        ),
      ],
    },
    {
      name: "missing-env.yaml",
      env: { TEST_DATABASE_URL: ENV.TEST_DATABASE_URL },
      issues: [
        at(
          "missing-env.yaml",
          9,
          20,
          "destinations.mixpanel.project_token",
          "environment variable TEST_MP_TOKEN is not set (set it, or write ${TEST_MP_TOKEN:-default})",
        ),
        // No second issue about the placeholder not being a region: the variable is the problem.
        at(
          "missing-env.yaml",
          10,
          13,
          "destinations.mixpanel.region",
          "environment variable TEST_MP_REGION is not set (set it, or write ${TEST_MP_REGION:-default})",
        ),
      ],
    },
    {
      name: "bad-cron.yaml",
      issues: [
        at(
          "bad-cron.yaml",
          15,
          15,
          "syncs.companies.schedule",
          'expected a cron expression such as "*/30 * * * *"; found "every hour"',
        ),
      ],
    },
    {
      name: "bad-references.yaml",
      issues: [
        at(
          "bad-references.yaml",
          12,
          13,
          "syncs.companies.source",
          'no source named "warehous" (did you mean "warehouse"?); sources: warehouse',
        ),
        at(
          "bad-references.yaml",
          13,
          18,
          "syncs.companies.destination",
          'no destination named "segment"; destinations: mixpanel',
        ),
      ],
    },
    {
      name: "mapping-errors.yaml",
      issues: [
        at("mappings/bad-type.yaml", 3, 11, "group_id", "must name a column; it is empty or blank"),
        at(
          "mappings/bad-type.yaml",
          6,
          10,
          "properties.seats",
          "expected a string or a mapping with keys column, value, type, op, keep_removed, nulls; found 42",
        ),
        at(
          "mappings/bad-type.yaml",
          7,
          33,
          "properties.arr.type",
          'expected one of string, number, boolean, datetime, date, list, object; found "numbr"',
        ),
        at(
          "mappings/both-from-query.yaml",
          2,
          1,
          "query",
          "give either from (a table or view) or query (a SQL query), not both",
        ),
        at(
          "mappings/dollar-property.yaml",
          6,
          3,
          "properties.$plan",
          `"$plan" is not a Mixpanel reserved profile property; non-reserved names must not start with "$"; reserved names: ${MIXPANEL_RESERVED_PROPERTIES.join(", ")}`,
        ),
        at(
          "mappings/dollar-property.yaml",
          7,
          3,
          "properties.$emial",
          '"$emial" is not a Mixpanel reserved profile property; non-reserved names must not start with "$" (did you mean "$email"?)',
        ),
      ],
    },
    {
      // One mapping, two syncs: only the one sending to the hierarchical destination needs company_id.
      name: "hierarchical.yaml",
      issues: [
        at(
          "mappings/no-company-id.yaml",
          1,
          1,
          "company_id",
          'required key "company_id" is missing: sync "tree_companies" sends to destination "tree", which is hierarchical; name the column holding the Company ID',
        ),
      ],
    },
    {
      name: "http-host.yaml",
      env: { TEST_MP_HOST: "http://mixpanel-proxy.internal:8080" },
      issues: [
        at(
          "http-host.yaml",
          10,
          15,
          "destinations.mixpanel.api_host",
          /^plain http:\/\/ to a host that is not loopback .*set allow_insecure: true/,
        ),
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const error = await issuesOf(c.name, { env: c.env ?? {} });
      assertIssues(error.issues, c.issues);
      assert.equal(error.code, "CONFIG_INVALID");
    });
  }

  it("accepts plain http to loopback hosts only", async () => {
    const hosts: [string, boolean][] = [
      ["http://127.0.0.1:8080", true],
      ["http://127.10.20.30", true],
      ["http://localhost:3000", true],
      ["http://[::1]:3000", true],
      ["https://api-eu.mixpanel.com", true],
      ["http://128.0.0.1", false],
      ["http://localhost.example.com", false],
      ["http://[::2]", false],
    ];
    for (const [host, ok] of hosts) {
      const loading = loadConfig(fixture("http-host.yaml"), { env: { TEST_MP_HOST: host } });
      if (ok) await loading;
      else await assert.rejects(loading, ConfigError, host);
    }
  });

  it("never puts an environment variable's value in a message", async () => {
    const secretHost = "ftp://user:hunter2@mixpanel-proxy.internal";
    const error = await issuesOf("http-host.yaml", { env: { TEST_MP_HOST: secretHost } });
    assertIssues(error.issues, [
      at(
        "http-host.yaml",
        10,
        15,
        "destinations.mixpanel.api_host",
        "expected an http:// or https:// URL; found a string from ${TEST_MP_HOST}",
      ),
    ]);
    assert.ok(!error.message.includes("hunter2"), error.message);
  });

  it("never puts a secret field's value in a message", async () => {
    const error = await issuesOf("wrong-types.yaml");
    assert.ok(!error.message.includes("12345678"), error.message);
  });

  it("in collect mode, still reports a value an unset variable cannot stand in for", async () => {
    const error = await issuesOf("missing-env.yaml", { env: {}, missingEnv: "collect" });
    assertIssues(error.issues, [
      at(
        "missing-env.yaml",
        10,
        13,
        "destinations.mixpanel.region",
        "expected one of us, eu, in; found a placeholder for ${TEST_MP_REGION}, which is not set",
      ),
    ]);
  });

  it("refuses more properties than Mixpanel allows on a profile", async () => {
    // Generated: a 2001-line fixture would say nothing more than this loop.
    const dir = mkdtempSync(join(tmpdir(), "groupsync-config-"));
    try {
      const config = readFileSync(join(fixtures, "bad-cron.yaml"), "utf8").replace(/\n\s+schedule:.*\n/, "\n");
      writeFileSync(join(dir, "sync.config.yaml"), config);
      mkdirSync(join(dir, "mappings"));
      const lines = Array.from({ length: 2001 }, (_, i) => `  p${i}: c${i}`);
      writeFileSync(
        join(dir, "mappings/companies.yaml"),
        ["from: t", "group_key: company", "group_id: id", "properties:", ...lines, ""].join("\n"),
      );
      await assert.rejects(loadConfig(join(dir, "sync.config.yaml")), (error: ConfigError) => {
        assert.deepEqual(error.issues, [
          {
            file: join(dir, "mappings/companies.yaml"),
            line: 4,
            column: 1,
            path: "properties",
            message: "2001 properties; Mixpanel allows at most 2000 on one profile",
          },
        ]);
        return true;
      });
      writeFileSync(
        join(dir, "mappings/companies.yaml"),
        readFileSync(join(dir, "mappings/companies.yaml"), "utf8").replace("  p0: c0\n", ""),
      );
      assert.equal(
        Object.keys((await loadConfig(join(dir, "sync.config.yaml"))).syncs[0]?.mapping.properties ?? {}).length,
        2000,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says where it looked for a config file that does not exist", async () => {
    const error = await issuesOf("nope.yaml");
    assert.equal(error.code, "CONFIG_NOT_FOUND");
    assert.equal(error.message, `${fixture("nope.yaml")} config file not found (${join(fixtures, "nope.yaml")})`);
  });
});
