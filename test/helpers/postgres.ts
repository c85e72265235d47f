/**
 * A fresh database per test file on the suite's PostgreSQL server. `npm test` starts one server for the whole
 * suite and passes its URL in GROUPSYNC_TEST_PG_URL; a test file run on its own starts its own server.
 */
import pg from "pg";
import { createDatabase, type RunningPostgres, startEmbeddedPostgres } from "../../src/demo/embedded-postgres.js";

let ownServer: Promise<RunningPostgres> | undefined;

async function serverUrl(): Promise<string> {
  const fromEnv = process.env.GROUPSYNC_TEST_PG_URL;
  if (fromEnv) return fromEnv;
  ownServer ??= startEmbeddedPostgres().then((server) => {
    process.once("exit", () => void server.stop());
    return server;
  });
  return (await ownServer).url;
}

export interface TestDatabase {
  /** URL of the new database. */
  readonly url: string;
  /** Runs SQL on the new database (as superuser). */
  query(sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** Drops the database and stops a server this process started. */
  dispose(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = await serverUrl();
  const { name, url } = await createDatabase(adminUrl, "t");
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // An idle connection ended by the server (a test that terminates backends) must not crash the test process.
  pool.on("error", () => undefined);
  return {
    url,
    query: (sql, values) => pool.query(sql, values),
    async dispose() {
      await pool.end();
      const cleanup = new pg.Client({ connectionString: adminUrl });
      await cleanup.connect();
      cleanup.on("error", () => undefined);
      // Connections a test left open (a source closing in the background) get a moment to go; terminating them at
      // once makes their clients emit errors that no one listens to any more.
      for (let attempt = 0; ; attempt++) {
        try {
          await cleanup.query(`DROP DATABASE IF EXISTS ${name}${attempt >= 20 ? " WITH (FORCE)" : ""}`);
          break;
        } catch (error) {
          if (attempt >= 20 || (error as { code?: string }).code !== "55006") throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      await cleanup.end();
      if (ownServer) {
        const server = await ownServer;
        ownServer = undefined;
        await server.stop();
      }
    },
  };
}
