#!/usr/bin/env node
// The `groupsync` command. In a checkout it runs the TypeScript sources through tsx; an installed package runs
// the compiled dist/, and so does a checkout with GROUPSYNC_DIST=1 after `npm run build` (the bench measures that).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";

// Memory: between full collections V8 lets the old generation grow to several times its live size, and a sync's
// garbage (row batches, requests in flight) is mostly promoted there. Growing it by at most 50 % at a time keeps the
// peak RSS near the live size for a few per cent more CPU (README, Performance). V8 reads this flag at every
// collection, so setting it here works; a value given on the command line or in NODE_OPTIONS wins.
if (![...process.execArgv, process.env.NODE_OPTIONS ?? ""].some((arg) => arg.includes("heap-growing-percent"))) {
  v8.setFlagsFromString("--heap-growing-percent=50");
}

const source = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
if (existsSync(source) && process.env.GROUPSYNC_DIST !== "1") {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli.ts", import.meta.url).href);
} else {
  // `npm run build` bundles the CLI into dist/bundle (scripts/bundle.mjs): one file to load instead of hundreds
  // starts every command about 0.25 s sooner. dist/src is what tsc compiled, for a build without the bundle.
  const bundle = new URL("../dist/bundle/cli.js", import.meta.url);
  await import(existsSync(fileURLToPath(bundle)) ? bundle.href : new URL("../dist/src/cli.js", import.meta.url).href);
}
