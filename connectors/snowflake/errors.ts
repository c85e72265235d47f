/**
 * snowflake-sdk errors → SourceError with a stable code and an action naming the setting to check. Driver text goes
 * through `redact()`; credentials are never part of a message.
 * Error codes: https://docs.snowflake.com/en/user-guide/client-connectivity-troubleshooting/error-messages
 */
import { SourceError } from "../../src/errors.js";
import { redact } from "../../src/secret.js";
import type { SnowflakeSourceConfig } from "./config.js";

interface DriverErrorFields {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly sqlState?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
  readonly response?: { readonly status?: unknown; readonly statusCode?: unknown };
}

function fields(error: unknown): DriverErrorFields {
  return typeof error === "object" && error !== null ? (error as DriverErrorFields) : {};
}

function messageOf(error: unknown): string {
  const message = fields(error).message;
  const text = typeof message === "string" && message !== "" ? message : String(error);
  return redact(text.replace(/\s*\n\s*/g, " ").trim());
}

/** The server's error code (`002003`, `390100`…) or the driver's (`401001`…), as text. */
function codeOf(error: unknown): string {
  const code = fields(error).code;
  return code === undefined || code === null ? "" : String(code);
}

/** The socket-level code under a driver NetworkError (ENOTFOUND, ECONNREFUSED…). */
function socketCode(error: unknown): string | undefined {
  for (let cause = fields(error).cause, depth = 0; cause && depth < 4; cause = fields(cause).cause, depth++) {
    const code = fields(cause).code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code;
  }
  return undefined;
}

/** `Snowflake account myorg-acct (user GROUPSYNC, role R)`: enough to find the wrong setting, never a secret. */
export function describeTarget(config: SnowflakeSourceConfig): string {
  const role = config.role ? `, role ${config.role}` : "";
  const via = config.access_url ? ` via ${config.access_url}` : "";
  return `Snowflake account ${config.account}${via} (user ${config.username}${role})`;
}

/** A failure to log in: says which setting to check. */
export function loginError(error: unknown, config: SnowflakeSourceConfig): SourceError {
  if (error instanceof SourceError) return error;
  const target = describeTarget(config);
  const code = codeOf(error);
  const detail = messageOf(error);
  const make = (what: string, sourceCode: string, action: string) =>
    new SourceError(`cannot log in to ${target}: ${what} (${detail})`, { code: sourceCode, action, cause: error });
  const auth = config.password
    ? "Check username and password in the source config."
    : config.oauth_token
      ? "Check oauth_token: it may have expired; issue a new one for this user and role."
      : "Check username and the key: the user's RSA_PUBLIC_KEY must match private_key_file/private_key (DESC USER shows RSA_PUBLIC_KEY_FP).";
  switch (code) {
    case "390100":
    case "390144":
    case "390303":
    case "390318":
    case "394300":
      return make("Snowflake refused the credentials", "SOURCE_AUTH", auth);
    case "390189":
      return make(
        `the role ${config.role ?? "(default)"} is not granted to the user`,
        "SOURCE_ROLE",
        "Check `role` in the source config, or GRANT ROLE … TO USER.",
      );
    case "390422":
      return make(
        "a network policy does not allow this machine's address",
        "SOURCE_NETWORK_POLICY",
        "Ask the account admin to allow this machine's IP in the user's or account's network policy.",
      );
  }
  if (fields(error).name === "NetworkError" || socketCode(error) !== undefined || code === "401001") {
    return make(
      `Snowflake cannot be reached${socketCode(error) ? ` (${socketCode(error)})` : ""}`,
      "SOURCE_UNREACHABLE",
      "Check `account` (orgname-accountname, or locator.region) and `access_url` in the source config, and that this machine reaches *.snowflakecomputing.com over HTTPS (proxies, firewalls).",
    );
  }
  if (/role/i.test(detail)) {
    return make(
      "the role was refused",
      "SOURCE_ROLE",
      "Check `role` in the source config and that it is granted to the user.",
    );
  }
  return make(
    "the login failed",
    "SOURCE_CONNECT",
    "Check account, username, the credentials, warehouse, database, schema and role in the source config.",
  );
}

export interface QueryContext {
  /** What was read, for messages: `table "DB"."S"."T"` or `the query`. */
  readonly what: string;
  /** The user's query as embedded, when reading a query (error lines then point into it). */
  readonly userQuery?: string;
  /** Line of the statement on which the user's query starts (1-based); 0 when reading a table. */
  readonly queryLine: number;
  readonly config: SnowflakeSourceConfig;
}

