/**
 * A local PostHog for tests: the batch capture endpoint and the Groups REST API of one project, enforcing the
 * documented contract (connectors/posthog/response.ts lists the answers and their sources), keeping groups in
 * memory, and playing scripted faults. Ingestion is applied at once (real PostHog applies it asynchronously), and
 * events ingestion would drop silently after a 200 are kept in `dropped`. Stricter than PostHog in one place: a
 * well-formed project API key of another project is refused with 401 (capture accepts it and the events vanish),
 * so that a wrong key fails loudly in tests.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { parseJson, readBody, reply, startLocalServer } from "../shared/receiver.js";
import { captureViolation, ingestEvent, isObject, type ProjectState } from "./contract-rules.js";

export interface PostHogReceiverOptions {
  /** The project API key capture accepts. */
  readonly projectApiKey: string;
  /** The personal API key the REST API accepts; without it every REST call is refused (401). */
  readonly personalApiKey?: string;
  /** The numeric project ID of the REST API; default "1". */
  readonly projectId?: string;
  /** Group types the project already has, in index order. */
  readonly groupTypes?: readonly string[];
  /** Largest capture body; default 20 MB (`BATCH_BODY_SIZE`). */
  readonly maxBodyBytes?: number;
}

/** A scripted fault for one request; `on` limits it to capture or REST requests (default: the next of either). */
export type PostHogFault = (
  | { readonly status: 429; readonly retryAfter?: number }
  | { readonly status: 500 | 502 | 503 }
  | { readonly status: 401 }
  | { readonly status: 413 }
  | { readonly delayMs: number }
  | { readonly drop: true }
) & { readonly on?: "capture" | "api" };

/** One request as received. */
export interface PostHogRequest {
  readonly kind: "capture" | "api";
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  /** Capture: the events of the batch (empty when the body was unreadable). */
  readonly events: readonly Record<string, unknown>[];
  /** REST: the parsed JSON body, if any. */
  readonly body: unknown;
  /** The status answered; 0 while unanswered or when the connection was dropped. */
  readonly status: number;
  readonly bytes: number;
}

