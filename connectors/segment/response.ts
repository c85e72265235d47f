/**
 * Reads the Tracking API's answer to one `POST /v1/batch` into a `SendOutcome`. Pure, so every shape is unit tested.
 * What the docs say (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/, "Errors"):
 * 200 for every request except a payload over the limits (32 KB per event, 500 KB per batch) or invalid JSON, which
 * get 400; 429 with `Retry-After` / `X-RateLimit-Reset` when rate limited. A 200 means "accepted", not "valid": an
 * event without userId or anonymousId is dropped later and shows only in the Segment debugger. The body of errors
 * and the answer to a bad write key are not documented: 401/403 are read as a refused key, as analytics-node does.
 */
import { parseRetryAfter } from "../../src/delivery/retry-after.js";
import type { SendOutcome } from "../../src/destination.js";
import { redact } from "../../src/secret.js";
import { errorDetail } from "../shared/http.js";

export interface SegmentResponse {
  readonly status: number;
  readonly body: string;
  readonly retryAfter?: string | readonly string[] | undefined;
  readonly rateLimitReset?: string | readonly string[] | undefined;
  /** Origin that answered, for messages. */
  readonly origin: string;
}

const WRITE_KEY_ACTION =
  "Set `write_key` to the write key of a Segment HTTP API source (Connections → Sources → the source → Settings → API Keys), and `region` to the workspace's region (us or eu).";

export function classifySegmentResponse(response: SegmentResponse, now = Date.now()): SendOutcome {
  const { status, body, origin } = response;
  const detail = errorDetail(body);
  if (status >= 200 && status < 300) return { kind: "ok" };
  if (status === 400)
    return { kind: "invalid", reason: redact(`Segment refused the batch (HTTP 400): ${detail}`), status };
  if (status === 401 || status === 403) {
    return {
      kind: "fatal",
      reason: redact(`Segment refused the write key (HTTP ${status}: ${detail})`),
      action: WRITE_KEY_ACTION,
      status,
    };
  }
  if (status === 413) return { kind: "too-large", status };
  // analytics-node retries 408, 429 and 5xx except 501 and 505 (not implemented, version not supported).
  if (status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505)) {
    const retryAfterMs = parseRetryAfter(response.retryAfter, now) ?? parseRateLimitReset(response.rateLimitReset, now);
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
    action: "Check `api_host`: it must be Segment's Tracking API, or a proxy that forwards POST /v1/batch unchanged.",
    status,
  };
}

/**
 * `X-RateLimit-Reset`: documented as seconds; older SDKs read it as a time. A small number is a delay in seconds, a
 * large one an epoch time in seconds or milliseconds.
 */
export function parseRateLimitReset(
  value: string | readonly string[] | undefined,
  now = Date.now(),
): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text || !/^\d+(\.\d+)?$/.test(text)) return undefined;
  const number = Number(text);
  if (number < 1e9) return Math.round(number * 1000);
  const at = number < 1e12 ? number * 1000 : number;
  return Math.max(0, Math.round(at - now));
}
