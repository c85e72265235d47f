/**
 * `npm audit`: no high or critical advisory in the dependencies groupsync ships. Where the registry does not answer
 * audit requests (the mirror this project is built against refuses them with 405), the test is skipped with the
 * registry's answer, visibly, rather than passing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

function audit(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["audit", "--json", "--omit=dev"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    const timer = setTimeout(() => child.kill(), 90_000);
    child.on("error", reject);
    child.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

test("npm audit finds no high or critical advisory in the runtime dependencies", { timeout: 120_000 }, async (t) => {
  const text = await audit();
  let report: {
    statusCode?: number;
    message?: string;
    metadata?: { vulnerabilities?: Record<string, number> };
    error?: { summary?: string };
  };
  try {
    report = JSON.parse(text);
  } catch {
    return t.skip(`npm audit gave no report (${text.slice(0, 200) || "no output"})`);
  }
  if (!report.metadata) {
    return t.skip(
      `the registry does not answer audit requests: ${report.message ?? report.error?.summary ?? text.slice(0, 200)}`,
    );
  }
  const found = report.metadata.vulnerabilities ?? {};
  assert.equal((found.high ?? 0) + (found.critical ?? 0), 0, `npm audit: ${JSON.stringify(found)}`);
});
