/**
 * Reads PostHog's answers into outcomes. Pure, so every documented shape is unit tested.
 * - Capture (`POST /batch/`), from PostHog's Rust capture service (`rust/capture/src/api.rs`): 200 `{"status":1}`;
 *   400 with a plain-text reason (undecodable body, empty batch, missing event name or distinct_id, event too big);
 *   401 for a missing, inconsistent or invalid project API key (a personal key is refused too); 413 over the body
 *   limit; 429 billing or rate limit; 503 "transient error, please retry". No per-event detail: a 400 refuses the
 *   whole batch, so the delivery layer bisects it.
 * - REST API (`/api/projects/:id/…`, Django REST framework): JSON errors `{"type","code","detail","attr"}`; 401 a bad
 *   personal key, 403 a missing scope or project; 404 not found; 429 throttled (480/min, 4800/h) with Retry-After.
 *   `delete_property` answers 400 "Property 'x' does not exist on this group." when it is already gone
 *   (`ee/clickhouse/views/groups.py`).
 */
import { parseRetryAfter } from "../../src/delivery/retry-after.js";
import type { SendOutcome } from "../../src/destination.js";
import { redact } from "../../src/secret.js";
import { errorDetail, isObject, parseJson, snippet } from "../shared/http.js";

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly retryAfter?: string | readonly string[] | undefined;
  /** Origin that answered, for messages. */
  readonly origin: string;
}

const PROJECT_KEY_ACTION =
  "Set `project_api_key` to the project API key (phc_…, Project Settings → Project API key) and `host` to the project's region (us or eu) or your instance's URL; a personal key (phx_…) does not work for ingestion.";
const PERSONAL_KEY_ACTION =
  "Set `personal_api_key` to a personal API key (phx_…) of a member of the project, with the group:read and group:write scopes, and `project_id` to the project's numeric ID; or remove personal_api_key to skip unsets.";

/** The outcome of one `POST /batch/`. */
export function classifyCaptureResponse(answer: HttpAnswer, now = Date.now()): SendOutcome {
  const { status, body, origin } = answer;
  const detail = errorDetail(body);
  if (status >= 200 && status < 300) {
    const json = parseJson(body);
    if (isObject(json) && json.status === 1) return { kind: "ok" };
    return {
      kind: "fatal",
      reason: redact(`unexpected answer from ${origin}: HTTP ${status} ${snippet(body)}`),
      action: "Check `host`: it must be PostHog's ingestion host, or a proxy that forwards /batch/ unchanged.",
      status,
    };
  }
  if (status === 400)
    return { kind: "invalid", reason: redact(`PostHog refused the events (HTTP 400): ${detail}`), status };
  if (status === 401 || status === 403) {
    return {
      kind: "fatal",
      reason: redact(`PostHog refused the project API key (HTTP ${status}: ${detail})`),
      action: PROJECT_KEY_ACTION,
      status,
    };
  }
  if (status === 413) return { kind: "too-large", status };
  if (status === 408 || status === 429 || status >= 500) return retry(answer, detail, now);
  return {
    kind: "fatal",
    reason: redact(`unexpected HTTP ${status} from ${origin}: ${detail}`),
    action: "Check `host`: it must be PostHog's ingestion host, or a proxy that forwards POST /batch/.",
    status,
  };
}

/** The outcome of one REST API call: its JSON, "gone" (nothing there to change), refused (400), or retry/fatal. */
export type ApiOutcome =
  | { readonly kind: "ok"; readonly json: unknown }
  | { readonly kind: "gone"; readonly detail: string }
  | { readonly kind: "refused"; readonly reason: string; readonly status: number }
  | Extract<SendOutcome, { kind: "retry" | "fatal" }>;

/** The outcome of one REST API call. `what` names the call for messages, e.g. `delete_property`. */
export function classifyApiResponse(answer: HttpAnswer, what: string, now = Date.now()): ApiOutcome {
  const { status, body, origin } = answer;
  const detail = errorDetail(body);
  if (status >= 200 && status < 300) return { kind: "ok", json: parseJson(body) };
  if (status === 404) return { kind: "gone", detail };
  if (status === 400) {
    // The property is already absent: the goal of an unset holds.
    if (/does not exist on this group/i.test(detail)) return { kind: "gone", detail };
    return { kind: "refused", reason: redact(`PostHog refused ${what} (HTTP 400): ${detail}`), status };
  }
  if (status === 401 || status === 403) {
    return {
      kind: "fatal",
      reason: redact(`PostHog refused the personal API key for ${what} (HTTP ${status}: ${detail})`),
      action: PERSONAL_KEY_ACTION,
      status,
    };
  }
  if (status === 408 || status === 429 || status >= 500) return retry(answer, `${what}: ${detail}`, now);
  return {
    kind: "fatal",
    reason: redact(`unexpected HTTP ${status} from ${origin} for ${what}: ${detail}`),
    action: "Check `app_host` (or `host`): it must be the PostHog app host that serves /api/projects/.",
    status,
  };
}

function retry(answer: HttpAnswer, detail: string, now: number): SendOutcome & { kind: "retry" } {
  const retryAfterMs = parseRetryAfter(answer.retryAfter, now);
  return {
    kind: "retry",
    reason: redact(`HTTP ${answer.status} from ${answer.origin}: ${detail}`),
    status: answer.status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  };
}
