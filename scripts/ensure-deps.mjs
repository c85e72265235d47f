#!/usr/bin/env node
// Installs the project's dependencies when they are missing or older than package-lock.json, so that
// `npm run demo` and `npm test` work on a fresh clone as the only command. Does nothing when up to date.
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const lock = `${root}/package-lock.json`;
const installed = `${root}/node_modules/.package-lock.json`;

const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  console.error("groupsync: installing dependencies (npm install, from package-lock.json)…");
  // Not `npm ci`: its strict lock check fails on registries that do not serve every platform's optional binary
  // (e.g. Biome's), while `npm install` installs exactly the locked versions that exist for this platform.
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: root, stdio: "inherit" });
}
