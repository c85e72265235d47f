/**
 * The PostgreSQL source. Every value comes back as the server's own text (no type parsing), rendered under fixed
 * session settings, because the engine hashes that text and PostgreSQL must be able to compute the same hash later.
 * Reads stream through a cursor inside a READ ONLY transaction, fetching one chunk ahead: two chunks in memory at most.
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import pg from "pg";
import copyStreams from "pg-copy-streams";
import Cursor from "pg-cursor";
import { copyRows as parseCopyRows } from "../../src/copy-text.js";
import { SourceError } from "../../src/errors.js";
import type { HashReader, RawRow, ReadOptions, ReadSpec, Source, SourceColumn } from "../../src/source.js";
import type { PostgresSourceConfig } from "./config.js";
import { connectionError, type QueryContext, queryError } from "./errors.js";
import {
  type ColumnTypes,
  changesSql,
  countSql,
  describeSql,
  hashSql,
  keyCheckSql,
  lookupSql,
  quoteRelation,
  readSql,
  type Statement,
  watermarkSql,
} from "./sql.js";
import { columnOf, type PgTypeRow, TYPE_INFO_SQL } from "./types.js";

/** pg-copy-streams is CommonJS: its `to` is reached through the default export. */
const copyTo = copyStreams.to;

/**
 * Leaves every value as the text the server sent. pg's typings want the overloaded `getTypeParser` of pg-types.
 * https://node-postgres.com/features/queries#types
 */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

/**
 * The rendering the hashes depend on: UTC instants, ISO dates, ISO 8601 intervals, shortest exact floats, hex bytea.
 * Set per session once, right after connecting; `pg_backend_pid()` lets an aborted read cancel its own query.
 */
const SESSION_SQL = `SELECT pg_backend_pid() AS pid,
  set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO, YMD', false),
  set_config('IntervalStyle', 'iso_8601', false), set_config('extra_float_digits', '1', false),
  set_config('bytea_output', 'hex', false), set_config('client_encoding', 'UTF8', false)`;

/** How long an aborted read waits for PostgreSQL to confirm the cancel before dropping the connection. */
const CANCEL_WAIT_MS = 5000;

/** A connection checked out of the pool; `release` is safe to call twice. */
interface Lease {
  readonly client: pg.PoolClient;
  readonly pid: number;
  readonly released: boolean;
  release(destroy?: boolean): void;
}

/**
 * Settings of the hash pass's transaction with `parallel_hash`. The planner prices the row hash as one operator per
 * row, not as the hashing of every column it is, so it keeps a read of a million keys in one process: the cost it
 * charges for passing each row from a worker to the leader outweighs the work it sees. Without that charge, a big
 * enough read (past `min_parallel_index_scan_size`/`min_parallel_table_scan_size`, and worth `parallel_setup_cost`) runs
 * as a Gather Merge over parallel scans, which keeps the key order. The number of workers stays the server's
 * (`max_parallel_workers_per_gather`, `max_parallel_workers`), and a cursor never runs in parallel, so reads with
 * parameters do not change.
 */
const PARALLEL_HASH = "; SET LOCAL parallel_tuple_cost = 0";