/** A failed statement, or a failed download of its result. */
export function queryError(error: unknown, context: QueryContext): SourceError {
  if (error instanceof SourceError) return error;
  const name = String(fields(error).name ?? "");
  const code = codeOf(error);
  const detail = locate(messageOf(error), context);
  const make = (what: string, sourceCode: string, action: string) =>
    new SourceError(`${what} (Snowflake: ${detail}${code ? ` [${code}]` : ""})`, {
      code: sourceCode,
      action,
      cause: error,
    });
  const { what, config } = context;
  const fromTable = context.userQuery === undefined;

  if (name === "ChunkParseError") {
    return make(
      `the result of ${what} arrived damaged`,
      "SOURCE_RESULT_INCOMPLETE",
      "A result chunk was damaged on its way (a proxy or firewall between this machine and Snowflake's result storage?); run the sync again.",
    );
  }
  if (name === "LargeResultSetError" || code.startsWith("402")) {
    const status = fields(error).response?.statusCode ?? fields(error).response?.status;
    return make(
      `downloading the result of ${what} failed${status ? ` (HTTP ${status} from the result storage)` : ""}`,
      "SOURCE_CONNECTION_LOST",
      "Check that this machine reaches Snowflake's result storage (the cloud storage URLs of the account's region; proxies and firewalls must allow them), then run the sync again.",
    );
  }
  if (name === "NetworkError" || code === "401001" || socketCode(error) !== undefined) {
    return make(
      `lost the connection to Snowflake while reading ${what}`,
      "SOURCE_CONNECTION_LOST",
      "Check that Snowflake is reachable from this machine, then run the sync again.",
    );
  }
  switch (code) {
    case "390112":
    case "390114":
    case "390111":
    case "390104":
    case "405503":
      return make(
        `the Snowflake session ended while reading ${what}`,
        "SOURCE_SESSION_EXPIRED",
        "Run the sync again; if it recurs, check the account's session policy (idle timeout).",
      );
    case "002003":
      return make(
        fromTable
          ? `${what} does not exist, or the role may not see it`
          : "the query reads an object that does not exist or the role may not see",
        "SOURCE_TABLE_MISSING",
        fromTable
          ? `Check \`from\` in the mapping file (unquoted names are upper-cased; quote "MixedCase" names) and that the role has SELECT on it and USAGE on database ${config.database} and its schema.`
          : "Check the object names in the mapping's query and the role's grants (SELECT on the tables, USAGE on their database and schema).",
      );
    case "000904":
      return make(
        `a column is missing in ${what}`,
        "SOURCE_COLUMN_MISSING",
        "Check the column names in the mapping file against the table or query.",
      );
    case "003001":
    case "003003":
      return make(
        `the role may not read ${what}`,
        "SOURCE_PERMISSION",
        `Grant the role SELECT on the table and USAGE on database ${config.database}, its schema and warehouse ${config.warehouse}.`,
      );
    case "000606":
      return make(
        `no warehouse can run the read of ${what}`,
        "SOURCE_WAREHOUSE",
        `Check \`warehouse\` (${config.warehouse}) in the source config and GRANT USAGE ON WAREHOUSE to the role.`,
      );
    case "000630":
      return make(
        `reading ${what} took longer than statement_timeout (${Math.ceil(config.statement_timeout / 1000)} s)`,
        "SOURCE_TIMEOUT",
        "Raise `statement_timeout` in the source config, use a larger warehouse, or make the read cheaper.",
      );
    case "000604":
      return make(
        `reading ${what} was cancelled`,
        "SOURCE_CANCELED",
        "Someone cancelled the query in Snowflake; run the sync again.",
      );
    case "000008":
      return make(
        `${what} holds more than one statement`,
        "SOURCE_QUERY_WRITES",
        "Use one SELECT (or WITH … SELECT) as the mapping's query.",
      );
  }
  if (/^00[0-2]\d{3}$/.test(code) || String(fields(error).sqlState ?? "").startsWith("42")) {
    return make(
      fromTable ? `cannot read ${what}` : "the query is not valid Snowflake SQL",
      "SOURCE_QUERY_INVALID",
      fromTable
        ? "Check `from` and the column names in the mapping file."
        : "Fix the mapping's query at the line shown; try it in a Snowflake worksheet first.",
    );
  }
  return make(
    `reading ${what} failed`,
    "SOURCE_QUERY_FAILED",
    "Run the sync again with `--log-level debug` to see the cause; the Snowflake message above says what failed.",
  );
}

/** Rewrites `error line 3 at position 7` to a line of the user's query (ours adds lines before it). */
function locate(detail: string, context: QueryContext): string {
  if (context.userQuery === undefined || context.queryLine < 1) return detail;
  const lines = context.userQuery.split("\n").length;
  return detail.replace(/error line (\d+) at position (\d+)/, (text, line: string, position: string) => {
    const at = Number(line) - context.queryLine + 1;
    return at >= 1 && at <= lines ? `error at line ${at}, position ${position} of the query` : text;
  });
}
