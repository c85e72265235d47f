/**
 * Reads Mixpanel's answer to one `POST /groups` into a `SendOutcome`. Pure, so every documented body shape is unit
 * tested. What the bodies mean: /work/shared/reference/mixpanel.md §2, and
 * https://developer.mixpanel.com/reference/group-set (200 `1`/`0`, verbose `{"error","status"}`, 401/403 JSON).
 * With `verbose=2` and `strict=1` a validation error is a 400; `failed_records` is the strict shape /import
 * documents, used when present, else the batch is bisected.
 */

import { parseRetryAfter } from "../../src/delivery/retry-after.js";
import type { RejectedRecord, SendOutcome } from "../../src/destination.js";
import { redact } from "../../src/secret.js";

export interface MixpanelResponse {
  readonly status: number;
  readonly body: string;
  readonly retryAfter?: string | readonly string[] | undefined;
  /** Origin that answered, for messages. */
  readonly origin: string;
}

const TOKEN_ACTION =
  "Set `project_token` to the token of the Mixpanel project (Project Settings → Access Keys), and `region` to the project's data residency (us, eu or in).";

export function classifyResponse(response: MixpanelResponse, now = Date.now()): SendOutcome {
  const { status, body, origin } = response;
  const json = parseJson(body);
  const detail = errorDetail(json, body);

  if (status >= 200 && status < 300) {
    const text = body.trim();
    if (text === "1") return { kind: "ok" };
    if (text === "0") return invalid("Mixpanel accepted none of the updates (it answered 0)", status);
    if (isObject(json)) {
      if (json.error !== undefined && json.error !== null) {
        return invalid(`Mixpanel refused the updates: ${stringify(json.error)}`, status);
      }
      if (json.status === 1 || json.status === "1" || json.status === "OK") return { kind: "ok" };
      if (json.status === 0 || json.status === "0") return invalid("Mixpanel refused the updates (status 0)", status);
    }
    return {
      kind: "fatal",
      reason: redact(`unexpected answer from ${origin}: HTTP ${status} ${snippet(body)}`),
      action: "Check `api_host`: it must be Mixpanel's ingestion API, or a proxy that forwards /groups unchanged.",
      status,
    };
  }
  if (status === 400) {
    const rejected = failedRecords(json);
    if (rejected) return { kind: "rejected-records", rejected, status };
    return invalid(`Mixpanel refused the updates (HTTP 400): ${detail}`, status);
  }
  if (status === 401 || status === 403) {
    return {
      kind: "fatal",
      reason: redact(`Mixpanel refused the project token (HTTP ${status}: ${detail}); check project_token`),
      action: TOKEN_ACTION,
      status,
    };
  }
  if (status === 413) return { kind: "too-large", status };
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(response.retryAfter, now);
    return {
      kind: "retry",
      reason: redact(`HTTP ${status} from ${origin}: ${detail}`),
      status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  return {
    kind: "fatal",
    reason: redact(`unexpected HTTP ${status} from ${origin}: ${detail}`),
    action: "Check `api_host`: it must be Mixpanel's ingestion API, or a proxy that forwards POST /groups.",
    status,
  };
}

function invalid(reason: string, status: number): SendOutcome {
  return { kind: "invalid", reason: redact(reason), status };
}

/** `failed_records` as rejected records, or `undefined` when absent or unusable. */
function failedRecords(json: unknown): RejectedRecord[] | undefined {
  if (!isObject(json) || !Array.isArray(json.failed_records)) return undefined;
  const rejected: RejectedRecord[] = [];
  for (const record of json.failed_records as unknown[]) {
    if (!isObject(record) || typeof record.index !== "number") continue;
    const message = record.message === undefined ? "refused" : stringify(record.message);
    const field = typeof record.field === "string" && record.field !== "" ? ` (field ${record.field})` : "";
    rejected.push({ index: record.index, reason: redact(`Mixpanel refused the update: ${message}${field}`) });
  }
  return rejected.length > 0 ? rejected : undefined;
}

function errorDetail(json: unknown, body: string): string {
  if (isObject(json) && typeof json.error === "string" && json.error !== "") return json.error;
  return snippet(body);
}

function snippet(body: string): string {
  const text = body.trim().replace(/\s+/g, " ");
  if (text === "") return "(empty body)";
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function stringify(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