export function createPostgresSource(config: PostgresSourceConfig): Source {
  const target = describeTarget(config.url.reveal());
  const timeout = Math.max(0, Math.trunc(config.statement_timeout));
  const initialised = new WeakMap<pg.PoolClient, number>();
  const leases = new Set<Lease>();
  let pool: pg.Pool | undefined;
  /** Key columns of type text or varchar, by relation: a lookup compares them as they are, so an index serves it. */
  const textColumns = new Map<string, ReadonlySet<string>>();
  /** Column types by relation, from `describe`: the row hash's terms depend on them. */
  const columnTypes = new Map<string, ColumnTypes>();
  /** `server_version_num`, from `check`: the row hash needs `hash_record_extended` (PostgreSQL 14). */
  let serverVersion: number | undefined;
  let closing: Promise<void> | undefined;

  async function acquire(): Promise<Lease> {
    if (closing) {
      throw new SourceError("the PostgreSQL source is closed", {
        code: "SOURCE_CLOSED",
        action: "This is a bug in groupsync: a read started after the run ended.",
      });
    }
    pool ??= createPool(config);
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw connectionError(error, target);
    }
    // Errors on a checked-out client between queries would otherwise be thrown as an 'error' event; the next query
    // on it fails and reports them.
    const ignore = () => undefined;
    client.on("error", ignore);
    let released = false;
    const release = (destroy = false) => {
      if (released) return;
      released = true;
      leases.delete(lease);
      client.off("error", ignore);
      client.release(destroy);
    };
    let pid = initialised.get(client);
    if (pid === undefined) {
      try {
        const { rows } = await client.query<{ pid: string }>(SESSION_SQL);
        pid = Number(rows[0]?.pid);
        initialised.set(client, pid);
      } catch (error) {
        client.off("error", ignore);
        client.release(true);
        throw connectionError(error, target);
      }
    }
    const lease: Lease = {
      client,
      pid,
      get released() {
        return released;
      },
      release,
    };
    leases.add(lease);
    return lease;
  }

  /** Opens the read-only transaction every statement runs in. The timeout is an integer we computed, not input. */
  async function begin(lease: Lease, settings = ""): Promise<void> {
    await lease.client.query(`BEGIN READ ONLY; SET LOCAL statement_timeout = ${timeout}${settings}`);
  }

  /** Ends the transaction and returns the connection; drops the connection if it is in an unknown state. */
  async function finish(lease: Lease): Promise<void> {
    if (lease.released) return;
    try {
      await lease.client.query("ROLLBACK");
      lease.release();
    } catch {
      lease.release(true);
    }
  }

  function context(statement: Statement, spec: Pick<ReadSpec, "from" | "query">): QueryContext {
    return {
      what: spec.from !== undefined ? `table ${quoteRelation(spec.from)}` : "the query",
      queryAt: statement.queryAt,
      statementTimeout: timeout,
      ...(statement.query !== undefined ? { userQuery: statement.query } : {}),
    };
  }

  /** Cancels the statement running on `lease` from another connection (best effort). */
  async function cancel(lease: Lease): Promise<void> {
    try {
      await pool?.query("SELECT pg_cancel_backend($1)", [lease.pid]);
    } catch {
      // The connection is dropped next anyway.
    }
  }

  const hashes: HashReader = {
    hashInRows: true,
    keys(spec, options) {
      const relation = relationKey(spec);
      return copyRows(spec, options, () => hashSql(spec, columnTypes.get(relation), textColumns.get(relation)));
    },
    keysText(spec, options) {
      const relation = relationKey(spec);
      const statement = hashSql(spec, columnTypes.get(relation), textColumns.get(relation));
      return statement.values && statement.values.length > 0 ? undefined : copyText(spec, options, statement);
    },
    lookup(spec, keys, options) {
      if (keys.length === 0) return Promise.resolve([]);
      const relation = relationKey(spec);
      const statement = lookupSql(spec, keys, textColumns.get(relation), columnTypes.get(relation));
      return queryRows(statement, context(statement, spec), options.signal);
    },
  };

  return {
    async check() {
      const lease = await acquire();
      try {
        const { rows } = await lease.client.query<{ encoding: string; version: string }>(
          "SELECT current_setting('server_encoding') AS encoding, current_setting('server_version_num') AS version",
        );
        const encoding = rows[0]?.encoding;
        serverVersion = Number(rows[0]?.version);
        if (encoding !== "UTF8") {
          throw new SourceError(`the database encoding is ${encoding}, not UTF8 (${target})`, {
            code: "SOURCE_ENCODING",
            action:
              "Read from a UTF8 database: groupsync orders Group IDs by code point, which PostgreSQL only gives on UTF8.",
          });
        }
      } catch (error) {
        throw queryError(error, { what: "the server settings", queryAt: -1, statementTimeout: timeout });
      } finally {
        lease.release();
      }
    },

    async describe(spec) {
      const statement = describeSql(spec);
      const lease = await acquire();
      try {
        await begin(lease);
        // Extended protocol: a query can never smuggle in a second statement (such as COMMIT) after ours.
        const result = await lease.client.query({ text: statement.sql, queryMode: "extended" } as pg.QueryConfig);
        const oids = [...new Set(result.fields.map((field) => field.dataTypeID))];
        const types = await lease.client.query<PgTypeRow>(TYPE_INFO_SQL, [oids]);
        const byOid = new Map(types.rows.map((row) => [Number(row.oid), row]));
        const columns = result.fields.map(
          (field): SourceColumn => columnOf(field.name, byOid.get(field.dataTypeID), field.dataTypeID),
        );
        columnTypes.set(
          relationKey(spec),
          new Map(
            result.fields.flatMap((field) => {
              const row = byOid.get(field.dataTypeID);
              return row ? [[field.name, row] as const] : [];
            }),
          ),
        );
        textColumns.set(
          relationKey(spec),
          new Set(columns.filter((column) => TEXT_TYPE_NAMES.has(column.dbType)).map((column) => column.name)),
        );
        return columns;
      } catch (error) {
        throw queryError(error, context(statement, spec));
      } finally {
        await finish(lease);
      }
    },

    read(spec, options) {
      return readRows(spec, options, () => readSql(spec, columnTypes.get(relationKey(spec))));
    },

    // PostgreSQL before 14 has no hash_record_extended: its runs read full rows.
    get hashes() {
      return serverVersion === undefined || serverVersion >= 140000 ? hashes : undefined;
    },

    changes: {
      async now() {
        const statement: Statement = { sql: "SELECT now()::text", queryAt: -1 };
        const [row] = await queryRows(statement, { what: "the server clock", queryAt: -1, statementTimeout: timeout });
        return row?.[0] as string;
      },
      async watermark(spec) {
        const statement = watermarkSql(spec);
        const [row] = await queryRows(statement, context(statement, spec));
        return row?.[0] ?? undefined;
      },
      page(spec, options) {
        const statement = changesSql(spec);
        return queryRows(statement, context(statement, spec), options.signal);
      },
    },

    async count(spec) {
      const statement = countSql(spec);
      const [row] = await queryRows(statement, context(statement, spec));
      return Number(row?.[0] ?? 0);
    },

    async checkKeys(spec) {
      const statement = keyCheckSql(spec);
      const [row] = await queryRows(statement, context(statement, spec));
      const [rows = 0, nullKeys = 0, duplicateKeys = 0, duplicateRows = 0] = (row ?? []).map((cell) => Number(cell));
      return { rows, nullKeys, duplicateKeys, duplicateRows };
    },

    close() {
      closing ??= (async () => {
        // A read its consumer never finished would hold pool.end() forever.
        for (const lease of [...leases]) lease.release(true);
        await pool?.end();
      })();
      return closing;
    },
  };

  /**
   * Runs one short statement in a read-only transaction and returns its rows as text. An abort cancels the
   * statement on the server and drops the connection.
   */
  async function queryRows(statement: Statement, where: QueryContext, signal?: AbortSignal): Promise<RawRow[]> {
    signal?.throwIfAborted();
    const lease = await acquire();
    let running: Promise<unknown> | undefined;
    try {
      await begin(lease);
      const query = lease.client.query({
        text: statement.sql,
        values: statement.values ? [...statement.values] : [],
        rowMode: "array",
        types: TEXT_TYPES,
        // Extended protocol: a user's query or condition can never smuggle in a second statement.
        queryMode: "extended",
      } as pg.QueryConfig);
      running = query;
      const result = await untilAborted(query, signal);
      running = undefined;
      return result.rows as RawRow[];
    } catch (error) {
      if (signal?.aborted && error === signal.reason) throw error;
      running = undefined;
      throw queryError(error, where);
    } finally {
      if (running) {
        await cancel(lease);
        await Promise.race([running.catch(() => undefined), delay(CANCEL_WAIT_MS)]);
        lease.release(true);
      } else {
        await finish(lease);
      }
    }
  }

  /**
   * Streams a statement's rows with `COPY (…) TO STDOUT`, in the same read-only transaction: the server sends rows
   * while the engine works on earlier ones, with no round trip per chunk (the stream's backpressure bounds memory).
   * A statement with parameters, which COPY cannot take, is read through a cursor instead.
   */
  async function* copyRows(
    spec: ReadSpec,
    options: ReadOptions,
    build: () => Statement,
  ): AsyncGenerator<readonly RawRow[]> {
    checkBatchSize(options.batchSize);
    const inner = build();
    if (inner.values && inner.values.length > 0) {
      yield* readRows(spec, options, () => inner);
      return;
    }
    yield* parseCopyRows(copyText(spec, options, inner), options.batchSize);
  }

  /**
   * The COPY text of a hash pass without parameters, as the server sends it (chunks may end mid-row), in parallel
   * when `parallel_hash` lets it.
   */
  async function* copyText(spec: ReadSpec, options: ReadOptions, inner: Statement): AsyncGenerator<Buffer> {
    const { signal } = options;
    const prefix = "COPY (";
    const statement: Statement = {
      ...inner,
      sql: `${prefix}${inner.sql}) TO STDOUT`,
      queryAt: inner.queryAt < 0 ? -1 : inner.queryAt + prefix.length,
    };
    signal?.throwIfAborted();
    const lease = await acquire();
    let finished = false;
    const stream = copyTo(statement.sql);
    const abort = () => stream.destroy(signal?.reason);
    try {
      await begin(lease, config.parallel_hash ? PARALLEL_HASH : "");
      signal?.addEventListener("abort", abort, { once: true });
      yield* lease.client.query(stream) as AsyncIterable<Buffer>;
      finished = true;
    } catch (error) {
      if (signal?.aborted && error === signal.reason) throw error;
      throw queryError(error, context(statement, spec));
    } finally {
      signal?.removeEventListener("abort", abort);
      if (lease.released) {
        // close() already dropped the connection.
      } else if (finished) {
        await finish(lease);
      } else {
        // Stopped mid-COPY (a failure, an abort, a consumer that stopped early): the server may still be sending.
        stream.destroy();
        await cancel(lease);
        lease.release(true);
      }
    }
  }

  async function* readRows(
    spec: ReadSpec,
    options: ReadOptions,
    build: () => Statement,
  ): AsyncGenerator<readonly RawRow[]> {
    const { signal, batchSize } = options;
    checkBatchSize(batchSize);
    const statement = build();
    signal?.throwIfAborted();
    const lease = await acquire();
    let cursor: Cursor | undefined;
    let cursorFailed = false;
    let abortedFetch: Promise<unknown> | undefined;
    try {
      await begin(lease);
      cursor = lease.client.query(
        new Cursor(statement.sql, statement.values ? [...statement.values] : undefined, {
          rowMode: "array",
          types: TEXT_TYPES,
        }),
      );
      // One chunk ahead: the next chunk is asked for before this one is handed over, so the server produces it while
      // the engine works (a cursor read is a round trip, and the server would otherwise idle meanwhile). Two chunks
      // at most are in memory.
      let next: Promise<unknown[]> | undefined = cursor.read(batchSize);
      for (;;) {
        const fetching: Promise<unknown[]> = next ?? cursor.read(batchSize);
        next = undefined;
        const rows: unknown[] = await untilAborted(fetching, signal).catch((error: unknown) => {
          if (signal?.aborted && error === signal.reason) abortedFetch = fetching;
          else cursorFailed = true;
          throw error;
        });
        if (rows.length === 0) break;
        if (rows.length === batchSize) {
          next = cursor.read(batchSize);
          // Awaited in the next turn; a failure while the consumer works is seen there (or, after a stop, ignored).
          next.catch(() => undefined);
        }
        yield rows as RawRow[];
        signal?.throwIfAborted();
      }
    } catch (error) {
      if (signal?.aborted && error === signal.reason) throw error;
      throw queryError(error, context(statement, spec));
    } finally {
      if (lease.released) {
        // close() already dropped the connection.
      } else if (abortedFetch) {
        // Aborted mid-fetch: stop the server's work, then drop the connection, whose protocol state is unknown.
        await cancel(lease);
        await Promise.race([abortedFetch.catch(() => undefined), delay(CANCEL_WAIT_MS)]);
        lease.release(true);
      } else {
        // A cursor that failed has already ended; closing it again would wait for a reply that never comes. An open
        // one must be closed first: pg queues the ROLLBACK behind it.
        const closed = cursor && !cursorFailed ? cursor.close().then(() => true) : Promise.resolve(true);
        const done = await Promise.race([closed.catch(() => false), delay(CANCEL_WAIT_MS).then(() => false)]);
        if (done) await finish(lease);
        else lease.release(true);
      }
    }
  }
}

