/**
 * `npm test`: starts one embedded PostgreSQL for the whole suite, runs every `*.test.ts` under test/ with Node's
 * test runner, and stops the server. Extra arguments are passed to `node --test` (e.g. a file list).
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { startEmbeddedPostgres } from "../src/demo/embedded-postgres.js";

const root = fileURLToPath(new URL("..", import.meta.url));

function findTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "helpers" ? [] : findTests(path);
    return entry.name.endsWith(".test.ts") ? [relative(root, path)] : [];
  });
}

const args = process.argv.slice(2);
const files = args.some((arg) => arg.endsWith(".ts")) ? [] : findTests(join(root, "test")).sort();

const server = await startEmbeddedPostgres();
let code = 1;
try {
  code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...args, ...files], {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, GROUPSYNC_TEST_PG_URL: server.url },
    });
    child.on("exit", (status, signal) => resolve(status ?? (signal ? 1 : 0)));
  });
} finally {
  await server.stop();
}
process.exit(code);
