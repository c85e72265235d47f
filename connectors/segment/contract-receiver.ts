/**
 * A local Segment Tracking API for tests: `POST /v1/batch` of one source, enforcing the documented contract
 * (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/): Basic auth with the write key
 * (or `writeKey` in the body), JSON only, 500 KB per batch and 32 KB per event (400 over either), at most 2500
 * events (200, but all rejected), `userId` or `anonymousId` required (200, but the event is dropped:
 * `no_user_anon_id`), and de-duplication on `messageId`. Group traits are merged; a trait sent as `null` is
 * overwritten with `null`. Error bodies and the answer to a bad write key are not documented; the receiver answers
 * JSON `{"success": false, "message"}` and 401.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { parseJson, readBody, reply, startLocalServer } from "../shared/receiver.js";

export interface SegmentReceiverOptions {
  /** The write key of the source. */
  readonly writeKey: string;
  /** Largest batch body; default 500 KB. */
  readonly maxBatchBytes?: number;
  /** Largest event; default 32 KB. */
  readonly maxEventBytes?: number;
}

export type SegmentFault =
  | { readonly status: 429; readonly retryAfter?: number }
  | { readonly status: 500 | 502 | 503 }
  | { readonly status: 401 }
  | { readonly status: 413 }
  | { readonly delayMs: number }
  | { readonly drop: true };

export interface SegmentRequest {
  /** The batch's events (empty when the body was unreadable). */
  readonly events: readonly Record<string, unknown>[];
  readonly status: number;
  readonly bytes: number;
}

export interface SegmentReceiver {
  /** `http://127.0.0.1:<port>`, for `api_host`. */
  readonly url: string;
  /** A copy of the groups' traits by groupId. */
  groups(): Map<string, Record<string, unknown>>;
  /** Who each group was attributed to: `user:<id>` or `anon:<id>`, by groupId. */
  members(): Map<string, string[]>;
  readonly requests: ReadonlyArray<SegmentRequest>;
  /** Events accepted with a 200 and then dropped (no user, over 2500) or de-duplicated, with why. */
  readonly dropped: ReadonlyArray<{ readonly event: Record<string, unknown>; readonly reason: string }>;
  fail(...faults: SegmentFault[]): void;
  clearFaults(): void;
  /** A batch holding an event for which `predicate` returns a message is refused (400, nothing applied). */
  rejectWhen(predicate: ((event: Record<string, unknown>) => string | undefined) | undefined): void;
  reset(): void;
  close(): Promise<void>;
}

const MAX_EVENTS = 2500;

