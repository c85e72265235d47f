/**
 * Connectors are imported only when a config uses them (each brings its SDKs: pg, undici, snowflake-sdk; the
 * Mixpanel destination imports undici at its first request). Checked
 * in a fresh process, whose CommonJS module cache shows which packages were loaded: pg is the PostgreSQL
 * connector's alone.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Loads the connectors for one sync of the given source and destination types; returns what got imported. */
function loaded(types: { source?: string; destination?: string } | "all"): Promise<Record<string, boolean>> {
  const syncs =
    types === "all"
      ? "undefined"
      : JSON.stringify([
          {
            name: "s",
            source: { config: { type: types.source } },
            destination: { config: { type: types.destination } },
          },
        ]);
  const script = `
    import { createRequire } from "node:module";
    import { loadConnectors } from "./src/connectors.ts";
    const connectors = await loadConnectors(${syncs});
    const cache = Object.keys(createRequire(import.meta.url).cache);
    const has = (name) => cache.some((path) => path.includes("/node_modules/" + name + "/"));
    console.log(JSON.stringify({ snowflake: has("snowflake-sdk"), pg: has("pg"), undici: has("undici"), factories: typeof connectors.createSource }));
  `;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      { cwd: root, timeout: 60_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    );
  });
}

test("a Snowflake → Mixpanel sync loads neither the PostgreSQL connector, nor snowflake-sdk before it connects, nor undici before it sends", async () => {
  const modules = await loaded({ source: "snowflake", destination: "mixpanel" });
  assert.deepEqual(modules, { snowflake: false, pg: false, undici: false, factories: "function" });
});

test("a PostgreSQL → Mixpanel sync loads pg (and undici only at its first request)", async () => {
  const modules = await loaded({ source: "postgres", destination: "mixpanel" });
  assert.deepEqual(modules, { snowflake: false, pg: true, undici: false, factories: "function" });
});

test("without syncs (as tests do) every connector is loaded", async () => {
  const modules = await loaded("all");
  assert.equal(modules.pg, true);
});
