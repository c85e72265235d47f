#!/usr/bin/env node
// The second half of `npm run build`: bundles the compiled CLI (dist/src/cli.js) with esbuild into dist/bundle, which
// bin/groupsync.js runs. Loading one module graph of a few files instead of several hundred (zod alone is about a
// hundred) starts every command about 0.25 s sooner, which a scheduled sync pays on every run.
// Kept out, loaded from node_modules as before: snowflake-sdk (tens of MB, loaded by the Snowflake session only when
// it connects; it finds its own files at run time), pg's optional native binding, and undici (its CommonJS exports do
// not survive esbuild's dynamic-import interop: `Pool` came back undefined). Connectors stay in chunks of their own.
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

// pg asks at load time whether it runs in Cloudflare Workers: with no `navigator` (Node.js 20 has none) it builds a
// `Response`, and the first use of `Response` loads Node's own fetch implementation, about 45 ms of every command
// that reads a table, before the first query. The bundle runs on Node.js only: pg's Node.js branch is taken without
// asking. The build fails if pg's code no longer has the call, so an upgrade cannot silently undo this.
const PG_RUNTIME_PROBE = "if (isCloudflareRuntime()) {";
const pgNodeOnly = {
  name: "pg-node-only",
  setup(build) {
    build.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (!text.includes(PG_RUNTIME_PROBE)) {
        throw new Error(
          `${args.path} no longer contains "${PG_RUNTIME_PROBE}": check scripts/bundle.mjs's pg-node-only`,
        );
      }
      return { contents: text.replace(PG_RUNTIME_PROBE, "if (false /* groupsync: Node.js only */) {"), loader: "js" };
    });
  },
};
const outdir = `${root}/dist/bundle`;
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [`${root}/dist/src/cli.js`],
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["snowflake-sdk", "pg-native", "undici"],
  plugins: [pgNodeOnly],
  // CommonJS dependencies bundled into ES modules still call require() and read __filename.
  banner: {
    js: [
      'import { createRequire as __gsRequire } from "node:module";',
      'import { fileURLToPath as __gsPath } from "node:url";',
      'import { dirname as __gsDirname } from "node:path";',
      "const require = __gsRequire(import.meta.url);",
      "const __filename = __gsPath(import.meta.url);",
      "const __dirname = __gsDirname(__filename);",
    ].join(" "),
  },
  logLevel: "warning",
});
