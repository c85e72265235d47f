/**
 * The Snowflake source. One session per run; every value comes back as text (`fetchAsString`; temporal types
 * rendered by Snowflake's TO_VARCHAR in fixed formats, in UTC), because the engine hashes that text and the next run
 * must produce the very same bytes. Rows stream from the driver's result chunks, one chunk (plus the driver's
 * prefetch) in memory at a time, and are counted against the size Snowflake announced; reads are single SELECTs,
 * never anything that writes. Optional capabilities (pushdown-sql.ts): incremental keyset pages, hash push-down (keys
 * with a row hash computed by Snowflake, lookup of full rows by key), row counts and key checks.
 */
import type { Readable } from "node:stream";
import { SourceError } from "../../src/errors.js";
import type { KeyCheck, RawRow, ReadOptions, ReadSpec, Source, SourceColumn } from "../../src/source.js";
import type { SnowflakeSourceConfig } from "./config.js";
import { connectionOptions } from "./connection-options.js";
import { describeTarget, loginError, type QueryContext, queryError } from "./errors.js";
import { changesSql, countSql, hashKeysSql, keyCheckSql, lookupSql, NOW_SQL, watermarkSql } from "./pushdown-sql.js";
import { openSession, type SnowflakeSession } from "./session.js";
import { CONTEXT_SQL, describeSql, quoteRelation, readSql, type Statement, sessionSql } from "./sql.js";
import { type CellRenderer, columnOf, rendererOf, type SnowflakeColumnInfo } from "./types.js";

export interface SnowflakeSourceOptions {
  /** The sync's name: the default query tag is `groupsync:<sync>`. */
  readonly sync?: string;
}

