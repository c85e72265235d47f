/**
 * `groupsync verify` end to end: PostgreSQL → engine → local receivers, then profiles edited behind groupsync's back
 * (as a person in the product's UI would), and verify run as a CLI child process (exit codes, --json, the estimate
 * on stderr) or in-process (PostHog, rate limits).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type PostHogReceiver, startPostHogReceiver } from "../../connectors/posthog/contract-receiver.js";
import { createPostHogReader } from "../../connectors/posthog/read-back.js";
import { loadConnectors } from "../../src/connectors.js";
import { GroupsyncError } from "../../src/errors.js";
import { createReader } from "../../src/readers.js";
import { runVerify } from "../../src/verify/verify.js";
import { type DestinationE2E, startDestinationE2E } from "../helpers/destination-e2e.js";
import { type E2E, startE2E } from "../helpers/e2e.js";

const connectors = await loadConnectors();

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin/groupsync.js");
const SA = { username: "sa-user.1234.mp-service-account", secret: "sa-secret-do-not-log-9876", projectId: "4242" };

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: root, env: { ...process.env, GROUPSYNC_LOG_LEVEL: "warn", ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const MAPPING = `
from: public.accounts
group_key: company
group_id: id
properties:
  plan: plan
  seats: seats
  first_plan: { column: plan, op: set_once }
  features: { column: features, op: union }
  synced_by: { value: groupsync }
`;

const QUERY = (limit = "") => `    query:
      service_account_username: \${TEST_SA_USER}
      service_account_secret: \${TEST_SA_SECRET}
      project_id: ${SA.projectId}
      data_group_ids: { company: 7 }
      api_host: \${TEST_MP_HOST}
      min_interval: 0s
${limit}`;

describe("verify: Mixpanel through the Query API", () => {
  let e2e: E2E;
  let env: Record<string, string>;
  const verify = (...args: string[]) => cli(["--config", e2e.configFile, "verify", "s", ...args], env);

  before(async () => {
    e2e = await startE2E({
      mapping: MAPPING,
      destinationExtra: QUERY("      ids_per_query: 2\n"),
      receiver: {
        query: { ...SA, dataGroupIds: { "7": "company" }, limit: { queries: 1000, windowMs: 3_600_000 } },
      },
    });
    env = Object.assign(e2e.env, { TEST_SA_USER: SA.username, TEST_SA_SECRET: SA.secret });
    await e2e.db.query(`
      create table accounts (id text primary key, plan text, seats int, features text[]);
      insert into accounts values
        ('acme', 'growth', 10, '{sso,audit}'),
        ('globex', 'free', 2, null),
        ('initech', null, 5, '{api}'),
        ('umbrella', 'enterprise', 400, '{sso}');
    `);
    assert.equal((await e2e.run()).status, "ok");
  });
  after(() => e2e.dispose());

  test("no drift right after a run: exit 0, the estimate on stderr", async () => {
    const result = await verify("--sample", "10");
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(
      result.stderr,
      /verify s: reading 4 group\(s\) back in 2 request\(s\), at least 0s \(Query API: 60 queries per hour/,
    );
    assert.match(result.stdout, /^no drift: 4 group\(s\) checked match what groupsync last sent/m);
    const queries = e2e.receiver.requests.filter((request) => request.updates.length === 0);
    assert.equal(queries.length, 2, "4 groups, 2 per query");
  });

  test("profiles edited behind groupsync's back: exit 4, property by property, in JSON", async () => {
    e2e.receiver.editProfile("company||acme", (profile) => ({ ...profile, plan: "hacked", features: ["audit"] }));
    e2e.receiver.editProfile("company||globex", () => undefined);
    e2e.receiver.editProfile("company||initech", (profile) => {
      const { first_plan: _gone, ...rest } = profile;
      return { ...rest, plan: "someone-else" };
    });
    const result = await verify("--json");
    assert.equal(result.code, 4, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.sampled, 4);
    assert.equal(report.drifted, 3);
    const byKey = Object.fromEntries(report.groups.map((group: { key: string }) => [group.key, group]));
    assert.equal(byKey.umbrella.status, "ok");
    assert.equal(byKey.acme.status, "drift");
    assert.deepEqual(byKey.acme.drift, [
      { name: "plan", drift: "changed", expected: "growth", actual: "hacked" },
      { name: "features", drift: "items-missing", expected: ["sso"], actual: ["audit"] },
    ]);
    assert.equal(byKey.globex.status, "missing");
    assert.deepEqual(
      byKey.initech.drift.map((finding: { name: string; drift: string }) => `${finding.name}:${finding.drift}`),
      ["plan:unexpected"],
      "first_plan was never set for initech (plan was null), so its absence is no drift",
    );
    assert.ok(!result.stdout.includes(SA.secret) && !result.stderr.includes(SA.secret));
  });

  test("human output names each drifted property; --keys picks groups; unknown keys are reported", async () => {
    const result = await verify("--keys", "acme,nobody");
    assert.equal(result.code, 4);
    assert.match(result.stdout, /^drift {2}acme$/m);
    assert.match(result.stdout, /plan: the destination has "hacked"; groupsync sent "growth"/);
    assert.match(result.stdout, /features: items groupsync added are gone: \["sso"\]/);
    assert.match(result.stdout, /not in groupsync's state \(never sent\): nobody/);
    assert.match(result.stdout, /1 of 1 group\(s\) checked differ/);
  });

  test("a source change since the last run is pending, not drift", async () => {
    await e2e.db.query("update accounts set seats = 11 where id = 'umbrella'");
    const pending = await verify("--keys", "umbrella", "--json");
    assert.equal(pending.code, 0, pending.stdout);
    const report = JSON.parse(pending.stdout);
    assert.deepEqual(report.groups[0].skipped, [
      { name: "seats", reason: "changed in the source since the last run (the next run sends it)" },
    ]);
  });

  test("wrong service account: exit 1, a clear message, no secret", async () => {
    const result = await cli(["--config", e2e.configFile, "verify", "s"], {
      ...env,
      TEST_SA_SECRET: "wrong-secret-55",
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Mixpanel refused the service account for project 4242 \(HTTP 401/);
    assert.ok(!result.stderr.includes("wrong-secret-55"));
  });
});

describe("verify: the Query API's rate limit (429 with Retry-After)", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({
      mapping: MAPPING,
      destinationExtra: QUERY("      ids_per_query: 1\n"),
      receiver: { query: { ...SA, dataGroupIds: { "7": "company" }, limit: { queries: 2, windowMs: 1000 } } },
    });
    Object.assign(e2e.env, { TEST_SA_USER: SA.username, TEST_SA_SECRET: SA.secret });
    await e2e.db.query(`
      create table accounts (id text primary key, plan text, seats int, features text[]);
      insert into accounts values ('a', 'x', 1, null), ('b', 'y', 2, null), ('c', 'z', 3, null);
    `);
    assert.equal((await e2e.run()).status, "ok");
  });
  after(() => e2e.dispose());

  test("the third query in a second is refused with 429; verify waits Retry-After and goes on", async () => {
    const loaded = await e2e.load();
    const sync = loaded.syncs[0]!;
    const waits: number[] = [];
    const report = await runVerify(sync, {
      stateDir: loaded.stateDir,
      sample: 3,
      createSource: (s) => connectors.createSource(s),
      createReader: (s) => createReader(s),
      sleep: (ms) => {
        waits.push(ms);
        return new Promise((resolve) => setTimeout(resolve, ms));
      },
    });
    assert.equal(report.drifted, 0);
    assert.equal(report.checked, 3);
    const statuses = e2e.receiver.requests.filter((request) => request.updates.length === 0).map((r) => r.status);
    assert.deepEqual(statuses, [200, 200, 429, 200]);
    assert.deepEqual(waits, [1000], "Retry-After: 1 second");
  });
});

describe("verify: PostHog through the Groups REST API; Segment cannot be read back", () => {
  let receiver: PostHogReceiver;
  let e2e: DestinationE2E;
  before(async () => {
    receiver = await startPostHogReceiver({ projectApiKey: "phc_key", personalApiKey: "phx_personal", projectId: "9" });
    e2e = await startDestinationE2E({
      destination: `    type: posthog
    project_api_key: phc_key
    personal_api_key: phx_personal
    project_id: 9
    host: ${receiver.url}
`,
      mapping: `
from: public.accounts
group_key: company
group_id: id
properties:
  plan: { column: plan, nulls: keep }
  synced_by: { value: groupsync }
`,
    });
    await e2e.db.query(`
      create table accounts (id text primary key, plan text);
      insert into accounts values ('acme', 'growth'), ('globex', 'free');
    `);
    assert.equal((await e2e.run()).status, "ok");
  });
  after(async () => {
    await e2e.dispose();
    await receiver.close();
  });

  const verify = async () => {
    const loaded = await e2e.load();
    return runVerify(loaded.syncs[0]!, {
      stateDir: loaded.stateDir,
      sample: 5,
      createSource: (s) => connectors.createSource(s),
      createReader: (s) =>
        s.destination.config.type === "posthog"
          ? createPostHogReader(s.destination.config, s.destination.name, { minIntervalMs: 0 })
          : createReader(s),
    });
  };

  test("no drift, then a group edited and one deleted in PostHog", async () => {
    assert.equal((await verify()).drifted, 0);
    receiver.editGroup("company", "acme", (group) => {
      group.synced_by = "manual";
    });
    receiver.deleteGroup("company", "globex");
    const report = await verify();
    assert.equal(report.drifted, 2);
    assert.deepEqual(report.groups[0]?.drift, [
      { name: "synced_by", drift: "changed", expected: "groupsync", actual: "manual" },
    ]);
    assert.equal(report.groups[1]?.status, "missing");
    assert.ok(
      receiver.requests.some((request) =>
        request.path.includes("/groups/find/?group_type_index=0&group_key=acme&skip_create_notebook=true"),
      ),
    );
  });

  test("Segment: verify says it cannot be read back", async () => {
    const loaded = await e2e.load();
    const sync = loaded.syncs[0]!;
    assert.throws(
      () =>
        createReader({
          ...sync,
          destination: { name: "seg", config: { type: "segment" } as never },
        }),
      (error: unknown) => error instanceof GroupsyncError && /Segment, which cannot be read back/.test(error.message),
    );
  });
});