/** Types whose text is the value itself (no output function to apply before comparing). */
const TEXT_TYPE_NAMES = new Set(["text", "varchar"]);

const relationKey = (spec: Pick<ReadSpec, "from" | "query">) =>
  spec.from !== undefined ? `from:${spec.from}` : `query:${spec.query}`;

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new SourceError(`invalid batch size ${batchSize}`, {
      code: "SOURCE_SPEC_INVALID",
      action: "Set fetch_size to a whole number of rows, at least 1.",
    });
  }
}

function createPool(config: PostgresSourceConfig): pg.Pool {
  const url = config.url.reveal();
  const pool = new pg.Pool({
    connectionString: config.tls ? withoutTlsParameters(url) : url,
    ...(config.tls ? { ssl: tlsOptions(config.tls) } : {}),
    // One connection reads; the second runs describe or cancels an aborted read.
    max: 2,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 30_000,
    keepAlive: true,
    allowExitOnIdle: true,
    application_name: "groupsync",
    types: TEXT_TYPES,
  });
  // An idle connection the server closes: the pool drops it and the next checkout reconnects.
  pool.on("error", () => undefined);
  return pool;
}

type TlsConfig = NonNullable<PostgresSourceConfig["tls"]>;

/** The `tls` block as Node TLS options; like libpq, `require` with a CA file verifies the certificate chain. */
function tlsOptions(tls: TlsConfig): false | ConnectionOptions {
  if (tls.mode === "disable") return false;
  const files: ConnectionOptions = {
    ...(tls.ca_file ? { ca: readPem(tls.ca_file, "tls.ca_file") } : {}),
    ...(tls.cert_file ? { cert: readPem(tls.cert_file, "tls.cert_file") } : {}),
    ...(tls.key_file ? { key: readPem(tls.key_file, "tls.key_file") } : {}),
  };
  if (tls.mode === "require" && !tls.ca_file) return { ...files, rejectUnauthorized: false };
  if (tls.mode === "verify-full") return { ...files, rejectUnauthorized: true };
  return { ...files, rejectUnauthorized: true, checkServerIdentity: () => undefined };
}

