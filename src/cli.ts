#!/usr/bin/env node
/** Entry point of the `groupsync` command (see cli/program.ts). */
import { main } from "./cli/program.js";

const code = await main(process.argv);
process.exitCode = code;
// Connections close on their own; this only guards against a stuck handle keeping a finished command alive.
setTimeout(() => process.exit(code), 2000).unref();
