/**
 * Reading group profiles back from a destination, for `groupsync verify`. A reader makes one attempt at one
 * request; retries, Retry-After and the spacing a rate limit needs live in src/verify.
 */
import type { GroupRef, JsonValue } from "./model.js";

/** The outcome of one attempt at reading some profiles. */
export type ReadOutcome =
  /** One entry per ref asked for, in order: its properties, or undefined when the destination has no such profile. */
  | { readonly kind: "ok"; readonly profiles: readonly (Readonly<Record<string, JsonValue>> | undefined)[] }
  /** A transient failure (429, 5xx, network): try again after `retryAfterMs` if given, else back off. */
  | { readonly kind: "retry"; readonly reason: string; readonly retryAfterMs?: number }
  /** Retrying cannot help (bad credentials, unknown project). */
  | { readonly kind: "fatal"; readonly reason: string; readonly action: string };

export interface ProfileReader {
  /** Short name for messages, e.g. `mixpanel`. */
  readonly name: string;
  /** Most profiles one request reads. */
  readonly batchSize: number;
  /** Least time between the starts of two requests (the destination's rate limit), in ms. */
  readonly minIntervalMs: number;
  /** What limits the pace, for the estimate verify prints, e.g. "Query API: 60 queries per hour". */
  readonly rateNote: string;
  /** One attempt at reading the profiles of `refs` (at most `batchSize`). Never throws for HTTP failures. */
  read(refs: readonly GroupRef[], options?: { readonly signal?: AbortSignal }): Promise<ReadOutcome>;
  close(): Promise<void>;
}
