/**
 * A local Mixpanel-compatible /groups server, for tests and the demo. It enforces the documented contract (request
 * shape, token, per-object rules, Hierarchical Groups identity), answers in Mixpanel's shapes (the strict
 * `failed_records` 400 that /import documents, or an all-or-nothing 400), keeps profiles in memory, and plays
 * scripted faults: throttling, outages, dropped connections, slow answers.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { applyUpdate, isObject, type Profiles, validateUpdate } from "./contract-rules.js";

export interface ReceiverOptions {
  /** The project token every update must carry. */
  readonly token: string;
  /** The project uses Hierarchical Groups: `$company_id` required and bare. */
  readonly hierarchical?: boolean;
  /** Default true: a 400 with `failed_records`, valid records applied. False: a 400 `{"error","status":0}`, nothing applied. */
  readonly perRecordErrors?: boolean;
  /** Largest request body; default 2097152 (the 413 limit Mixpanel documents). */
  readonly maxBodyBytes?: number;
  /**
   * The Query API (`POST /api/query/engage`): the service account and project it accepts (HTTP Basic auth,
   * `project_id` in the query string), and the `data_group_id` of each group key. Absent: the endpoint answers 401.
   */
  readonly query?: {
    readonly username: string;
    readonly secret: string;
    readonly projectId: string;
    /** `data_group_id` → group key. */
    readonly dataGroupIds: Readonly<Record<string, string>>;
    /** Queries allowed per window before 429 with Retry-After; default 60 per hour, as documented. */
    readonly limit?: { readonly queries: number; readonly windowMs: number };
  };
}

/** A scripted fault for one request. */
export type Fault =
  | { readonly status: 429; readonly retryAfter?: number }
  | { readonly status: 500 | 502 | 503 }
  | { readonly status: 401 }
  | { readonly status: 413 }
  | { readonly delayMs: number }
  | { readonly drop: true };

/** One request as received. */
export interface ReceivedRequest {
  /** The parsed update objects (empty when the body was not a JSON array). */
  readonly updates: readonly Record<string, unknown>[];
  /** The status answered; 0 while unanswered, or when the connection was dropped. */
  readonly status: number;
  /** Body bytes. */
  readonly bytes: number;
}