export interface PostHogReceiver {
  /** `http://127.0.0.1:<port>`: both `host` and the REST API host. */
  readonly url: string;
  /** A copy of the groups, keyed `${group_type}|${group_key}`. */
  groups(): Map<string, Record<string, unknown>>;
  /** Group type names by index. */
  groupTypes(): string[];
  /** Edits a group in place, as a person in PostHog's UI would (tests of drift); the group is created if missing. */
  editGroup(groupType: string, groupKey: string, edit: (properties: Record<string, unknown>) => void): void;
  /** Deletes a group, as deleting it in PostHog would. */
  deleteGroup(groupType: string, groupKey: string): void;
  /** Every request received, in order. */
  readonly requests: ReadonlyArray<PostHogRequest>;
  /** Events capture accepted (200) that ingestion then dropped, with why. */
  readonly dropped: ReadonlyArray<{ readonly event: Record<string, unknown>; readonly reason: string }>;
  /** Scripted faults for the next requests, consumed in order. */
  fail(...faults: PostHogFault[]): void;
  /** Forgets the scripted faults not consumed yet. */
  clearFaults(): void;
  /** A batch holding an event for which `predicate` returns a message is refused (400, nothing applied). */
  rejectWhen(predicate: ((event: Record<string, unknown>) => string | undefined) | undefined): void;
  /** Forgets groups, group types, requests, drops, faults and the predicate. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024;
const NOT_FOUND = { type: "invalid_request", code: "not_found", detail: "Not found." };

export async function startPostHogReceiver(options: PostHogReceiverOptions): Promise<PostHogReceiver> {
  const projectId = options.projectId ?? "1";
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const state: ProjectState = { groupTypes: [...(options.groupTypes ?? [])], groups: new Map() };
  const requests: { -readonly [K in keyof PostHogRequest]: PostHogRequest[K] }[] = [];
  const dropped: { event: Record<string, unknown>; reason: string }[] = [];
  let faults: PostHogFault[] = [];
  let predicate: ((event: Record<string, unknown>) => string | undefined) | undefined;

  const takeFault = (kind: "capture" | "api") => {
    const index = faults.findIndex((fault) => fault.on === undefined || fault.on === kind);
    return index < 0 ? undefined : faults.splice(index, 1)[0];
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const path = url.pathname.replace(/\/+$/, "");
    const kind: "capture" | "api" | undefined =
      path === "/batch" ? "capture" : path.startsWith("/api/") ? "api" : undefined;
    const { body, bytes } = await readBody(request, maxBodyBytes);
    if (!kind) return reply(response, 404, "not found");
    const parsed = body === undefined ? undefined : parseJson(body);
    const received = {
      kind,
      method: request.method ?? "",
      path: `${url.pathname}${url.search}`,
      events:
        kind === "capture" && isObject(parsed) && Array.isArray(parsed.batch)
          ? (parsed.batch.filter(isObject) as Record<string, unknown>[])
          : [],
      body: kind === "api" ? parsed : undefined,
      status: 0,
      bytes,
    };
    requests.push(received);
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      received.status = status;
      reply(response, status, payload, headers);
    };

    const fault = takeFault(kind);
    if (fault && "delayMs" in fault) await delay(fault.delayMs, undefined, { signal: server.closing });
    if (fault && "drop" in fault) {
      request.socket.destroy();
      return;
    }
    if (fault && "status" in fault) return answer(...faultAnswer(fault, kind));
    if (kind === "capture") return capture(request, body, parsed, answer);
    return api(request, url, parsed, answer);
  }

  type Answer = (status: number, payload: unknown, headers?: Record<string, string>) => void;

  function capture(request: IncomingMessage, body: string | undefined, parsed: unknown, answer: Answer) {
    if (body === undefined) return answer(413, "Failed to buffer the request body: length limit exceeded");
    if (request.method !== "POST") return answer(405, "method not allowed");
    if (!isObject(parsed)) return answer(400, "failed to decode request: the body is not a JSON object");
    const key = parsed.api_key ?? parsed.token;
    if (typeof key !== "string" || key === "") return answer(401, "event submitted without an api_key");
    if (key.startsWith("phx_")) return answer(401, "API key is not valid: personal api key");
    if (key !== options.projectApiKey) return answer(401, "API key is not valid: not the receiver's project API key");
    if (!Array.isArray(parsed.batch) || parsed.batch.length === 0) return answer(400, "request holds no event");
    for (const event of parsed.batch as unknown[]) {
      const violation = captureViolation(event) ?? predicate?.(event as Record<string, unknown>);
      if (violation) return answer(400, violation);
    }
    for (const event of parsed.batch as Record<string, unknown>[]) {
      const reason = ingestEvent(state, event);
      if (reason) dropped.push({ event, reason });
    }
    return answer(200, { status: 1 });
  }

  function api(request: IncomingMessage, url: URL, parsed: unknown, answer: Answer) {
    const auth = request.headers.authorization;
    if (!auth) {
      return answer(401, {
        type: "authentication_error",
        code: "not_authenticated",
        detail: "Authentication credentials were not provided.",
      });
    }
    if (!options.personalApiKey || auth !== `Bearer ${options.personalApiKey}`) {
      return answer(401, {
        type: "authentication_error",
        code: "authentication_failed",
        detail: "Personal API key found in request Authorization header is invalid.",
      });
    }
    const match =
      /^\/api\/(?:projects|environments)\/([^/]+)\/(groups_types|groups\/delete_property|groups\/find)\/?$/.exec(
        url.pathname,
      );
    if (!match) return answer(404, NOT_FOUND);
    if (match[1] !== projectId) {
      return answer(403, {
        type: "authentication_error",
        code: "permission_denied",
        detail: "You don't have access to the project.",
      });
    }
    if (match[2] === "groups_types") {
      if (request.method !== "GET") return answer(405, { detail: `Method "${request.method}" not allowed.` });
      return answer(
        200,
        state.groupTypes.map((groupType, index) => ({
          group_type: groupType,
          group_type_index: index,
          name_singular: null,
          name_plural: null,
        })),
      );
    }
    if (match[2] === "groups/find") return find(request, url, answer);
    if (request.method !== "POST") return answer(405, { detail: `Method "${request.method}" not allowed.` });
    const index = Number(url.searchParams.get("group_type_index"));
    const groupKey = url.searchParams.get("group_key");
    const groupType = Number.isInteger(index) ? state.groupTypes[index] : undefined;
    const id = `${groupType}|${groupKey}`;
    const group = groupType !== undefined && groupKey !== null ? state.groups.get(id) : undefined;
    if (!group) return answer(404, NOT_FOUND);
    const property = isObject(parsed) ? parsed.$unset : undefined;
    if (typeof property !== "string") {
      return answer(400, {
        type: "validation_error",
        code: "invalid_input",
        detail: "This field is required and must be a string (the property name to delete).",
        attr: "$unset",
      });
    }
    if (!(property in group)) {
      return answer(400, {
        type: "validation_error",
        code: "invalid_input",
        detail: `Property '${property}' does not exist on this group.`,
        attr: "$unset",
      });
    }
    delete group[property];
    return answer(200, {
      group_type_index: index,
      group_key: groupKey,
      group_properties: group,
      created_at: new Date(0).toISOString(),
    });
  }

  /**
   * `GET /groups/find/?group_type_index=&group_key=` (scope group:read): the group, or 404. Read-only when
   * `skip_create_notebook=true`; this receiver never creates notebooks either way.
   */
  function find(request: IncomingMessage, url: URL, answer: Answer) {
    if (request.method !== "GET") return answer(405, { detail: `Method "${request.method}" not allowed.` });
    const raw = url.searchParams.get("group_type_index");
    const groupKey = url.searchParams.get("group_key");
    if (raw === null || !/^\d+$/.test(raw) || groupKey === null) {
      return answer(400, {
        type: "validation_error",
        code: "invalid_input",
        detail: "group_type_index and group_key are required.",
        attr: raw === null ? "group_type_index" : "group_key",
      });
    }
    const index = Number(raw);
    const groupType = state.groupTypes[index];
    const group = groupType === undefined ? undefined : state.groups.get(`${groupType}|${groupKey}`);
    if (!group) return answer(404, NOT_FOUND);
    return answer(200, {
      group_type_index: index,
      group_key: groupKey,
      group_properties: structuredClone(group),
      created_at: new Date(0).toISOString(),
    });
  }

