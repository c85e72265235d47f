/**
 * PostgreSQL and socket errors → SourceError with a stable code and an action sentence. Messages say which setting
 * to check and never carry the URL or password: driver text goes through `redact()`.
 * SQLSTATE codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
import { SourceError } from "../../src/errors.js";
import { redact } from "../../src/secret.js";

interface PgErrorFields {
  readonly code?: unknown;
  readonly position?: unknown;
  readonly message?: unknown;
}

const SOCKET_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT"]);
const WRITING_STATEMENT =
  /^\s*(insert|update|delete|merge|truncate|create|drop|alter|copy|grant|revoke|call|do|vacuum|comment|lock|set|reset)\b/i;
const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/;

function fields(error: unknown): PgErrorFields {
  return typeof error === "object" && error !== null ? (error as PgErrorFields) : {};
}

function messageOf(error: unknown): string {
  const message = fields(error).message;
  return redact(typeof message === "string" && message !== "" ? message : String(error));
}

/** The SQLSTATE of a server error, or undefined for socket and client-side errors. */
export function sqlState(error: unknown): string | undefined {
  const { code, syscall } = fields(error) as { code?: unknown; syscall?: unknown };
  // A socket error's code can look like one too (EPIPE has five capitals); those carry the failed system call.
  if (syscall !== undefined) return undefined;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A failure to open a session: says which setting to check. `target` names host, port, database and user. */
export function connectionError(error: unknown, target: string): SourceError {
  if (error instanceof SourceError) return error;
  const code = fields(error).code;
  const state = sqlState(error);
  const detail = messageOf(error);
  const make = (what: string, sourceCode: string, action: string) =>
    new SourceError(`cannot connect to ${target}: ${what} (${detail})`, { code: sourceCode, action, cause: error });

  if (TLS_CODES.test(String(code)) || /\b(SSL|TLS)\b|certificate/i.test(detail)) {
    return make(
      "the TLS handshake failed",
      "SOURCE_TLS",
      "Check the TLS settings: `tls.mode` and `tls.ca_file` in the source config, or `sslmode` in the URL.",
    );
  }
  if (state === "28P01" || (state === "28000" && !/pg_hba/.test(detail))) {
    return make(
      "the server refused the credentials",
      "SOURCE_AUTH",
      "Check the user name and password in the source URL.",
    );
  }
  if (state === "28000") {
    return make(
      "the server does not accept this user from this host",
      "SOURCE_AUTH",
      "Check the user name in the URL, that pg_hba.conf admits this host, and whether the server requires TLS.",
    );
  }
  if (state === "3D000") {
    return make("the database does not exist", "SOURCE_DATABASE", "Check the database name in the source URL.");
  }
  if (state === "53300" || state === "57P03") {
    return make("the server is not accepting connections now", "SOURCE_UNAVAILABLE", "Retry later.");
  }
  if (SOCKET_CODES.has(String(code)) || /timeout|terminated/i.test(detail)) {
    return make(
      "the server cannot be reached",
      "SOURCE_UNREACHABLE",
      "Check the host and port in the source URL, and that the server accepts connections from this machine.",
    );
  }
  return make(
    "the connection failed",
    "SOURCE_CONNECT",
    "Check the host, port, credentials, database and TLS settings of the source.",
  );
}

export interface QueryContext {
  /** What was read, for messages: `table "analytics"."companies"` or `the query`. */
  readonly what: string;
  /** The user's query as embedded in the statement, when reading a query (error positions then point into it). */
  readonly userQuery?: string;
  /** Where the user's query starts in the statement, in characters; -1 when there is none. */
  readonly queryAt: number;
  /** statement_timeout in milliseconds, for the timeout message. */
  readonly statementTimeout: number;
}

/** A failed statement: the PostgreSQL message (redacted), SQLSTATE and position, plus what to do. */
export function queryError(error: unknown, context: QueryContext): SourceError {
  if (error instanceof SourceError) return error;
  const state = sqlState(error);
  const detail = messageOf(error);
  const code = String(fields(error).code);
  const socket = SOCKET_CODES.has(code) || code === "ECONNRESET" || code === "EPIPE" || /connection/i.test(detail);
  if ((state === undefined && socket) || state?.startsWith("08") || state === "57P01") {
    return new SourceError(`lost the connection to PostgreSQL while reading ${context.what}: ${detail}`, {
      code: "SOURCE_CONNECTION_LOST",
      action: "Check that the server is up and reachable, then run the sync again.",
      cause: error,
    });
  }
  if (state === undefined) {
    return new SourceError(`reading ${context.what} failed: ${detail}`, {
      code: "SOURCE_READ_FAILED",
      action: "Run the sync again with `--log-level debug` to see the cause; report it if it repeats.",
      cause: error,
    });
  }
  const where = position(error, context);
  const pg = `PostgreSQL: ${detail} [SQLSTATE ${state}${where}]`;
  const make = (what: string, code: string, action: string) =>
    new SourceError(`${what} (${pg})`, { code, action, cause: error });
  const fromTable = context.userQuery === undefined;
  // A writing statement fails before the read-only check: as a sub-select it is a syntax error, and a writing CTE
  // must be at the top level. Both deserve the same answer as a write the transaction refused.
  const writes =
    state === "25006" ||
    (state === "0A000" && /data-modifying/i.test(detail)) ||
    (state === "42601" && WRITING_STATEMENT.test(context.userQuery ?? ""));
  if (writes) {
    return make(
      `${context.what} tries to write, but groupsync only runs a SELECT, as a sub-select in a READ ONLY transaction`,
      "SOURCE_QUERY_WRITES",
      "Use a query that only reads: a SELECT (or WITH … SELECT) without INSERT, UPDATE, DELETE or functions that change data.",
    );
  }

  switch (state) {
    case "42P01":
    case "3F000":
      return make(
        fromTable ? `${context.what} does not exist` : "the query reads a table that does not exist",
        "SOURCE_TABLE_MISSING",
        fromTable
          ? "Check `from` in the mapping file: write schema.table; unquoted names fold to lower case, so quote mixed-case names."
          : "Check the table names in the mapping's query, and that the user may use their schema.",
      );
    case "57014":
      return /statement timeout/i.test(detail)
        ? make(
            `reading ${context.what} took longer than statement_timeout (${context.statementTimeout} ms)`,
            "SOURCE_TIMEOUT",
            "Raise `statement_timeout` in the source config, or make the read cheaper (an index on the key columns helps the ORDER BY).",
          )
        : make(
            `reading ${context.what} was cancelled`,
            "SOURCE_CANCELED",
            "Someone cancelled the query on the server; run the sync again.",
          );
    case "42501":
      return make(
        `the user may not read ${context.what}`,
        "SOURCE_PERMISSION",
        "Grant the user SELECT on the table and USAGE on its schema.",
      );
    case "42703":
      return make(
        `a column is missing in ${context.what}`,
        "SOURCE_COLUMN_MISSING",
        "Check the column names in the mapping file against the table or query.",
      );
    default:
      return state.startsWith("42")
        ? make(
            fromTable ? `cannot read ${context.what}` : "the query is not valid SQL",
            "SOURCE_QUERY_INVALID",
            fromTable
              ? "Check `from` and the column names in the mapping file."
              : "Fix the mapping's query at the position shown; try it in psql first.",
          )
        : make(
            `reading ${context.what} failed`,
            "SOURCE_QUERY_FAILED",
            "Run the query in psql to see the problem; the PostgreSQL message above says what failed.",
          );
  }
}

/** `, at character 12 of the query: "FORM t…"` when PostgreSQL gave a position inside the user's query. */
function position(error: unknown, context: QueryContext): string {
  const raw = Number(fields(error).position);
  if (!Number.isInteger(raw) || raw < 1) return "";
  const chars = [...(context.userQuery ?? "")];
  const at = raw - context.queryAt;
  if (context.userQuery === undefined || context.queryAt < 0 || at < 1 || at > chars.length) {
    return `, at character ${raw} of the statement`;
  }
  const near = chars
    .slice(at - 1, at + 29)
    .join("")
    .replace(/\s+/g, " ");
  const excerpt = chars.length > at + 29 ? `${near}…` : near;
  return `, at character ${at} of the query, near ${JSON.stringify(redact(excerpt))}`;
}
