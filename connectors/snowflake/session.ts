/**
 * A thin promise layer over snowflake-sdk: one connection, statements whose completion is awaited, and result rows
 * as a Readable of text cells. The SDK is imported on first use: it is large (it pulls in the AWS and Azure SDKs
 * for stage transfers groupsync never runs), and a run that reads no Snowflake should not load it.
 * Driver reference: https://docs.snowflake.com/en/developer-guide/node-js/nodejs-driver-consume
 */
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import type { Connection, ConnectionOptions, DataType, RowStatement } from "snowflake-sdk";
import type { SnowflakeColumnInfo } from "./types.js";

type Sdk = typeof import("snowflake-sdk");

let loading: Promise<Sdk> | undefined;

/** Imports and configures the driver once per process. */
export function loadSdk(): Promise<Sdk> {
  loading ??= (async () => {
    // The AWS SDK the driver bundles warns on stderr at import under Node 20; groupsync never uses it.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    const module = (await import("snowflake-sdk")) as Sdk & { default?: Sdk };
    const sdk = module.default ?? module;
    // By default the driver logs to ./snowflake.log and the console; groupsync reports failures itself.
    sdk.configure({ logLevel: "OFF" });
    guardChunkParsing();
    return sdk;
  })();
  return loading;
}

/** Emitted on a statement when one of its result chunks cannot be parsed. */
const CHUNK_FAILED = "groupsync:chunk-failed";

interface ChunkLike {
  _rows?: unknown;
  _statement?: { emit?: (event: string, error: unknown) => boolean };
}

/**
 * snowflake-sdk parses a downloaded chunk inside an event handler (dist/lib/connection/result/chunk.js getRows,
 * called from row_stream.js onResultStreamData). When the body is not the JSON it expects (cut short, emptied by a
 * proxy), the SyntaxError is swallowed (the chunk is skipped, or the stream waits forever) or, for a prefetched
 * chunk, thrown from a process.nextTick callback: an uncaught exception that ends the process. This wraps getRows so
 * the error reaches the statement instead, whose row stream is then destroyed with it (see `executed`). Without the
 * module (another driver version), reads still fail safely: rows are counted, and a stalled stream times out.
 */
function guardChunkParsing(): void {
  let chunk: { prototype: { getRows?: (this: ChunkLike) => unknown } } | undefined;
  try {
    chunk = createRequire(import.meta.url)("snowflake-sdk/dist/lib/connection/result/chunk.js");
  } catch {
    return;
  }
  const getRows = chunk?.prototype.getRows;
  if (!chunk || typeof getRows !== "function") return;
  chunk.prototype.getRows = function (this: ChunkLike) {
    try {
      const rows = getRows.call(this);
      if (Array.isArray(rows)) return rows;
      throw new Error("the chunk holds no rows");
    } catch (error) {
      this._rows = [];
      this._statement?.emit?.(CHUNK_FAILED, error);
      return [];
    }
  };
}

/** A result chunk that could not be parsed. */
export class ChunkParseError extends Error {
  constructor(cause: unknown) {
    super(`a chunk of the result could not be parsed (${(cause as Error)?.message ?? String(cause)})`, { cause });
    this.name = "ChunkParseError";
  }
}

/**
 * Every native type as text: numbers keep their exact digits, dates and timestamps follow the session's output
 * formats, VARIANT arrives as the server's JSON text. OBJECT/ARRAY/MAP only matter for structured types.
 */
const AS_TEXT = [
  "STRING",
  "BOOLEAN",
  "NUMBER",
  "DATE",
  "JSON",
  "BUFFER",
  "OBJECT",
  "ARRAY",
  "MAP",
] as unknown as DataType[];

/** How long an aborted statement waits for Snowflake to confirm the cancel. */
const CANCEL_WAIT_MS = 5000;

export interface ExecuteOptions {
  /** Compile only: the columns, no rows, no warehouse. */
  readonly describeOnly?: boolean;
  /** Values of the statement's `?` placeholders, as text. */
  readonly binds?: readonly string[];
  /** Cancels the statement on Snowflake and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** A statement that finished executing; its rows download as they are read. */
export interface Executed {
  readonly queryId: string | undefined;
  readonly columns: readonly SnowflakeColumnInfo[];
  /** Rows in the whole result, as the server announced them. */
  readonly rowCount: number;
  /** The result rows, as arrays of text cells (null for NULL). Call once, and consume or destroy it. */
  rows(): Readable;
}

export interface SnowflakeSession {
  execute(sql: string, options?: ExecuteOptions): Promise<Executed>;
  /** Logs out (deletes the session on Snowflake). Safe to call twice. */
  close(): Promise<void>;
}

/** Logs in. Rejects with the driver's error, which the caller words. */
export async function openSession(options: ConnectionOptions): Promise<SnowflakeSession> {
  const sdk = await loadSdk();
  const connection = sdk.createConnection(options);
  await new Promise<void>((resolve, reject) => {
    connection.connect((error) => (error ? reject(error) : resolve()));
  });
  let closing: Promise<void> | undefined;
  return {
    execute: (sql, executeOptions = {}) => execute(connection, sql, executeOptions),
    close() {
      closing ??= new Promise<void>((resolve) => {
        // A session that is already gone (expired, never opened) is closed too.
        connection.destroy(() => resolve());
      });
      return closing;
    },
  };
}

function execute(connection: Connection, sqlText: string, options: ExecuteOptions): Promise<Executed> {
  const { signal } = options;
  return new Promise<Executed>((resolve, reject) => {
    signal?.throwIfAborted();
    let settled = false;
    let statement: RowStatement;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      // Stop the warehouse's work before giving up on the statement (best effort, bounded).
      const done = () => reject(signal?.reason);
      const timer = setTimeout(done, CANCEL_WAIT_MS);
      timer.unref();
      statement.cancel(() => {
        clearTimeout(timer);
        done();
      });
    };
    try {
      statement = connection.execute({
        sqlText,
        streamResult: true,
        rowMode: "array",
        fetchAsString: AS_TEXT,
        ...(options.describeOnly ? { describeOnly: true } : {}),
        ...(options.binds && options.binds.length > 0 ? { binds: [...options.binds] } : {}),
        complete: (error, completed) => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(error);
          else resolve(executed(completed as RowStatement));
        },
      }) as RowStatement;
    } catch (error) {
      reject(error);
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function executed(statement: RowStatement): Executed {
  const columns = (statement.getColumns() ?? []).map(
    (column): SnowflakeColumnInfo => ({
      name: column.getName(),
      type: column.getType(),
      scale: column.getScale() ?? null,
      precision: column.getPrecision() ?? null,
      // Semi-structured OBJECT/ARRAY are variants to the driver; only typed (structured) ones are not.
      structured: ["object", "array", "map"].includes(column.getType()) && !column.isVariant(),
    }),
  );
  return {
    queryId: statement.getQueryId(),
    columns,
    rowCount: statement.getNumRows() ?? 0,
    rows() {
      const stream = statement.streamRows();
      const emitter = statement as unknown as EventEmitter;
      const onChunkFailed = (error: unknown) => stream.destroy(new ChunkParseError(error));
      emitter.on(CHUNK_FAILED, onChunkFailed);
      stream.once("close", () => emitter.off(CHUNK_FAILED, onChunkFailed));
      return stream;
    },
  };
}