export interface MixpanelReceiver {
  /** `http://127.0.0.1:<port>`, for `api_host`. */
  readonly url: string;
  /** A copy of the profiles as the receiver holds them, keyed `${group_key}|${company_id ?? ""}|${group_id}`. */
  profiles(): Map<string, Record<string, unknown>>;
  /** Every request received, in order, with its parsed update objects and the status answered. */
  readonly requests: ReadonlyArray<ReceivedRequest>;
  /** Scripted faults for the next requests, consumed in order, one per request. */
  fail(...faults: Fault[]): void;
  /** Forgets the scripted faults not consumed yet. */
  clearFaults(): void;
  /** Records for which `predicate` returns a message are refused as invalid (e.g. a poison value). */
  rejectWhen(predicate: (update: Record<string, unknown>) => string | undefined): void;
  /**
   * Edits a profile in place, as a person in Mixpanel's UI would (tests of drift); `undefined` from `edit` deletes
   * the profile. Key: `${group_key}|${company_id ?? ""}|${group_id}`.
   */
  editProfile(key: string, edit: (profile: Record<string, unknown>) => Record<string, unknown> | undefined): void;
  /** Forgets profiles, requests, faults and the reject predicate. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 2_097_152;
const MAX_UPDATES = 2000;

export async function startMixpanelReceiver(options: ReceiverOptions): Promise<MixpanelReceiver> {
  const hierarchical = options.hierarchical ?? false;
  const perRecordErrors = options.perRecordErrors ?? true;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const profiles: Profiles = new Map();
  const requests: { updates: Record<string, unknown>[]; status: number; bytes: number }[] = [];
  let faults: Fault[] = [];
  let predicate: ((update: Record<string, unknown>) => string | undefined) | undefined;
  const closing = new AbortController();

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const { body, bytes } = await readBody(request, maxBodyBytes);
    if (request.method === "POST" && url.pathname === "/api/query/engage") {
      return engage(request, url, body ?? "", response);
    }
    if (request.method !== "POST" || url.pathname !== "/groups") {
      return reply(response, 404, { error: "not found", status: 0 });
    }
    const parsed = body === undefined ? undefined : parseJson(body);
    const received = {
      updates: Array.isArray(parsed) ? (parsed.filter(isObject) as Record<string, unknown>[]) : [],
      status: 0,
      bytes,
    };
    requests.push(received);
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      received.status = status;
      reply(response, status, payload, headers);
    };

    const fault = faults.shift();
    if (fault && "delayMs" in fault) await delay(fault.delayMs, undefined, { signal: closing.signal });
    if (fault && "drop" in fault) {
      request.socket.destroy();
      return;
    }
    if (fault && "status" in fault) return answer(...faultAnswer(fault));

    if (body === undefined) {
      return answer(413, {
        code: 413,
        error: `request exceeds max limit of ${maxBodyBytes} bytes`,
        status: "Request Entity Too Large",
      });
    }
    if (url.searchParams.get("strict") !== "1" || !url.searchParams.get("verbose")) {
      return answer(400, { error: "this receiver requires strict=1 and verbose in the query", status: 0 });
    }
    if (!(request.headers["content-type"] ?? "").startsWith("application/json")) {
      return answer(400, { error: "Content-Type must be application/json", status: 0 });
    }
    if (!Array.isArray(parsed) || parsed.length < 1 || parsed.length > MAX_UPDATES) {
      return answer(400, { error: `the body must be a JSON array of 1 to ${MAX_UPDATES} update objects`, status: 0 });
    }
    if (parsed.some((update) => isObject(update) && update.$token !== options.token)) {
      return answer(401, { error: "Invalid token", status: "error" });
    }

    const failed: { index: number; $group_id: unknown; field: string; message: string }[] = [];
    parsed.forEach((update: unknown, index) => {
      const violation = validateUpdate(update, hierarchical);
      const refused = violation ?? refusedByPredicate(update as Record<string, unknown>);
      if (refused) {
        const groupId = isObject(update) ? update.$group_id : undefined;
        failed.push({ index, $group_id: groupId, field: refused.field, message: refused.message });
      }
    });
    if (failed.length > 0 && !perRecordErrors) {
      const first = failed[0]!;
      return answer(400, { error: `record ${first.index}: ${first.message}`, status: 0 });
    }
    const bad = new Set(failed.map((record) => record.index));
    parsed.forEach((update: Record<string, unknown>, index) => {
      if (!bad.has(index)) applyUpdate(profiles, update);
    });
    if (failed.length > 0) {
      return answer(400, {
        code: 400,
        error: "some data points in the request failed validation",
        failed_records: failed,
        num_records_imported: parsed.length - failed.length,
        status: "Bad Request",
      });
    }
    return answer(200, { error: null, status: 1 });
  }

  /** Query API answers, in its shapes: `{page, page_size, session_id, status, total, results}` or an error. */
  const queryTimes: number[] = [];
  function engage(request: IncomingMessage, url: URL, body: string, response: ServerResponse) {
    const query = options.query;
    const received = { updates: [] as Record<string, unknown>[], status: 0, bytes: Buffer.byteLength(body) };
    requests.push(received);
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      received.status = status;
      reply(response, status, payload, headers);
    };
    const fault = faults.shift();
    if (fault && "status" in fault) return answer(...faultAnswer(fault));
    const expected = query ? `Basic ${Buffer.from(`${query.username}:${query.secret}`).toString("base64")}` : "";
    if (!query || request.headers.authorization !== expected) {
      return answer(401, { error: "Invalid service account credentials", status: "error" });
    }
    if (url.searchParams.get("project_id") !== query.projectId) {
      return answer(403, { error: "service account has no access to this project", status: "error" });
    }
    const limit = query.limit ?? { queries: 60, windowMs: 3_600_000 };
    const now = Date.now();
    while (queryTimes.length > 0 && queryTimes[0]! <= now - limit.windowMs) queryTimes.shift();
    if (queryTimes.length >= limit.queries) {
      const wait = Math.max(1, Math.ceil((queryTimes[0]! + limit.windowMs - now) / 1000));
      return answer(
        429,
        { error: "Query rate limit exceeded: 60 queries per hour", status: "error" },
        { "retry-after": String(wait) },
      );
    }
    queryTimes.push(now);
    const form = new URLSearchParams(body);
    const groupKey = query.dataGroupIds[form.get("data_group_id") ?? ""];
    if (groupKey === undefined) {
      return answer(400, {
        error: `unknown data_group_id ${JSON.stringify(form.get("data_group_id"))}`,
        status: "error",
      });
    }
    let ids: unknown = form.get("distinct_id") === null ? undefined : [form.get("distinct_id")];
    if (form.get("distinct_ids") !== null) ids = parseJson(form.get("distinct_ids")!);
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string")) {
      return answer(400, {
        error: "distinct_id or distinct_ids (a JSON array of strings) is required",
        status: "error",
      });
    }
    const results: { $distinct_id: string; $properties: Record<string, unknown> }[] = [];
    for (const id of ids as string[]) {
      const profile = profiles.get(profileKeyOfDistinctId(groupKey, id, hierarchical));
      if (profile) results.push({ $distinct_id: id, $properties: structuredClone(profile) });
    }
    return answer(200, {
      page: 0,
      page_size: 1000,
      session_id: `session-${now}`,
      status: "ok",
      total: results.length,
      results,
    });
  }

  function refusedByPredicate(update: Record<string, unknown>): { field: string; message: string } | undefined {
    const message = predicate?.(update);
    return message === undefined ? undefined : { field: "$set", message };
  }

  const server = createServer((request, response) => {
    response.on("error", () => undefined);
    handle(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    profiles: () => new Map([...profiles].map(([key, profile]) => [key, structuredClone(profile)])),
    get requests() {
      return requests;
    },
    fail: (...more) => {
      faults.push(...more);
    },
    clearFaults: () => {
      faults = [];
    },
    rejectWhen: (next) => {
      predicate = next;
    },
    editProfile: (key, edit) => {
      const next = edit(profiles.get(key) ?? {});
      if (next === undefined) profiles.delete(key);
      else profiles.set(key, next);
    },
    reset: () => {
      profiles.clear();
      requests.length = 0;
      faults = [];
      predicate = undefined;
    },
    close: async () => {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * The receiver's profile key for a Query API distinct_id: the bare Group ID, or in Hierarchical Groups the composite
 * form (`$company:<company_id>` for a company, `$company:<company_id>|<group_key>:<group_id>` otherwise).
 */
function profileKeyOfDistinctId(groupKey: string, distinctId: string, hierarchical: boolean): string {
  if (!hierarchical) return `${groupKey}||${distinctId}`;
  const match = /^\$company:([^|]*)(?:\|([^:]+):(.*))?$/.exec(distinctId);
  if (!match) return `${groupKey}||${distinctId}`;
  const company = match[1]!;
  return `${groupKey}|${company}|${match[3] ?? company}`;
}

/** Status, body and headers Mixpanel answers for a scripted fault. */
function faultAnswer(fault: Extract<Fault, { status: number }>): [number, unknown, Record<string, string>] {
  switch (fault.status) {
    case 429:
      return [
        429,
        {
          code: 429,
          error: "Project exceeded rate limits. Please retry the request with exponential backoff.",
          status: "Too Many Requests",
        },
        fault.retryAfter === undefined ? {} : { "retry-after": String(fault.retryAfter) },
      ];
    case 401:
      return [401, { error: "Invalid token", status: "error" }, {}];
    case 413:
      return [
        413,
        { code: 413, error: "request exceeds max limit of 2097152 bytes", status: "Request Entity Too Large" },
        {},
      ];
    default:
      return [fault.status, { error: "Internal server error", status: 0 }, {}];
  }
}

/** Reads the body; `body` is undefined when it exceeds `limit` (the rest is read and dropped). */
async function readBody(request: IncomingMessage, limit: number): Promise<{ body?: string; bytes: number }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes <= limit) chunks.push(chunk);
  }
  return bytes > limit ? { bytes } : { body: Buffer.concat(chunks).toString("utf8"), bytes };
}

function reply(response: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}) {
  if (response.destroyed || response.headersSent) return;
  const text = JSON.stringify(payload);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  response.end(text);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