export async function startSegmentReceiver(options: SegmentReceiverOptions): Promise<SegmentReceiver> {
  const maxBatchBytes = options.maxBatchBytes ?? 500 * 1024;
  const maxEventBytes = options.maxEventBytes ?? 32 * 1024;
  const groups = new Map<string, Record<string, unknown>>();
  const members = new Map<string, Set<string>>();
  const seen = new Set<string>();
  const requests: { events: Record<string, unknown>[]; status: number; bytes: number }[] = [];
  const dropped: { event: Record<string, unknown>; reason: string }[] = [];
  let faults: SegmentFault[] = [];
  let predicate: ((event: Record<string, unknown>) => string | undefined) | undefined;
  const basic = `Basic ${Buffer.from(`${options.writeKey}:`).toString("base64")}`;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const { body, bytes } = await readBody(request, maxBatchBytes);
    if (request.method !== "POST" || url.pathname.replace(/\/+$/, "") !== "/v1/batch") {
      return reply(response, 404, { success: false, message: "not found" });
    }
    const parsed = body === undefined ? undefined : parseJson(body);
    const received = {
      events:
        isObject(parsed) && Array.isArray(parsed.batch)
          ? (parsed.batch.filter(isObject) as Record<string, unknown>[])
          : [],
      status: 0,
      bytes,
    };
    requests.push(received);
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      received.status = status;
      reply(response, status, payload, headers);
    };

    const fault = faults.shift();
    if (fault && "delayMs" in fault) await delay(fault.delayMs, undefined, { signal: server.closing });
    if (fault && "drop" in fault) {
      request.socket.destroy();
      return;
    }
    if (fault && "status" in fault) return answer(...faultAnswer(fault));

    const refuse = (message: string) => answer(400, { success: false, message });
    if (body === undefined) return refuse(`batch is over the limit of ${maxBatchBytes} bytes`);
    if (!(request.headers["content-type"] ?? "").startsWith("application/json")) {
      return refuse("Content-Type must be application/json");
    }
    if (!isObject(parsed)) return refuse("invalid JSON");
    const authorized = request.headers.authorization === basic || parsed.writeKey === options.writeKey;
    if (!authorized) return answer(401, { success: false, message: "invalid write key" });
    if (!Array.isArray(parsed.batch)) return refuse("batch must be an array");
    const events = parsed.batch as unknown[];
    for (const event of events) {
      if (!isObject(event)) return refuse("every event must be an object");
      const size = Buffer.byteLength(JSON.stringify(event));
      if (size > maxEventBytes) return refuse(`event is ${size} bytes, over the limit of ${maxEventBytes} bytes`);
      const refused = predicate?.(event);
      if (refused) return refuse(refused);
    }
    if (events.length > MAX_EVENTS) {
      for (const event of events as Record<string, unknown>[])
        dropped.push({ event, reason: "batch over 2500 events" });
      return answer(200, { success: true });
    }
    for (const event of events as Record<string, unknown>[]) {
      const reason = ingest(event);
      if (reason) dropped.push({ event, reason });
    }
    return answer(200, { success: true });
  }

  /** Applies one accepted event; returns why it was dropped or de-duplicated, or `undefined`. */
  function ingest(event: Record<string, unknown>): string | undefined {
    if (typeof event.messageId === "string") {
      if (seen.has(event.messageId)) return "duplicate messageId";
      seen.add(event.messageId);
    }
    if (event.type !== "group") return undefined;
    const user = typeof event.userId === "string" && event.userId !== "" ? `user:${event.userId}` : undefined;
    const anonymous =
      typeof event.anonymousId === "string" && event.anonymousId !== "" ? `anon:${event.anonymousId}` : undefined;
    if (!user && !anonymous) return "no_user_anon_id";
    if (typeof event.groupId !== "string" || event.groupId === "") return "missing groupId";
    const traits = groups.get(event.groupId) ?? {};
    if (isObject(event.traits)) Object.assign(traits, structuredClone(event.traits));
    groups.set(event.groupId, traits);
    const set = members.get(event.groupId) ?? new Set<string>();
    set.add((user ?? anonymous) as string);
    members.set(event.groupId, set);
    return undefined;
  }

  const server = await startLocalServer(handle);
  return {
    url: server.url,
    groups: () => new Map([...groups].map(([key, traits]) => [key, structuredClone(traits)])),
    members: () => new Map([...members].map(([key, set]) => [key, [...set].sort()])),
    get requests() {
      return requests;
    },
    get dropped() {
      return dropped;
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
    reset: () => {
      groups.clear();
      members.clear();
      seen.clear();
      requests.length = 0;
      dropped.length = 0;
      faults = [];
      predicate = undefined;
    },
    close: () => server.close(),
  };
}

function faultAnswer(fault: Extract<SegmentFault, { status: number }>): [number, unknown, Record<string, string>] {
  switch (fault.status) {
    case 429:
      return [
        429,
        { success: false, message: "rate limit exceeded" },
        fault.retryAfter === undefined
          ? {}
          : { "retry-after": String(fault.retryAfter), "x-ratelimit-reset": String(fault.retryAfter) },
      ];
    case 401:
      return [401, { success: false, message: "invalid write key" }, {}];
    case 413:
      return [413, { success: false, message: "request entity too large" }, {}];
    default:
      return [fault.status, { success: false, message: "internal server error" }, {}];
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