function readPem(path: string, key: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new SourceError(`cannot read ${key} ${JSON.stringify(path)}: ${(error as Error).message}`, {
      code: "SOURCE_TLS_FILE",
      action: `Check the path in ${key} of the source config and that the file is readable.`,
      cause: error,
    });
  }
}

/** pg lets the URL's ssl parameters override the `ssl` option; with a `tls` block, the block decides. */
function withoutTlsParameters(url: string): string {
  try {
    const parsed = new URL(url);
    const names = ["ssl", "sslmode", "sslcert", "sslkey", "sslrootcert"].filter((name) =>
      parsed.searchParams.has(name),
    );
    if (names.length === 0) return url;
    for (const name of names) parsed.searchParams.delete(name);
    return parsed.toString();
  } catch {
    return url;
  }
}

/** `PostgreSQL at host:5432 (database db, user u)`: enough to find the wrong setting, never the password. */
function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    const host = decodeURIComponent(parsed.hostname) || "localhost";
    const user = decodeURIComponent(parsed.username);
    const database = decodeURIComponent(parsed.pathname.slice(1)) || user;
    return `PostgreSQL at ${host}:${parsed.port || "5432"} (database ${database || "?"}, user ${user || "?"})`;
  } catch {
    return "PostgreSQL";
  }
}

/** Settles like `promise`, or rejects with the abort reason as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
