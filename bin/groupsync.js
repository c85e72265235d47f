#!/usr/bin/env node
// The `groupsync` command. In a checkout it runs the TypeScript sources through tsx; an installed package runs
// the compiled dist/.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli.ts", import.meta.url).href);
} else {
  await import(new URL("../dist/src/cli.js", import.meta.url).href);
}