export function createSnowflakeSource(config: SnowflakeSourceConfig, options: SnowflakeSourceOptions = {}): Source {
  const queryTag = config.query_tag ?? (options.sync ? `groupsync:${options.sync}` : "groupsync");
  /** Columns of each `from`/`query` described this run, for the read's per-column rendering. */
  const described = new Map<string, readonly SnowflakeColumnInfo[]>();
  let session: Promise<SnowflakeSession> | undefined;
  let closing: Promise<void> | undefined;

  function connect(): Promise<SnowflakeSession> {
    if (closing) {
      return Promise.reject(
        new SourceError("the Snowflake source is closed", {
          code: "SOURCE_CLOSED",
          action: "This is a bug in groupsync: a read started after the run ended.",
        }),
      );
    }
    session ??= (async () => {
      let opened: SnowflakeSession;
      try {
        opened = await openSession(await connectionOptions(config, queryTag));
      } catch (error) {
        throw loginError(error, config);
      }
      try {
        await opened.execute(sessionSql(config.statement_timeout));
      } catch (error) {
        await opened.close();
        throw queryError(error, { what: "the session settings", queryLine: 0, config });
      }
      return opened;
    })();
    return session;
  }

  function context(statement: Statement, spec: Pick<ReadSpec, "from" | "query">): QueryContext {
    return {
      what: spec.from !== undefined ? `table ${quoteRelation(spec.from)}` : "the query",
      queryLine: statement.queryLine,
      config,
      ...(statement.query !== undefined ? { userQuery: statement.query } : {}),
    };
  }

  async function describeColumns(spec: Pick<ReadSpec, "from" | "query">): Promise<readonly SnowflakeColumnInfo[]> {
    const statement = describeSql(spec);
    const opened = await connect();
    try {
      const result = await opened.execute(statement.sql, { describeOnly: true });
      described.set(keyOf(spec), result.columns);
      return result.columns;
    } catch (error) {
      throw queryError(error, context(statement, spec));
    }
  }

  return {
    async check() {
      const opened = await connect();
      let row: RawRow | undefined;
      try {
        const result = await opened.execute(CONTEXT_SQL);
        for await (const cells of result.rows()) row ??= cells as RawRow;
      } catch (error) {
        throw queryError(error, { what: "the session context", queryLine: 0, config });
      }
      checkContext(config, row ?? []);
    },

    async describe(spec): Promise<readonly SourceColumn[]> {
      return (await describeColumns(spec)).map(columnOf);
    },

    read(spec, readOptions) {
      return readRows(spec, readOptions);
    },

    changes: {
      async now() {
        const opened = await connect();
        let row: RawRow | undefined;
        try {
          const result = await opened.execute(NOW_SQL);
          for await (const cells of result.rows()) row ??= cells as RawRow;
        } catch (error) {
          throw queryError(error, { what: "the warehouse clock", queryLine: 0, config });
        }
        return row?.[0] as string;
      },
      async watermark(spec) {
        const byName = await columnsOf(spec);
        const [row] = await queryRows(watermarkSql(spec, byName), spec, []);
        return row?.[0] ?? undefined;
      },
      async page(spec, pageOptions) {
        const byName = await columnsOf(spec);
        return queryRows(changesSql(spec, byName), spec, renderersOf(spec.columns, byName), pageOptions.signal);
      },
    },

    hashes: {
      async *keys(spec, readOptions) {
        const byName = await columnsOf(spec);
        // The key cells render as read() renders them; the hash is already text.
        const renderers = [...renderersOf(spec.orderBy, byName), undefined];
        yield* streamRows(hashKeysSql(spec, byName), spec, renderers, readOptions);
      },
      async lookup(spec, keys, lookupOptions) {
        if (keys.length === 0) return [];
        const byName = await columnsOf(spec);
        const renderers = renderersOf(spec.columns, byName);
        // Statements stay under Snowflake's 1 MB guideline: as few as fit, merged back into key order.
        const parts = splitKeys(keys, LOOKUP_BIND_BYTES);
        const rows: RawRow[] = [];
        for (const part of parts) {
          rows.push(...(await queryRows(lookupSql(spec, part, byName), spec, renderers, lookupOptions.signal)));
        }
        if (parts.length > 1) {
          const keyIndexes = spec.orderBy.map((name) => spec.columns.indexOf(name));
          rows.sort((a, b) => compareKeys(keyIndexes, a, b));
        }
        return rows;
      },
    },

    async count(spec) {
      const [row] = await queryRows(countSql(spec), spec, []);
      return Number(row?.[0] ?? 0);
    },

    async checkKeys(spec): Promise<KeyCheck> {
      const [row] = await queryRows(keyCheckSql(spec), spec, []);
      const [rows = 0, nullKeys = 0, duplicateKeys = 0, duplicateRows = 0] = (row ?? []).map((cell) => Number(cell));
      return { rows, nullKeys, duplicateKeys, duplicateRows };
    },

    close() {
      closing ??= (async () => {
        const opened = await session?.catch(() => undefined);
        await opened?.close();
      })();
      return closing;
    },
  };

  /** The described columns of `spec`'s relation by name (described once a run). */
  async function columnsOf(spec: Pick<ReadSpec, "from" | "query">): Promise<ReadonlyMap<string, SnowflakeColumnInfo>> {
    const columns = described.get(keyOf(spec)) ?? (await describeColumns(spec));
    return new Map(columns.map((column) => [column.name, column]));
  }

  async function* readRows(spec: ReadSpec, options: ReadOptions): AsyncGenerator<readonly RawRow[]> {
    const byName = await columnsOf(spec);
    yield* streamRows(readSql(spec, byName), spec, renderersOf(spec.columns, byName), options);
  }

  /** One short statement's rows (a page, a lookup, an aggregate), rendered. */
  async function queryRows(
    statement: Statement,
    spec: Pick<ReadSpec, "from" | "query">,
    renderers: readonly (CellRenderer | undefined)[],
    signal?: AbortSignal,
  ): Promise<RawRow[]> {
    const rows: RawRow[] = [];
    for await (const batch of streamRows(statement, spec, renderers, {
      batchSize: 10_000,
      ...(signal ? { signal } : {}),
    })) {
      rows.push(...batch);
    }
    return rows;
  }

  async function* streamRows(
    statement: Statement,
    spec: Pick<ReadSpec, "from" | "query">,
    renderers: readonly (CellRenderer | undefined)[],
    options: ReadOptions,
  ): AsyncGenerator<readonly RawRow[]> {
    const { signal, batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new SourceError(`invalid batch size ${batchSize}`, {
        code: "SOURCE_SPEC_INVALID",
        action: "Set fetch_size to a whole number of rows, at least 1.",
      });
    }
    signal?.throwIfAborted();
    const opened = await connect();
    let rows: Readable | undefined;
    try {
      const result = await opened.execute(statement.sql, {
        ...(signal ? { signal } : {}),
        ...(statement.binds ? { binds: statement.binds } : {}),
      });
      rows = result.rows();
      let batch: RawRow[] = [];
      let received = 0;
      for await (const row of watched(rows, config.fetch_timeout, signal)) {
        received++;
        batch.push(render(row, renderers));
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      // The driver drops a chunk it cannot parse and goes on with the next one: count what arrived.
      if (received !== result.rowCount) throw incomplete(received, result.rowCount);
      if (batch.length > 0) yield batch;
    } catch (error) {
      if (signal?.aborted && error === signal.reason) throw error;
      throw queryError(error, context(statement, spec));
    } finally {
      rows?.destroy();
    }
  }
}

/** One row's cells as the engine's raw text: null stays null, the kind's renderer applies. */
function render(row: readonly unknown[], renderers: readonly (CellRenderer | undefined)[]): RawRow {
  const out: (string | null)[] = new Array(row.length);
  for (let i = 0; i < row.length; i++) {
    const cell = row[i];
    if (cell === null || cell === undefined) {
      out[i] = null;
      continue;
    }
    const text = typeof cell === "string" ? cell : String(cell);
    const renderer = renderers[i];
    out[i] = renderer ? renderer(text) : text;
  }
  return out;
}

/**
 * The stream's rows, failing when the next row takes longer than `timeout` to arrive (a chunk download that
 * stalls, or a chunk the driver cannot parse: it drops that error and would wait forever) or when `signal` aborts.
 * Time the consumer spends between rows does not count.
 */
async function* watched(stream: Readable, timeout: number, signal: AbortSignal | undefined): AsyncGenerator<unknown[]> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<unknown[]>;
  let waitingSince = 0;
  const timer = setInterval(
    () => {
      if (waitingSince !== 0 && Date.now() - waitingSince > timeout) {
        stream.destroy(
          new SourceError(`no result data arrived for ${Math.round(timeout / 1000)} s; the result download stalled`, {
            code: "SOURCE_FETCH_STALLED",
            action:
              "Check the connection to Snowflake and its result storage, or raise `fetch_timeout` in the source config; then run the sync again.",
          }),
        );
      }
    },
    Math.max(10, Math.min(1000, timeout / 4)),
  );
  timer.unref();
  const onAbort = () => stream.destroy(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      waitingSince = Date.now();
      const next = await iterator.next();
      waitingSince = 0;
      if (next.done) return;
      yield next.value;
    }
  } finally {
    clearInterval(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

function incomplete(received: number, announced: number): SourceError {
  return new SourceError(`the result was incomplete: ${received} of ${announced} rows arrived`, {
    code: "SOURCE_RESULT_INCOMPLETE",
    action:
      "A result chunk was damaged on its way (a proxy or firewall between this machine and Snowflake's result storage?); run the sync again.",
  });
}

/** Fails with the setting to fix when the login left the warehouse, database or schema unset. */
function checkContext(config: SnowflakeSourceConfig, row: RawRow): void {
  const [warehouse, database, schema, role] = row;
  const asRole = role ? `role ${role}` : "the role";
  const missing = (what: string, name: string, grant: string) =>
    new SourceError(`${what} ${name} does not exist, or ${asRole} may not use it (${describeTarget(config)})`, {
      code: `SOURCE_${what.toUpperCase()}`,
      action: `Check \`${what}\` in the source config (unquoted names are upper-cased), and ${grant}.`,
    });
  if (!warehouse)
    throw missing("warehouse", config.warehouse, `GRANT USAGE ON WAREHOUSE ${config.warehouse} TO ROLE …`);
  if (!database) throw missing("database", config.database, `GRANT USAGE ON DATABASE ${config.database} TO ROLE …`);
  if (config.schema && !schema) {
    throw missing("schema", config.schema, `GRANT USAGE ON SCHEMA ${config.database}.${config.schema} TO ROLE …`);
  }
}

/** The renderers of these columns (undefined where the text is used as is). */
function renderersOf(
  names: readonly string[],
  byName: ReadonlyMap<string, SnowflakeColumnInfo>,
): (CellRenderer | undefined)[] {
  return names.map((name) => {
    const column = byName.get(name);
    return column ? rendererOf(column) : undefined;
  });
}

/**
 * Bytes of keys (as JSON) one lookup statement binds. Snowflake asks for statements, bound values included, of at
 * most 1 MB: a larger one runs, but is truncated in the query history and cannot be retried.
 * https://docs.snowflake.com/en/user-guide/query-size-limits
 */
const LOOKUP_BIND_BYTES = 900 * 1024;

/** Splits keys into parts whose JSON stays under `limit` bytes. */
function splitKeys(keys: readonly (readonly string[])[], limit: number): (readonly string[])[][] {
  const parts: (readonly string[])[][] = [];
  let part: (readonly string[])[] = [];
  let bytes = 2;
  for (const key of keys) {
    const size = Buffer.byteLength(JSON.stringify(key), "utf8") + 1;
    if (part.length > 0 && bytes + size > limit) {
      parts.push(part);
      part = [];
      bytes = 2;
    }
    part.push(key);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/** Rows by their key texts in code-point (UTF-8 byte) order, as read() orders them. */
function compareKeys(indexes: readonly number[], a: RawRow, b: RawRow): number {
  for (const index of indexes) {
    const order = Buffer.compare(Buffer.from(a[index] ?? "", "utf8"), Buffer.from(b[index] ?? "", "utf8"));
    if (order !== 0) return order;
  }
  return 0;
}

function keyOf(spec: Pick<ReadSpec, "from" | "query">): string {
  return spec.from !== undefined ? `from:${spec.from}` : `query:${spec.query}`;
}
