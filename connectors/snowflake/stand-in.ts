/**
 * A local stand-in for Snowflake's REST endpoints, for tests: the protocol snowflake-sdk speaks to a real account,
 * reached through the driver's own `accessUrl` option. Login (password, key-pair JWT checked against the user's
 * public key, OAuth), query-request (with describeOnly, statement parameters and "still running" answers polled at
 * GET /queries/<id>/result), result chunks served gzipped from their own URLs with the qrmk header checked, session
 * token renewal, abort-request, session delete. Statements are answered by `StandInData` from fixture tables.
 * Scripted faults: expired session tokens, broken chunks, held (never-finishing) queries.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { identifier, type Outcome, type SessionView, StandInData, type WireRow } from "./stand-in-data.js";
import {
  type Body,
  DEFAULT_PARAMS,
  gsError,
  jwtValid,
  parameters,
  readBody,
  reply,
  type StandInUser,
} from "./stand-in-protocol.js";

export type { StandInUser } from "./stand-in-protocol.js";

export interface StandInOptions {
  /** The account identifier logins must name (case-insensitive). */
  readonly account: string;
  readonly users: readonly StandInUser[];
  /** Rows in a response's inline rowset; the rest goes to chunks. Default 1000. */
  readonly inlineRows?: number;
  /** Rows per result chunk. Default 10000. */
  readonly chunkRows?: number;
}

/**
 * What a chunk request gets instead of its rows: an HTTP status, a body cut short (unparseable), a well-formed body
 * with half the rows it should hold, a connection reset half-way, or no answer at all (until faults are reset).
 */
export type ChunkFault = { readonly status: number } | "truncated" | "short" | "reset" | "hang";

/** One statement as received, with the session state it ran in. */
export interface QueryRecord {
  /** The statement text as received. */
  readonly sql: string;
  /** Compiled only (describe), not executed. */
  readonly describeOnly: boolean;
  /** QUERY_TAG in force for the statement. */
  readonly queryTag: string;
  /** The id the stand-in gave the statement. */
  readonly queryId: string;
  /** The session's parameters when the statement ran. */
  readonly params: ReadonlyMap<string, string>;
}

/** One login attempt: who, how, whether it was accepted, and the context the driver asked for (as sent). */
export interface LoginRecord {
  /** LOGIN_NAME, upper-cased as Snowflake resolves it. */
  readonly user: string;
  /** SNOWFLAKE (password), SNOWFLAKE_JWT (key pair) or OAUTH. */
  readonly authenticator: string;
  readonly ok: boolean;
  /** The login's warehouse, databaseName, schemaName and roleName parameters. */
  readonly warehouse?: string;
  readonly database?: string;
  readonly schema?: string;
  readonly role?: string;
  /** SESSION_PARAMETERS.QUERY_TAG of the login. */
  readonly queryTag?: string;
  /** CLIENT_ENVIRONMENT.APPLICATION: the client application's name. */
  readonly application?: string;
}

export interface SnowflakeStandIn {
  /** `http://127.0.0.1:<port>`: the source's `access_url`. */
  readonly url: string;
  /** The fixture tables, queries and warehouses; tests change them between runs. */
  readonly data: StandInData;
  readonly logins: LoginRecord[];
  /** Every statement received, in order. */
  readonly queries: QueryRecord[];
  /** Chunk downloads: query id, chunk index, HTTP status answered. */
  readonly chunkRequests: { queryId: string; index: number; status: number }[];
  /** Session tokens renewed with a master token. */
  readonly renewals: number;
  /** GET /queries/<id>/result polls of statements that answered "still running". */
  readonly resultPolls: number;
  /** Sessions deleted (logouts). */
  readonly sessionsClosed: number;
  /** Abort requests received (query ids or request ids). */
  readonly aborts: string[];
  /** Every session token issued so far stops working (390112) until the driver renews it with its master token. */
  expireSessionTokens(): void;
  /** Answers chunk downloads whose predicate returns a fault (attempt counts from 1 per chunk); ends held ones. */
  chunkFaults(fault: ((chunk: { index: number; attempt: number }) => ChunkFault | undefined) | undefined): void;
  /** Statements matching `predicate` never finish until aborted (then: 000604, as Snowflake cancels). */
  holdQueries(predicate: ((sql: string) => boolean) | undefined): void;
  /** Statements matching `predicate` first answer "still running" (333333) `polls` times. */
  runSlowly(predicate: ((sql: string) => boolean) | undefined, polls?: number): void;
  close(): Promise<void>;
}

