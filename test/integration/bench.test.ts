/**
 * CI smoke of `npm run bench` (issue 7): the real bench script at a small size, on the suite's PostgreSQL. Checks
 * that every phase ran and reported sane counts (the bench checks its own counts too, and exits 1 when one is off),
 * never its timings.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchResult } from "../../bench/report.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const ROWS = 100_000;
const STATE = 20_000;

/** How many of the ids 1…rows have `id % modulus === remainder`: the rows bench/table.ts changes. */
const every = (rows: number, modulus: number, remainder: number) =>
  Math.floor((rows - remainder) / modulus) + (remainder >= 1 && remainder <= rows ? 1 : 0);

test("npm run bench at 100,000 rows (the CI smoke run): every phase runs and reports the expected counts", {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "groupsync-bench-smoke-"));
  const out = join(dir, "bench.json");
  try {
    const args = ["--import", "tsx", "bench/bench.ts", "--rows", String(ROWS), "--state", String(STATE), "--out", out];
    if (process.env.GROUPSYNC_TEST_PG_URL) args.push("--pg-url", process.env.GROUPSYNC_TEST_PG_URL);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, args, { cwd: root, timeout: 170_000 }, (error, text, stderr) =>
        error ? reject(new Error(`bench failed: ${error.message}\n${stderr}\n${text}`)) : resolve(text),
      );
    });
    const result = JSON.parse(readFileSync(out, "utf8")) as BenchResult;
    assert.deepEqual(result.problems, []);
    assert.equal(result.rows, ROWS);
    const phases = Object.fromEntries((result.phases ?? []).map((phase) => [phase.id, phase]));
    assert.deepEqual(Object.keys(phases), ["a", "b", "c", "d", "e", "e'", "f"]);
    for (const phase of Object.values(phases)) {
      assert.ok(phase.wallMs > 0 && Number.isFinite(phase.ratio), `${phase.id}: a wall time and a ratio`);
      assert.ok(phase.peakRssMb === null || phase.peakRssMb > 1, `${phase.id}: peak RSS ${phase.peakRssMb}`);
    }
    // (b) one $set per row, batches of at most 200.
    assert.equal(phases.b!.sets, ROWS);
    assert.ok(phases.b!.requests >= ROWS / 200 && phases.b!.bytes > 0);
    // (c) and (d) ran three times each, each time after a baseline run of its own (the counts of every run were
    // checked by the bench: `problems` is empty); the table shows the median ratio.
    for (const id of ["c", "d"]) {
      const runs = phases[id]!.repetitions ?? [];
      assert.equal(runs.length, 3, `(${id}) repetitions`);
      const ratios = runs.map((run) => run.ratio).sort((x, y) => x - y);
      assert.ok(ratios.every((ratio) => Number.isFinite(ratio) && ratio > 0));
      assert.equal(phases[id]!.ratio, ratios[1]);
    }
    assert.match(stdout, /\(c\) and \(d\): the median of 3 runs/);
    // (c) nothing to send.
    assert.equal(phases.c!.requests, 0);
    assert.equal(phases.c!.summary?.unchanged, ROWS);
    // (d) exactly the changed, nulled and deleted rows.
    const changed = every(ROWS, 200, 1);
    const nulled = every(ROWS, 200, 101);
    const deleted = every(ROWS, 1000, 7);
    assert.deepEqual(
      { sets: phases.d!.sets, unsets: phases.d!.unsets, deletes: phases.d!.deletes },
      { sets: changed, unsets: nulled, deletes: deleted },
    );
    assert.equal(phases.d!.updates, ROWS / 100 + ROWS / 1000);
    // (e) every remaining group again, with requests in flight at once.
    assert.equal(phases.e!.sets, ROWS - deleted);
    assert.ok((phases.e!.receiverUpdatesPerSec ?? 0) > 0);
    assert.ok(phases.e!.maxInFlight >= 1);
    // (e') the same operations through the sending half alone.
    assert.equal(phases["e'"]!.sets, ROWS - deleted);
    assert.ok(phases["e'"]!.requests >= (ROWS - deleted) / 200);
    // (f) the rows after the middle key (keys are zero-padded: text order is number order) that (d) did not delete.
    let secondHalf = 0;
    for (let i = ROWS / 2 + 1; i <= ROWS; i++) if (i % 1000 !== 7) secondHalf++;
    assert.deepEqual({ sets: phases.f!.sets, updates: phases.f!.updates }, { sets: secondHalf, updates: secondHalf });
    // The state part: every entry written was read back.
    assert.equal(result.state?.entries, STATE);
    assert.ok((result.state?.fileBytes ?? 0) > STATE * 8);
    // The markdown table went to stdout.
    assert.match(stdout, /\| \(d\) re-sync, 1 % changed, 0\.1 % deleted \|/);
    assert.match(stdout, /Machine: .*cores/);
    // The phases ran the bundle the build made (scripts/bundle.mjs). Each of its chunks links: the connectors the
    // bench did not use (PostgreSQL and Mixpanel are), with the packages left out of it.
    const bundle = join(root, "dist", "bundle");
    const chunks = readdirSync(bundle).filter((name) => name.endsWith(".js"));
    assert.ok(chunks.includes("cli.js") && chunks.length > 3, `bundle files: ${chunks.join(", ")}`);
    for (const chunk of chunks.filter((name) => name !== "cli.js"))
      await import(pathToFileURL(join(bundle, chunk)).href);
    // pg's chunk loads without pg's Cloudflare probe, which builds a Response and so loads Node's own fetch
    // implementation (about 45 ms of every command that reads a table): scripts/bundle.mjs takes pg's Node.js branch.
    const pgChunk = chunks.find((name) =>
      readFileSync(join(bundle, name), "utf8").includes("node_modules/pg/lib/stream.js"),
    );
    assert.ok(pgChunk, "a chunk holds pg");
    const probe = `await import(${JSON.stringify(pathToFileURL(join(bundle, pgChunk)).href)}); console.log(JSON.stringify(process.moduleLoadList.filter((name) => name.includes("deps/undici"))));`;
    const loaded = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["--input-type=module", "-e", probe], (error, text) =>
        error ? reject(error) : resolve(text),
      ),
    );
    assert.deepEqual(JSON.parse(loaded), [], "loading pg's chunk loads none of Node's fetch");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
