/**
 * The interface every warehouse adapter implements (Postgres today, Snowflake next). The engine never imports a
 * driver: it asks a source for typed columns and ordered raw rows.
 */

/**
 * What kind of value a column holds, normalised across warehouses. The mapping layer coerces from the kind;
 * hashing always uses the raw text, so it does not depend on the kind.
 */
export type ValueKind =
  | "integer" // fits in a JS number exactly (int2, int4)
  | "bigint" // 64-bit integers: exact as strings beyond 2^53
  | "decimal" // numeric/NUMBER: exact as strings unless they round-trip through a double
  | "float" // float4/float8/FLOAT: may be NaN or Infinity
  | "boolean"
  | "text"
  | "timestamptz" // an instant; raw text is rendered in UTC by the source
  | "timestamp" // a wall-clock timestamp without zone; read as UTC
  | "date"
  | "time"
  | "json" // raw text is JSON
  | "array" // raw text needs `decode` to become a list
  | "binary"
  | "other"; // anything else: sent as its text

/** One column of a source result. */
export interface SourceColumn {
  /** Column name exactly as the warehouse returns it. */
  readonly name: string;
  /** The warehouse's own type name, for messages (e.g. `numeric`, `timestamptz`, `_text`). */
  readonly dbType: string;
  /** The normalised kind the mapping layer coerces from. */
  readonly kind: ValueKind;
  /** Turns raw text into a structured value, for kinds whose text needs parsing (arrays). */
  readonly decode?: (text: string) => unknown;
}

/**
 * A row as raw text cells, aligned with the columns of the read. The text is the warehouse's own rendering
 * (Postgres: the type's output function with TimeZone=UTC, DateStyle=ISO), so the warehouse can compute the
 * same hashes the engine computes.
 */
export type RawRow = readonly (string | null)[];

/** What to read: a table or a query, the columns needed and the key columns to order by. */
export interface ReadSpec {
  /** A table or view name, possibly schema-qualified (`analytics.dim_companies`). Exactly one of from/query. */
  readonly from?: string;
  /** A read-only SQL query. Exactly one of from/query. */
  readonly query?: string;
  /** The columns to return, in this order. */
  readonly columns: readonly string[];
  /**
   * Key columns. Rows come ordered by these columns' text in Unicode code-point order (Postgres `COLLATE "C"` on a
   * UTF-8 database), NULLs last: the engine merges rows with the sorted snapshot and checks the order.
   */
  readonly orderBy: readonly string[];
  /**
   * Only rows meeting this SQL condition (a backfill's `--where`): the user's own SQL over the columns of
   * `from`/`query`, run inside the read-only transaction. A source that cannot apply it must throw.
   */
  readonly where?: string;
  /**
   * Only rows whose key comes after this one in the `orderBy` order (a resumed backfill): one text per `orderBy`
   * column. Rows with a NULL key column are left out. A source that cannot apply it must throw.
   */
  readonly after?: readonly string[];
  /**
   * Only with a hash reader whose `hashInRows` is set: the columns the row hash covers (as `HashSpec.hashColumns`).
   * Each row then has one more cell after `columns`: the row hash `keys()` would return for it, so the engine can
   * store it without computing it.
   */
  readonly rowHash?: readonly string[];
}

/**
 * One page of an incremental read: rows whose `cursor` column changed since a watermark, ordered by (cursor value,
 * key text in code-point order), after a keyset position. Rows with a NULL cursor or key are left out.
 */
export interface ChangeSpec extends ReadSpec {
  /** The cursor column, e.g. `updated_at`; it must be in `columns` (its text is the next position). */
  readonly cursor: string;
  /** Rows with cursor >= this value, as the database rendered it; every non-null cursor when absent. */
  readonly since?: string;
  /** Rows with cursor <= this instant (`ChangeReader.now()` at the start of the run); for time-typed cursors. */
  readonly until?: string;
  /** Keyset position: only rows after (this cursor value, this key), as rendered by the database. */
  readonly position?: { readonly cursor: string; readonly key: readonly string[] };
  /** Most rows in the page. */
  readonly limit: number;
}

/** Incremental reads by a cursor column (keyset pages, never OFFSET): an optional capability of a source. */
export interface ChangeReader {
  /** The database's current time, rendered by the database: the cap of an incremental run. */
  now(): Promise<string>;
  /** The greatest non-null cursor value (at most `until`) among the rows, as the database renders it. */
  watermark(spec: Omit<ChangeSpec, "since" | "position" | "limit">): Promise<string | undefined>;
  /** One page of changed rows, each aligned with `spec.columns`. A short query: no cursor stays open. */
  page(spec: ChangeSpec, options: { readonly signal?: AbortSignal }): Promise<readonly RawRow[]>;
}

