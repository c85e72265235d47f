/**
 * Secrets never leave: after runs that fail on a refused token and on a refused database password, neither the
 * token nor the password shows in `status` (text or JSON), in any state file, or in the run's output; every state
 * file is mode 0600 and the folders 0700.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { startE2E, TOKEN } from "../helpers/e2e.js";

const bin = fileURLToPath(new URL("../../bin/groupsync.js", import.meta.url));
const MAPPING = "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  name: name\n";

function cli(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (_e, out, err) =>
      resolve(out + err),
    );
  });
}

test("tokens and passwords appear in no output, status or state file; state files are 0600", async () => {
  const e2e = await startE2E({ mapping: MAPPING, mode: "mirror" });
  try {
    await e2e.db.query(`create table t (id text, name text); insert into t values ('a', 'A'), (null, 'no id')`);
    const password = "pw-Secret-7781";
    const badUrl = new URL(e2e.env.TEST_DATABASE_URL as string);
    badUrl.password = password;
    const outputs: string[] = [];
    const config = ["--config", e2e.configFile];
    outputs.push(await cli(["run", "s", ...config], { ...e2e.env, GROUPSYNC_LOG_LEVEL: "debug" }));
    e2e.receiver.fail({ status: 401 });
    await e2e.db.query(`update t set name = 'A2'`);
    outputs.push(await cli(["run", "s", ...config], { ...e2e.env, GROUPSYNC_LOG_LEVEL: "debug" }));
    outputs.push(
      await cli(["run", "s", ...config], {
        ...e2e.env,
        TEST_DATABASE_URL: badUrl.toString(),
        GROUPSYNC_LOG_LEVEL: "debug",
      }),
    );
    assert.match(outputs[2] ?? "", /password|credentials|authentication/i, outputs[2]);
    outputs.push(await cli(["plan", "s", ...config], { ...e2e.env, GROUPSYNC_LOG_LEVEL: "debug" }));
    outputs.push(await cli(["status", ...config, "--history", "5"], e2e.env));
    outputs.push(await cli(["status", ...config, "--json"], e2e.env));
    assert.match(outputs.join("\n"), /token/i, "the refused token is reported");
    assert.match(outputs.at(-1) ?? "", /"status"/, "status --json answered");
    const stateDir = join(e2e.dir, "state");
    const files = readdirSync(stateDir, { recursive: true, withFileTypes: true });
    assert.ok(files.length > 2);
    for (const entry of files) {
      const path = join(entry.parentPath, entry.name);
      const mode = statSync(path).mode & 0o777;
      if (entry.isDirectory()) assert.equal(mode, 0o700, `${path} is ${mode.toString(8)}`);
      else {
        assert.equal(mode, 0o600, `${path} is ${mode.toString(8)}`);
        outputs.push(readFileSync(path, "latin1"));
      }
    }
    const all = outputs.join("\n");
    assert.ok(!all.includes(TOKEN), "the token never shows");
    assert.ok(!all.includes(password), "the password never shows");
  } finally {
    await e2e.dispose();
  }
});
