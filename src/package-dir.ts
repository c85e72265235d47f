/** Finding an npm package's folder on disk from a file inside it. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * The nearest folder at or above `from` whose package.json names `name`, with that manifest; undefined if none
 * does. A package's `exports` may hide its package.json from require.resolve, and a file may sit several folders
 * deep in it (src/cli in a checkout, dist/bundle when built).
 */
export function packageDir(
  from: string,
  name: string,
): { readonly dir: string; readonly manifest: { readonly version?: unknown } } | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    let manifest: { name?: unknown; version?: unknown } | undefined;
    try {
      manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    } catch {
      // No package.json here (or not JSON): look further up.
    }
    if (manifest?.name === name) return { dir, manifest };
    if (dirname(dir) === dir) return undefined;
  }
}
