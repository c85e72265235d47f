/**
 * Control over fsync in a test: a disk slow to fsync, or one whose fsync fails. It replaces FileHandle#sync (the
 * method node:fs/promises calls) for the rest of the test.
 */
import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import { join } from "node:path";

/**
 * Each fsync is counted and waits until `release()`; with `control.fail` set it then fails with EIO. `dir`: where a
 * probe file is opened, to reach the FileHandle prototype.
 */
export async function slowSync(t: { after(fn: () => void): void }, dir: string) {
  const probe = await open(join(dir, "probe"), "w");
  const prototype = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
  await probe.close();
  const original = prototype.sync;
  const control = { calls: 0, fail: false, held: [] as (() => void)[] };
  prototype.sync = async function (this: unknown) {
    control.calls++;
    await new Promise<void>((resolve) => control.held.push(resolve));
    if (control.fail) throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
    return original.call(this);
  };
  t.after(() => {
    prototype.sync = original;
  });
  const release = () => {
    for (const resolve of control.held.splice(0)) resolve();
  };
  return { control, release };
}

export const turns = () => new Promise((resolve) => setImmediate(resolve));
/** Waits (up to 5 s) until `done()` holds: a write before an fsync goes through libuv's thread pool. */
export async function until(done: () => boolean, what: string): Promise<void> {
  for (const start = Date.now(); !done(); await new Promise((resolve) => setTimeout(resolve, 2))) {
    if (Date.now() - start > 5000) assert.fail(`timed out waiting until ${what}`);
  }
}
