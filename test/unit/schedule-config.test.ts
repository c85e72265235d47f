import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import type { ConfigError } from "../../src/errors.js";

function files(sync: string, mapping = "from: t\ngroup_key: company\ngroup_id: id\n"): string {
  const dir = mkdtempSync(join(tmpdir(), "gs-config-"));
  writeFileSync(
    join(dir, "sync.config.yaml"),
    `version: 1
sources:
  db: { type: postgres, url: "postgres://localhost/db" }
destinations:
  mp: { type: mixpanel, project_token: token-1234 }
syncs:
  s:
    source: db
    destination: mp
    mapping: m.yaml
${sync}`,
  );
  writeFileSync(join(dir, "m.yaml"), mapping);
  return join(dir, "sync.config.yaml");
}

test("schedule options: timezone (default UTC), seconds in cron, full_every as a duration, cursor in the mapping", async () => {
  const loaded = await loadConfig(
    files(
      `    schedule: "*/10 * * * * *"\n    timezone: Europe/Berlin\n    full_every: 24h\n`,
      "from: t\ngroup_key: company\ngroup_id: id\ncursor: updated_at\n",
    ),
  );
  const sync = loaded.syncs[0]!;
  assert.equal(sync.sync.timezone, "Europe/Berlin");
  assert.equal(sync.sync.full_every, 86_400_000);
  assert.equal(sync.mapping.cursor, "updated_at");
  assert.equal((await loadConfig(files(""))).syncs[0]!.sync.timezone, "UTC");
});

test("an unknown time zone or a bad full_every is an error at its line", async () => {
  await assert.rejects(
    loadConfig(files(`    timezone: Mars/Olympus\n    full_every: daily\n`)),
    (error: ConfigError) => {
      assert.deepEqual(
        error.issues.map((issue) => [issue.line, issue.path, issue.message]),
        [
          [11, "syncs.s.timezone", 'expected an IANA time zone such as "UTC" or "Europe/Berlin"; found "Mars/Olympus"'],
          [12, "syncs.s.full_every", 'expected a duration such as "500ms", "30s", "10m" or "1h"; found "daily"'],
        ],
      );
      return true;
    },
  );
});
