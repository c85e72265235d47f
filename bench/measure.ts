/**
 * Runs one command as a child process and measures it: wall time, and peak RSS and CPU time through GNU time
 * (`/usr/bin/time -f "%M %U %S"`: the child's ru_maxrss in KiB and its user and system seconds, from wait4(2)). That covers the whole process (V8 heap, Buffers, the tsx
 * loader thread, native memory) without any hook inside groupsync. Without /usr/bin/time, RSS is reported as null.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const GNU_TIME = "/usr/bin/time";

export interface Measured {
  readonly wallMs: number;
  /** Peak resident set size in MiB, or null when /usr/bin/time is missing. */
  readonly peakRssMb: number | null;
  /** User + system CPU seconds, or null when /usr/bin/time is missing. On a shared machine, steadier than wall time. */
  readonly cpuSec: number | null;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export const canMeasureRss = (): boolean => existsSync(GNU_TIME);

/**
 * Runs `command args` with `env`; stdout is captured unless `discardStdout` (then it goes to /dev/null, as the
 * baseline's `> /dev/null`).
 */
export async function measure(
  command: string,
  args: readonly string[],
  options: { readonly env?: NodeJS.ProcessEnv; readonly cwd?: string; readonly discardStdout?: boolean } = {},
): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), "groupsync-bench-time-"));
  const rssFile = join(dir, "rss");
  const timed = canMeasureRss();
  const [file, argv] = timed ? [GNU_TIME, ["-f", "%M %U %S", "-o", rssFile, command, ...args]] : [command, [...args]];
  const stdoutFd = options.discardStdout ? openSync("/dev/null", "w") : "pipe";
  const started = performance.now();
  try {
    const child = spawn(file, argv, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["ignore", stdoutFd, "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const code = await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (status, signal) => resolve(status ?? (signal ? 128 : 1)));
    });
    const wallMs = performance.now() - started;
    let peakRssMb: number | null = null;
    let cpuSec: number | null = null;
    if (timed && existsSync(rssFile)) {
      // GNU time writes "Command exited with non-zero status N" before the numbers when the command fails.
      const [kib, user, system] = (readFileSync(rssFile, "utf8").trim().split("\n").at(-1) ?? "")
        .split(" ")
        .map(Number);
      if (Number.isFinite(kib)) peakRssMb = kib! / 1024;
      if (Number.isFinite(user) && Number.isFinite(system)) cpuSec = user! + system!;
    }
    return { wallMs, peakRssMb, cpuSec, code, stdout, stderr };
  } finally {
    if (typeof stdoutFd === "number") closeSync(stdoutFd);
    rmSync(dir, { recursive: true, force: true });
  }
}