interface Session extends SessionView {
  readonly id: number;
  token: string;
  readonly masterToken: string;
  closed: boolean;
}

interface StoredResult {
  readonly outcome: Outcome & { ok: true };
  readonly chunks: { readonly start: number; readonly end: number }[];
  readonly qrmk: string;
  /** The parameters the statement ran with: they tell the driver how to render the result. */
  readonly params: ReadonlyMap<string, string>;
  attempts: number[];
}

export async function startSnowflakeStandIn(options: StandInOptions): Promise<SnowflakeStandIn> {
  const data = new StandInData();
  const inlineRows = options.inlineRows ?? 1000;
  const chunkRows = options.chunkRows ?? 10_000;
  const sessions = new Map<string, Session>();
  const expired = new Set<string>();
  const results = new Map<string, StoredResult>();
  const held = new Map<string, () => void>();
  const slow = new Map<string, number>();
  const hung: ServerResponse[] = [];
  let chunkFault: ((chunk: { index: number; attempt: number }) => ChunkFault | undefined) | undefined;
  let holdPredicate: ((sql: string) => boolean) | undefined;
  let slowPredicate: ((sql: string) => boolean) | undefined;
  let slowPolls = 1;
  let nextId = 1;
  const state = {
    logins: [] as LoginRecord[],
    queries: [] as QueryRecord[],
    chunkRequests: [] as { queryId: string; index: number; status: number }[],
    renewals: 0,
    resultPolls: 0,
    sessionsClosed: 0,
    aborts: [] as string[],
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) reply(response, 500, { success: false, message: String(error) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  /**
   * Answers the chunk requests held by "hang" with a 404: the driver stops there, where a reset or a closed server
   * would make it retry the download for minutes in the background, keeping the process alive.
   */
  function endHung(): void {
    for (const response of hung.splice(0)) if (!response.writableEnded) response.writeHead(404).end();
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const target = new URL(request.url ?? "/", url);
    const text = await readBody(request);
    const body = text === "" ? {} : (JSON.parse(text) as Body);
    const path = target.pathname;
    if (path === "/session/v1/login-request") return reply(response, 200, login(target, body));
    if (path.startsWith("/results/")) return chunk(request, response, path);
    const token = /^Snowflake Token="(.*)"$/.exec(request.headers.authorization ?? "")?.[1] ?? "";
    if (path === "/session/token-request") return reply(response, 200, renew(token, body));
    if (expired.has(token))
      return reply(response, 200, gsError("390112", "Your session has expired. Please login again."));
    const session = sessions.get(token);
    if (!session || session.closed) return reply(response, 200, gsError("390104", "Invalid session token."));
    if (path === "/session" && target.searchParams.get("delete") === "true") {
      session.closed = true;
      state.sessionsClosed++;
      return reply(response, 200, { success: true, code: null, message: null, data: null });
    }
    if (path === "/queries/v1/query-request") {
      return reply(response, 200, await query(session, body, target.searchParams.get("requestId") ?? randomUUID()));
    }
    const resultPath = /^\/queries\/([^/]+)\/result$/.exec(path);
    if (resultPath) return reply(response, 200, poll(resultPath[1] as string));
    const abortPath = /^\/queries\/(?:v1|([^/]+))\/abort-request$/.exec(path);
    if (abortPath) {
      const id = abortPath[1] ?? String(body.requestId ?? "");
      state.aborts.push(id);
      held.get(id)?.();
      return reply(response, 200, { success: true, code: null, message: null, data: null });
    }
    // Telemetry, heartbeats: accepted.
    return reply(response, 200, { success: true, code: null, message: null, data: null });
  }

  function login(target: URL, body: Body): Body {
    const dataIn = (body.data ?? {}) as Body;
    const authenticator = String(dataIn.AUTHENTICATOR ?? "SNOWFLAKE").toUpperCase();
    const name = identifier(String(dataIn.LOGIN_NAME ?? ""));
    const user = options.users.find((candidate) => candidate.name === name);
    const sessionParameters = (dataIn.SESSION_PARAMETERS ?? {}) as Record<string, unknown>;
    const query = (key: string) => target.searchParams.get(key) ?? undefined;
    const record = (ok: boolean): LoginRecord => ({
      user: name,
      authenticator,
      ok,
      ...(query("warehouse") ? { warehouse: query("warehouse") } : {}),
      ...(query("databaseName") ? { database: query("databaseName") } : {}),
      ...(query("schemaName") ? { schema: query("schemaName") } : {}),
      ...(query("roleName") ? { role: query("roleName") } : {}),
      ...(sessionParameters.QUERY_TAG !== undefined ? { queryTag: String(sessionParameters.QUERY_TAG) } : {}),
      ...(typeof (dataIn.CLIENT_ENVIRONMENT as Body | undefined)?.APPLICATION === "string"
        ? { application: String((dataIn.CLIENT_ENVIRONMENT as Body).APPLICATION) }
        : {}),
    });
    const refuse = (code: string, message: string) => {
      state.logins.push(record(false));
      return gsError(code, message);
    };
    if (String(dataIn.ACCOUNT_NAME ?? "").toUpperCase() !== options.account.toUpperCase()) {
      return refuse("390100", "Incorrect username or password was specified.");
    }
    const credentialsOk =
      user !== undefined &&
      (authenticator === "SNOWFLAKE"
        ? user.password !== undefined && dataIn.PASSWORD === user.password
        : authenticator === "SNOWFLAKE_JWT"
          ? user.publicKey !== undefined && jwtValid(String(dataIn.TOKEN ?? ""), user, options.account)
          : authenticator === "OAUTH" && user.oauthToken !== undefined && dataIn.TOKEN === user.oauthToken);
    if (!credentialsOk) {
      if (authenticator === "SNOWFLAKE_JWT") return refuse("390144", "JWT token is invalid.");
      if (authenticator === "OAUTH") return refuse("390303", "Invalid OAuth access token.");
      return refuse("390100", "Incorrect username or password was specified.");
    }
    const roles = user.roles ?? ["PUBLIC"];
    const role = query("roleName") ? identifier(query("roleName") as string) : (roles[0] ?? "PUBLIC");
    if (!roles.includes(role)) {
      return refuse(
        "390189",
        `Role '${role}' specified in the connect string is not granted to this user. Contact your local system administrator, or attempt to login with another role, e.g. PUBLIC.`,
      );
    }
    const warehouse = query("warehouse") ? identifier(query("warehouse") as string) : null;
    const database = query("databaseName") ? identifier(query("databaseName") as string) : null;
    const schema = query("schemaName") ? identifier(query("schemaName") as string) : null;
    const id = nextId++;
    const params = new Map(Object.entries(DEFAULT_PARAMS));
    for (const [key, value] of Object.entries(sessionParameters)) params.set(key.toUpperCase(), String(value));
    const session: Session = {
      id,
      token: `session-token-${id}-${randomUUID()}`,
      masterToken: `master-token-${id}-${randomUUID()}`,
      warehouse: warehouse && data.warehouses.has(warehouse) ? warehouse : null,
      database: database && data.hasDatabase(database) ? database : null,
      schema: database && schema && data.hasSchema(database, schema) ? schema : null,
      role,
      params,
      closed: false,
    };
    sessions.set(session.token, session);
    state.logins.push(record(true));
    return {
      success: true,
      code: null,
      message: null,
      data: {
        token: session.token,
        masterToken: session.masterToken,
        validityInSeconds: 3600,
        masterValidityInSeconds: 14_400,
        sessionId: id,
        parameters: parameters(session.params),
        sessionInfo: {
          databaseName: session.database,
          schemaName: session.schema,
          warehouseName: session.warehouse,
          roleName: session.role,
        },
      },
    };
  }

  function renew(masterToken: string, body: Body): Body {
    const session = [...sessions.values()].find((candidate) => candidate.masterToken === masterToken);
    if (!session || body.requestType !== "RENEW") return gsError("390114", "Authentication token has expired.");
    sessions.delete(session.token);
    session.token = `session-token-${session.id}-${randomUUID()}`;
    sessions.set(session.token, session);
    state.renewals++;
    return {
      success: true,
      code: null,
      message: null,
      data: {
        sessionToken: session.token,
        validityInSeconds: 3600,
        masterToken: session.masterToken,
        masterValidityInSeconds: 14_400,
      },
    };
  }

  async function query(session: Session, body: Body, requestId: string): Promise<Body> {
    const sql = String(body.sqlText ?? "");
    const queryId = `01b0${randomUUID().slice(4)}`;
    const statementParams = new Map(session.params);
    for (const [key, value] of Object.entries((body.parameters ?? {}) as Record<string, unknown>)) {
      statementParams.set(key.toUpperCase(), String(value));
    }
    const view: SessionView = { ...session, params: statementParams };
    const describeOnly = body.describeOnly === true;
    state.queries.push({
      sql,
      describeOnly,
      queryTag: statementParams.get("QUERY_TAG") ?? "",
      queryId,
      params: new Map(statementParams),
    });
    if (holdPredicate?.(sql)) {
      await new Promise<void>((resolve) => {
        held.set(requestId, resolve);
        held.set(queryId, resolve);
      });
      return gsError("000604", "SQL execution canceled", { sqlState: "57014", queryId });
    }
    const statements = sql.split(/;\s*(?=\S)/).length;
    if (statements > Number(statementParams.get("MULTI_STATEMENT_COUNT") ?? "1")) {
      return gsError("000008", `Actual statement count ${statements} did not match the desired statement count 1.`, {
        sqlState: "0A000",
        queryId,
      });
    }
    const needsWarehouse = !describeOnly && / ORDER BY /.test(sql);
    if (needsWarehouse && session.warehouse === null) {
      return gsError(
        "000606",
        "No active warehouse selected in the current session.  Select an active warehouse with the 'use warehouse' command.",
        { sqlState: "57P03", queryId },
      );
    }
    const bindings = (body.bindings ?? {}) as Record<string, { value?: unknown }>;
    const binds = Object.keys(bindings)
      .sort((a, b) => Number(a) - Number(b))
      .map((key) => String(bindings[key]?.value ?? ""));
    const outcome = data.run(sql, view, binds);
    if (!outcome.ok) return gsError(outcome.code, outcome.message, { sqlState: outcome.sqlState, queryId });
    // ALTER SESSION changes the session itself.
    if (/^ALTER SESSION/i.test(sql)) for (const [key, value] of statementParams) session.params.set(key, value);
    const stored = store(queryId, outcome, statementParams);
    if (slowPredicate?.(sql)) {
      slow.set(queryId, slowPolls);
      return {
        success: true,
        code: "333333",
        message: "Query execution in progress.",
        data: { queryId, getResultUrl: `/queries/${queryId}/result`, progressDesc: null, queryAbortsAfterSecs: 300 },
      };
    }
    return resultBody(queryId, stored);
  }

  function store(queryId: string, outcome: Outcome & { ok: true }, params: ReadonlyMap<string, string>): StoredResult {
    const chunks: { start: number; end: number }[] = [];
    for (let start = Math.min(inlineRows, outcome.rows.length); start < outcome.rows.length; start += chunkRows) {
      chunks.push({ start, end: Math.min(start + chunkRows, outcome.rows.length) });
    }
    const stored: StoredResult = { outcome, chunks, qrmk: randomUUID(), params, attempts: chunks.map(() => 0) };
    results.set(queryId, stored);
    return stored;
  }

  function poll(queryId: string): Body {
    state.resultPolls++;
    const stored = results.get(queryId);
    if (!stored) return gsError("000709", `Statement ${queryId} not found`, { sqlState: "02000" });
    const left = slow.get(queryId) ?? 0;
    if (left > 1) {
      slow.set(queryId, left - 1);
      return {
        success: true,
        code: "333333",
        message: "Query execution in progress.",
        data: { queryId, getResultUrl: `/queries/${queryId}/result`, progressDesc: null },
      };
    }
    slow.delete(queryId);
    return resultBody(queryId, stored);
  }

  function resultBody(queryId: string, stored: StoredResult): Body {
    const { rows, columns } = stored.outcome;
    return {
      success: true,
      code: null,
      message: null,
      data: {
        parameters: parameters(stored.params),
        rowtype: columns,
        rowset: rows.slice(0, Math.min(inlineRows, rows.length)),
        total: rows.length,
        returned: rows.length,
        queryId,
        queryResultFormat: "json",
        statementTypeId: 4096,
        version: 1,
        qrmk: stored.qrmk,
        chunks: stored.chunks.map((chunk, index) => ({
          url: `${url}/results/${queryId}/chunk-${index}?X-Amz-Signature=${createHash("md5").update(`${queryId}${index}`).digest("hex")}`,
          rowCount: chunk.end - chunk.start,
          uncompressedSize: 0,
          compressedSize: 0,
        })),
      },
    };
  }

  function chunk(request: IncomingMessage, response: ServerResponse, path: string): void {
    const match = /^\/results\/([^/]+)\/chunk-(\d+)$/.exec(path);
    const stored = match ? results.get(match[1] as string) : undefined;
    const index = Number(match?.[2]);
    const range = stored?.chunks[index];
    const record = (status: number) => state.chunkRequests.push({ queryId: match?.[1] ?? "", index, status });
    if (!stored || !range) {
      record(404);
      return void response
        .writeHead(404, { "content-type": "application/xml" })
        .end("<Error><Code>NoSuchKey</Code></Error>");
    }
    if (request.headers["x-amz-server-side-encryption-customer-key"] !== stored.qrmk) {
      record(400);
      return void response
        .writeHead(400, { "content-type": "application/xml" })
        .end("<Error><Code>InvalidRequest</Code></Error>");
    }
    stored.attempts[index] = (stored.attempts[index] ?? 0) + 1;
    const fault = chunkFault?.({ index, attempt: stored.attempts[index] as number });
    const end = fault === "short" ? range.start + Math.floor((range.end - range.start) / 2) : range.end;
    const rows: WireRow[] = stored.outcome.rows.slice(range.start, end) as WireRow[];
    const text = rows.map((row) => JSON.stringify(row)).join(",");
    if (fault === "hang") {
      record(0);
      hung.push(response);
      return;
    }
    if (fault === "reset") {
      record(0);
      response.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(text.length) });
      response.write(text.slice(0, Math.floor(text.length / 2)));
      setTimeout(() => response.destroy(), 10);
      return;
    }
    if (typeof fault === "object") {
      record(fault.status);
      return void response.writeHead(fault.status, { "content-type": "text/plain" }).end("chunk unavailable");
    }
    record(200);
    // A body cut short but delivered whole, e.g. by a broken proxy: the driver cannot parse it.
    const payload = fault === "truncated" ? `${text.slice(0, Math.floor(text.length / 2))}["` : text;
    response
      .writeHead(200, { "content-type": "application/octet-stream", "content-encoding": "gzip" })
      .end(gzipSync(payload));
  }

  return {
    url,
    data,
    get logins() {
      return state.logins;
    },
    get queries() {
      return state.queries;
    },
    get chunkRequests() {
      return state.chunkRequests;
    },
    get renewals() {
      return state.renewals;
    },
    get resultPolls() {
      return state.resultPolls;
    },
    get sessionsClosed() {
      return state.sessionsClosed;
    },
    get aborts() {
      return state.aborts;
    },
    expireSessionTokens() {
      for (const token of sessions.keys()) expired.add(token);
    },
    chunkFaults(fault) {
      chunkFault = fault;
      endHung();
    },
    holdQueries(predicate) {
      holdPredicate = predicate;
    },
    runSlowly(predicate, polls = 1) {
      slowPredicate = predicate;
      slowPolls = polls;
    },
    async close() {
      for (const release of held.values()) release();
      endHung();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