/**
 * A read for hash push-down: like `ReadSpec`, but the warehouse returns only the key and a hash of the row, so an
 * unchanged row crosses the wire as a key and 8 bytes.
 */
export interface HashSpec extends ReadSpec {
  /**
   * The columns the row hash covers, in this order (a column may appear twice), as 16 lowercase hex digits. The hash
   * must change whenever the text `read()` returns for one of these columns changes: either the reader's `rowHash`
   * over those cells, or (`hashInRows`) a hash of the warehouse's own that `read()` and `lookup()` return too.
   */
  readonly hashColumns: readonly string[];
}

/**
 * Hash push-down: an optional capability of a source. The engine reads (key, row hash) for every row, compares it
 * with the snapshot, and fetches full rows only for the keys whose hash differs.
 */
export interface HashReader {
  /**
   * The row hash `keys()` computes, from the cells `read()` returns, as 8 latin1 characters (the engine stores it
   * when it sends a row). Default: `rowHash()` of src/diff/hash.ts (MD5 over, per cell, `N` for NULL, else
   * `<UTF-8 octet length>:<text>`; the first 8 bytes).
   */
  readonly rowHash?: (cells: readonly (string | null)[]) => string;
  /**
   * The row hash is the warehouse's own (PostgreSQL hashes values in their binary form, about three times cheaper
   * than hashing their text): the engine cannot compute it, so `read()` and `lookup()` return it as a last cell
   * when the spec has `rowHash` (ReadSpec). `rowHash` is then unused.
   */
  readonly hashInRows?: boolean;
  /**
   * Streams rows as `[...key texts aligned with spec.orderBy, row hash]`, ordered exactly like `read(spec)`
   * (code-point order of the key texts; `where` and `after` honoured), inside a read-only transaction.
   */
  keys(spec: HashSpec, options: ReadOptions): AsyncIterable<readonly RawRow[]>;
  /**
   * Optional, cheaper form of `keys()`: the same rows as PostgreSQL's COPY text format (one row per line, cells
   * separated by tabs, `\N` for NULL, backslash escapes), in chunks that may end mid-row, so that the engine can
   * compare keys and hashes as bytes. Undefined when this read cannot be streamed that way (then `keys()`).
   */
  keysText?(spec: HashSpec, options: ReadOptions): AsyncIterable<Buffer> | undefined;
  /**
   * Full rows (aligned with `spec.columns`, rendered exactly as `read()` renders them) of `spec.from`/`spec.query`
   * whose key texts equal one of `keys` (each aligned with `spec.orderBy`), ordered like `read()`. A key with no row
   * is simply absent (the row was deleted meanwhile); a key with two rows returns both. One short query per call:
   * the engine passes at most a few tens of thousands of keys.
   */
  lookup(
    spec: ReadSpec,
    keys: readonly (readonly string[])[],
    options: { readonly signal?: AbortSignal },
  ): Promise<readonly RawRow[]>;
}

/** What `validate --check-source` learns about a mapping's key columns. */
export interface KeyCheck {
  /** Rows the table or query returns. */
  readonly rows: number;
  /** Rows whose key (any `orderBy` column) is NULL, empty or only whitespace. */
  readonly nullKeys: number;
  /** Keys that appear on more than one row. */
  readonly duplicateKeys: number;
  /** Rows carrying those keys. */
  readonly duplicateRows: number;
}

export interface ReadOptions {
  /** Aborts the read; the source closes its cursor and releases its connection. */
  readonly signal?: AbortSignal;
  /** Rows per chunk fetched from the warehouse. */
  readonly batchSize: number;
}

/** A warehouse adapter. Created per run and closed at the end. */
export interface Source {
  /** Connects and checks that the warehouse is usable (encoding, permissions); throws SourceError. */
  check(): Promise<void>;
  /** The columns the `from`/`query` of `spec` returns, without reading rows. */
  describe(spec: Pick<ReadSpec, "from" | "query">): Promise<readonly SourceColumn[]>;
  /**
   * Streams rows in chunks, ordered as `spec.orderBy` says, inside a read-only transaction. Never holds the whole
   * result. Throws SourceError on failure; closes its cursor when the consumer stops early.
   */
  read(spec: ReadSpec, options: ReadOptions): AsyncIterable<readonly RawRow[]>;
  /** Optional: incremental reads (a mapping's `cursor`). */
  readonly changes?: ChangeReader;
  /** Optional: hash push-down (unchanged rows cost a key and a hash). */
  readonly hashes?: HashReader;
  /** Optional: how many rows `read(spec)` would return (progress bars: a backfill's ETA). */
  count?(spec: ReadSpec): Promise<number>;
  /** Optional: counts of NULL and duplicated keys (`validate --check-source`). */
  checkKeys?(spec: ReadSpec): Promise<KeyCheck>;
  /** Releases connections. Safe to call twice. */
  close(): Promise<void>;
}