  const server = await startLocalServer(handle);
  return {
    url: server.url,
    groups: () => new Map([...state.groups].map(([key, group]) => [key, structuredClone(group)])),
    groupTypes: () => [...state.groupTypes],
    editGroup: (groupType, groupKey, edit) => {
      if (!state.groupTypes.includes(groupType)) state.groupTypes.push(groupType);
      const id = `${groupType}|${groupKey}`;
      const group = state.groups.get(id) ?? {};
      edit(group);
      state.groups.set(id, group);
    },
    deleteGroup: (groupType, groupKey) => {
      state.groups.delete(`${groupType}|${groupKey}`);
    },
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
      state.groups.clear();
      state.groupTypes.splice(0, state.groupTypes.length, ...(options.groupTypes ?? []));
      requests.length = 0;
      dropped.length = 0;
      faults = [];
      predicate = undefined;
    },
    close: () => server.close(),
  };
}

/** Status, body and headers PostHog answers for a scripted fault: capture answers in plain text, REST in JSON. */
function faultAnswer(
  fault: Extract<PostHogFault, { status: number }>,
  kind: "capture" | "api",
): [number, unknown, Record<string, string>] {
  const retryAfter: Record<string, string> =
    "retryAfter" in fault && fault.retryAfter !== undefined ? { "retry-after": String(fault.retryAfter) } : {};
  if (kind === "capture") {
    switch (fault.status) {
      case 429:
        return [429, "rate limited", retryAfter];
      case 401:
        return [401, "API key is not valid: invalid token", {}];
      case 413:
        return [413, "Failed to buffer the request body: length limit exceeded", {}];
      case 503:
        return [503, "transient error, please retry", {}];
      default:
        return [fault.status, "internal server error", {}];
    }
  }
  switch (fault.status) {
    case 429:
      return [
        429,
        {
          type: "throttled_error",
          code: "throttled",
          detail: `Request was throttled. Expected available in ${"retryAfter" in fault ? (fault.retryAfter ?? 1) : 1} seconds.`,
        },
        retryAfter,
      ];
    case 401:
      return [
        401,
        {
          type: "authentication_error",
          code: "authentication_failed",
          detail: "Personal API key found in request Authorization header is invalid.",
        },
        {},
      ];
    case 413:
      return [413, { type: "invalid_request", code: "too_large", detail: "Request entity too large." }, {}];
    default:
      return [fault.status, { type: "server_error", code: "error", detail: "A server error occurred." }, {}];
  }
}
