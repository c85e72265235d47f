/**
 * The `groupsync` command as a user runs it: a child process of bin/groupsync.js, real PostgreSQL, local receiver.
 * Checks exit codes (0 ok, 1 failed, 2 invalid config, 3 rejected rows), output, and that secrets never show.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type E2E, startE2E, TOKEN } from "../helpers/e2e.js";

const bin = fileURLToPath(new URL("../../bin/groupsync.js", import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bin/groupsync.js` with `args`; never rejects: a failure is its exit code. */
function runBin(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { ...options, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function cli(e2e: E2E, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return runBin([...args, "--config", e2e.configFile], {
    env: { ...process.env, ...e2e.env, GROUPSYNC_LOG_LEVEL: "warn", ...env },
  });
}

const MAPPING = "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  name: name\n";

describe("groupsync CLI", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING, mode: "mirror" });
    await e2e.db.query(`create table t (id text, name text); insert into t values ('a', 'A'), ('b', 'B'), ('c', 'C')`);
  });
  after(() => e2e.dispose());

  test("--version and -V: package.json's version, exit 0, no config needed", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    // A folder with no sync.config.yaml in it.
    const empty = mkdtempSync(join(tmpdir(), "groupsync-version-"));
    try {
      for (const flag of ["--version", "-V"]) {
        const result = await runBin([flag], { cwd: empty });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, `${version}\n`);
      }
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test("validate: exit 0 and the sync names", async () => {
    const result = await cli(e2e, ["validate"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /valid \(1 syncs: s\)/);
  });

  test("plan: counts and samples with the token masked, nothing sent, no state written", async () => {
    const result = await cli(e2e, ["plan", "s"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /groups would be created 3/);
    assert.match(result.stdout, /"\$token":"\*\*\*"/);
    assert.doesNotMatch(result.stdout + result.stderr, new RegExp(TOKEN));
    assert.equal(e2e.receiver.requests.length, 0);
    assert.ok(!existsSync(join(e2e.dir, "state")), "plan writes no state");
  });

  test("run: exit 0, a summary, and --json output", async () => {
    const result = await cli(e2e, ["run", "s"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /s: run ok/);
    assert.match(result.stdout, /groups created 3/);
    const json = await cli(e2e, ["run", "s", "--json"]);
    assert.equal(json.code, 0);
    const summary = JSON.parse(json.stdout);
    assert.equal(summary.unchanged, 3);
    assert.equal(summary.requests, 0);
    assert.doesNotMatch(json.stdout + json.stderr + result.stdout + result.stderr, new RegExp(TOKEN));
  });

  test("run with a rejected row exits 3 and status shows it", async () => {
    await e2e.db.query(`insert into t values (null, 'no id')`);
    const result = await cli(e2e, ["run", "s"]);
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(result.stdout, /rejected 1/);
    const status = await cli(e2e, ["status"]);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /s: last run .* REJECTED/);
    const statusJson = JSON.parse((await cli(e2e, ["status", "--json"])).stdout);
    assert.equal(statusJson[0].last.rejected, 1);
    await e2e.db.query(`delete from t where id is null`);
  });

  test("a refused token exits 1 with an action about the token, and the token never shows", async () => {
    e2e.receiver.fail({ status: 401 });
    await e2e.db.query(`update t set name = 'A2' where id = 'a'`);
    const result = await cli(e2e, ["run", "s"]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /token/i);
    assert.doesNotMatch(result.stdout + result.stderr, new RegExp(TOKEN));
    const retry = await cli(e2e, ["run", "s"]);
    assert.equal(retry.code, 0, retry.stdout);
  });

  test("invalid config: exit 2, file:line:column and key; --json carries the issues", async () => {
    const broken = join(e2e.dir, "mapping.yaml");
    writeFileSync(broken, `${MAPPING}grup_key: typo\n`);
    try {
      const result = await cli(e2e, ["validate"]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /mapping\.yaml:6:1 grup_key: unknown key "grup_key" \(did you mean "group_key"\?\)/);
      const json = await cli(e2e, ["validate", "--json"]);
      assert.equal(json.code, 2);
      assert.equal(JSON.parse(json.stdout).error.issues[0].line, 6);
      const run = await cli(e2e, ["run", "s"]);
      assert.equal(run.code, 2, "run refuses an invalid config too");
    } finally {
      writeFileSync(broken, MAPPING);
    }
  });

  test("a missing column is named with the columns that exist", async () => {
    writeFileSync(join(e2e.dir, "mapping.yaml"), `${MAPPING}  plan: plan_name\n`);
    try {
      const result = await cli(e2e, ["run", "s"]);
      assert.equal(result.code, 1);
      assert.match(
        result.stdout,
        /properties\.plan: column "plan_name" does not exist in t; available columns: id, name/,
      );
    } finally {
      writeFileSync(join(e2e.dir, "mapping.yaml"), MAPPING);
    }
  });

  test("a second run while one holds the lock is refused", async () => {
    const lock = join(e2e.dir, "state", "s", "lock");
    writeFileSync(
      lock,
      JSON.stringify({ pid: process.pid, host: (await import("node:os")).hostname(), started_at: "now" }),
    );
    const history = () => JSON.parse(readFileSync(join(e2e.dir, "state", "s", "runs.json"), "utf8")).length;
    const runs = history();
    try {
      const result = await cli(e2e, ["run", "s"]);
      assert.equal(result.code, 1);
      assert.match(result.stdout, /already running \(pid \d+/);
      assert.equal(history(), runs, "a run that never got the lock writes nothing in the state folder");
    } finally {
      (await import("node:fs")).rmSync(lock);
    }
    // A lock left by a dead process is taken over.
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import("node:os")).hostname() }));
    assert.equal((await cli(e2e, ["run", "s"])).code, 0);
  });

  test("a corrupt snapshot is a clear error naming the file, and nothing is sent", async () => {
    const dir = join(e2e.dir, "state", "s");
    const snapshot = readdirSync(dir).find((name) => name.startsWith("snapshot-"))!;
    const bytes = readFileSync(join(dir, snapshot));
    const copy = Buffer.from(bytes);
    copy[copy.length - 15]! ^= 0xff;
    writeFileSync(join(dir, snapshot), copy);
    const requests = e2e.receiver.requests.length;
    try {
      const result = await cli(e2e, ["run", "s"]);
      assert.equal(result.code, 1);
      assert.match(result.stdout, new RegExp(`${snapshot} is corrupt`));
      assert.match(result.stdout, /groupsync reset/);
      assert.equal(e2e.receiver.requests.length, requests);
    } finally {
      writeFileSync(join(dir, snapshot), bytes);
    }
  });

  test("state written for another Group Key is refused, not silently re-sent", async () => {
    writeFileSync(join(e2e.dir, "mapping.yaml"), MAPPING.replace("group_key: company", "group_key: account"));
    try {
      const result = await cli(e2e, ["run", "s"]);
      assert.equal(result.code, 1);
      assert.match(result.stdout, /written for group_key "company", but the config now says "account"/);
    } finally {
      writeFileSync(join(e2e.dir, "mapping.yaml"), MAPPING);
    }
  });

  test("reset needs --yes, then forgets the state: the next run re-sends every group", async () => {
    const refused = await cli(e2e, ["reset", "s"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--yes/);
    const reset = await cli(e2e, ["reset", "s", "--yes"]);
    assert.equal(reset.code, 0, reset.stderr);
    assert.ok(!existsSync(join(e2e.dir, "state", "s")));
    const result = JSON.parse((await cli(e2e, ["run", "s", "--json"])).stdout);
    assert.equal(result.groups_created, 3);
  });
});
