/**
 * The interface every destination implements (Mixpanel, PostHog, Segment). A destination encodes
 * operations and makes one attempt at sending a batch; retries, backoff, splitting and concurrency live in
 * `src/delivery`, the same for every destination.
 */
import type { GroupOperation, OperationKind } from "./model.js";

/** Limits the delivery layer respects when it builds batches. */
export interface DestinationLimits {
  /** Most operations in one request. */
  readonly maxBatchOperations: number;
  /** Most bytes in one request body. */
  readonly maxBatchBytes: number;
  /** Most bytes one encoded operation may take; a larger one is rejected with its key. */
  readonly maxOperationBytes: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  /**
   * Strings longer than this many characters are cut short by the destination (Mixpanel: 255). They are sent as
   * they are, and the run warns once per property, so that nobody is surprised by a truncated value.
   */
  readonly maxStringLength?: number;
}

/**
 * An operation encoded for the wire, with its size, ready to be batched. It lives until the operation is
 * acknowledged (a retry sends it again), so it holds only what `send` needs: the delivery layer and the engine keep
 * no reference to the operation itself, which can then die young instead of surviving scavenges for the length of
 * a request. A destination whose `send` needs more (PostHog: the operation) returns a type of its own.
 */
export interface EncodedOperation {
  /**
   * The operation's JSON text as it will appear in the request body, as UTF-8 bytes: held as bytes (outside the
   * JavaScript heap) rather than a string, the text itself dies young instead of being copied by every scavenge
   * until the acknowledgement.
   */
  readonly json: Buffer;
  /** `json.length`. */
  readonly bytes: number;
}

/** One record of a batch the destination refused, by index into the batch. */
export interface RejectedRecord {
  readonly index: number;
  readonly reason: string;
}

/** The outcome of one attempt at sending one batch. */
export type SendOutcome =
  /** Every operation was accepted. */
  | { readonly kind: "ok" }
  /**
   * Some records were refused, with per-record details. The others may or may not have been applied: the delivery
   * layer sends them again (operations are idempotent).
   */
  | { readonly kind: "rejected-records"; readonly rejected: readonly RejectedRecord[]; readonly status: number }
  /** The batch was refused as a whole with no per-record detail (HTTP 400): split it to isolate the bad records. */
  | { readonly kind: "invalid"; readonly reason: string; readonly status: number }
  /** The body was too large (HTTP 413): split it. */
  | { readonly kind: "too-large"; readonly status: number }
  /** A transient failure (429, 5xx, network, timeout): retry after `retryAfterMs` if given, else back off. */
  | { readonly kind: "retry"; readonly reason: string; readonly status?: number; readonly retryAfterMs?: number }
  /** Retrying cannot help (401/403: bad credentials): stop the run. */
  | { readonly kind: "fatal"; readonly reason: string; readonly action: string; readonly status: number };

export interface SendOptions {
  readonly signal?: AbortSignal;
}

/** A destination adapter; `E` is what its `encode` returns and its `send` takes back. */
export interface Destination<E extends EncodedOperation = EncodedOperation> {
  /** Short name for logs, e.g. `mixpanel`. */
  readonly name: string;
  readonly limits: DestinationLimits;
  /**
   * Operation kinds this destination cannot apply, each with the reason and what to do (e.g. PostHog cannot unset a
   * group property without a personal API key). The delivery layer never encodes or sends them: it reports them as
   * skipped. A skipped operation is not acknowledged, so the engine's state still holds the old value and the
   * operation is planned again next run; the run summary counts it under `skipped`.
   */
  readonly unsupported?: Readonly<Partial<Record<OperationKind, string>>>;
  /** Encodes one operation; throws nothing: an operation too large is caught by the delivery layer by size. */
  encode(operation: GroupOperation): E;
  /** One attempt at one batch. Never throws for HTTP or network failures: it classifies them. */
  send(batch: readonly E[], options?: SendOptions): Promise<SendOutcome>;
  /** Closes connections. */
  close(): Promise<void>;
}
