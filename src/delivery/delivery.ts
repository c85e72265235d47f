/**
 * Delivery: operations in, one outcome per operation out. Batches operations within the destination's limits,
 * keeps up to `concurrency` requests in flight, retries transient failures with backoff, splits refused batches to
 * isolate bad records, and stops the run on a fatal answer. The same for every destination: a destination only
 * encodes operations and classifies one attempt (`src/destination.ts`).
 */
import type { Destination, EncodedOperation, SendOutcome } from "../destination.js";
import { DestinationError } from "../errors.js";
import type { GroupOperation } from "../model.js";
import { type BackoffPolicy, MIXPANEL_BACKOFF, retryDelay, sleep } from "./backoff.js";
import { Batcher, batchBytes, oversizeReason, splitInHalves } from "./batcher.js";
import { SkippedOperations } from "./skipped.js";

/**
 * The fate of one operation. `rejected: true`: the destination refused it (or it was too large to send);
 * `skipped: true`: the destination cannot apply this kind of operation (`Destination.unsupported`), so it was not
 * sent; otherwise it was not sent, or its answer never came, because the run stopped. Only `ok` is an
 * acknowledgement.
 */
export type OperationResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly rejected: boolean; readonly reason: string; readonly skipped?: true };

/**
 * Counters for the run summary. `operations - acknowledged - rejected - skipped.count` operations were not sent (a
 * stop); skipped ones are counted in `Delivery.skipped`.
 */
export interface DeliveryStats {
  /** HTTP attempts, retries included. */
  requests: number;
  /** Re-attempts after a `retry` outcome. */
  retries: number;
  /** Operations enqueued, skipped ones included. */
  operations: number;
  /** Operations the destination accepted. */
  acknowledged: number;
  /** Operations refused: by the destination, or too large to send. */
  rejected: number;
  /** Request body bytes sent, retries included. */
  bytes: number;
}

export interface DeliveryOptions {
  /** Retries of one batch on `retry` outcomes before the run gives up. */
  readonly maxRetries: number;
  /** First backoff delay; default 2000 (Mixpanel: start at 2 s, double to 60 s, 1–5 s jitter). */
  readonly baseDelayMs?: number;
  /** Longest backoff delay, before jitter; default 60000. */
  readonly maxDelayMs?: number;
  /** Random jitter added to each backoff, `[min, max]` ms; default [1000, 5000]. */
  readonly jitterMs?: readonly [number, number];
  /** Cap for a server's `Retry-After`; default 300000. */
  readonly maxRetryAfterMs?: number;
  /** Where retries (warn) and splits (debug) are reported. */
  readonly logger?: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  /** Aborting it stops the run: requests in flight are abandoned, nothing more is sent. */
  readonly signal?: AbortSignal;
  /**
   * Awaited before a batch is first sent (the engine makes its journal durable here, so a crash mid-request never
   * leaves a change the journal does not know about). If it throws, the run stops with that error.
   */
  readonly beforeSend?: () => Promise<void>;
}

/** One enqueued operation until its fate is known. */
interface Item {
  readonly encoded: EncodedOperation;
  readonly bytes: number;
  readonly onResult: (result: OperationResult) => void;
  settled: boolean;
}

const OK: OperationResult = { ok: true };

export class Delivery {
  readonly stats: DeliveryStats = { requests: 0, retries: 0, operations: 0, acknowledged: 0, rejected: 0, bytes: 0 };
  /** Operations the destination cannot apply, never sent (`Destination.unsupported`). */
  readonly skipped = new SkippedOperations();
  readonly #destination: Destination;
  readonly #options: DeliveryOptions;
  readonly #policy: BackoffPolicy;
  readonly #batcher: Batcher<Item>;
  /** Every operation accepted whose fate is not known yet. */
  readonly #unsettled = new Set<Item>();
  /** Operations in a request right now: a stop lets that attempt finish before failing them. */
  readonly #inRequest = new Set<Item>();
  /** Batches being delivered; each holds one concurrency slot until all its operations are settled. */
  readonly #tasks = new Set<Promise<void>>();
  #slotWaiters: (() => void)[] = [];
  /** Properties already warned about for a string longer than the destination keeps. */
  readonly #longStringWarned = new Set<string>();
  /** Set once: why the run stopped. */
  #stopError: unknown;
  #stopped = false;
  /** Aborted on stop, to cut backoff sleeps short. */
  readonly #stopSignal = new AbortController();

  constructor(destination: Destination, options: DeliveryOptions) {
    if (!Number.isInteger(options.maxRetries) || options.maxRetries < 0) {
      throw new RangeError(`maxRetries must be a non-negative integer, got ${options.maxRetries}`);
    }
    this.#destination = destination;
    this.#options = options;
    this.#policy = {
      baseDelayMs: options.baseDelayMs ?? MIXPANEL_BACKOFF.baseDelayMs,
      maxDelayMs: options.maxDelayMs ?? MIXPANEL_BACKOFF.maxDelayMs,
      jitterMs: options.jitterMs ?? MIXPANEL_BACKOFF.jitterMs,
      maxRetryAfterMs: options.maxRetryAfterMs ?? MIXPANEL_BACKOFF.maxRetryAfterMs,
    };
    this.#batcher = new Batcher(destination.limits);
  }

  /**
   * Encodes and buffers one operation; sends a batch when it is full. Returns a promise only when it sent one (it
   * resolves once the batch is under way: it waits, as backpressure, while `destination.limits.concurrency` batches
   * are in flight), so buffering an operation costs no promise. `onResult` is called exactly once per operation,
   * when its fate is known. After a stop it calls `onResult({ ok: false })` and returns a rejected promise.
   */
  enqueue(operation: GroupOperation, onResult: (result: OperationResult) => void): Promise<void> | undefined {
    try {
      this.#checkSignal();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#stopped) {
      this.#report(onResult, { ok: false, rejected: false, reason: this.#unsentReason() });
      return Promise.reject(this.#stopError);
    }
    this.stats.operations++;
    const skip = this.skipped.check(this.#destination, operation);
    if (skip) {
      if (skip.first) {
        this.#options.logger?.warn(
          { destination: this.#destination.name, kind: operation.kind, reason: skip.reason },
          `${this.#destination.name} cannot apply ${operation.kind} operations; they are skipped (counted in the summary) and planned again next run`,
        );
      }
      this.#report(onResult, { ok: false, rejected: false, skipped: true, reason: skip.reason });
      return undefined;
    }
    this.#warnLongStrings(operation);
    let encoded: EncodedOperation;
    try {
      encoded = this.#destination.encode(operation);
    } catch (error) {
      this.stats.rejected++;
      this.#report(onResult, { ok: false, rejected: true, reason: `could not be encoded: ${message(error)}` });
      return undefined;
    }
    const item: Item = { encoded, bytes: encoded.bytes, onResult, settled: false };
    const tooLarge = oversizeReason(encoded.bytes, this.#destination.limits);
    if (tooLarge) {
      this.#reject(item, tooLarge);
      return undefined;
    }
    this.#unsettled.add(item);
    const ready = this.#batcher.add(item);
    return ready.length === 0 ? undefined : this.#dispatchAll(ready);
  }

  async #dispatchAll(batches: readonly Item[][]): Promise<void> {
    for (const batch of batches) await this.#dispatch(batch);
  }

  /**
   * Sends what is buffered and waits for everything in flight. Throws `DestinationError` if the run must stop (a
   * fatal outcome, or a batch that still failed after `maxRetries`); by then every operation not acknowledged has
   * had `onResult({ ok: false })`.
   */
  async flush(): Promise<void> {
    this.#checkSignal();
    for (;;) {
      const rest = this.#stopped ? undefined : this.#batcher.take();
      if (rest) await this.#dispatch(rest);
      if (this.#tasks.size === 0 && (this.#stopped || this.#batcher.size === 0)) break;
      await Promise.all(this.#tasks);
    }
    if (this.#stopped) throw this.#stopError;
  }

  /**
   * Sends the partly filled batch now instead of waiting for it to fill, without waiting for answers. The engine
   * calls it when groups wait for acknowledgements: with sparse changes a batch can take a long time to fill.
   */
  async sendBuffered(): Promise<void> {
    if (this.#stopped) return;
    const rest = this.#batcher.take();
    if (rest) await this.#dispatch(rest);
  }

  /** Starts delivering a batch once a concurrency slot is free. */
  async #dispatch(batch: Item[]): Promise<void> {
    while (this.#tasks.size >= this.#destination.limits.concurrency && !this.#stopped) {
      await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
    }
    // A stop while waiting already failed these operations.
    if (this.#stopped) return;
    const task: Promise<void> = this.#run(batch).finally(() => {
      this.#tasks.delete(task);
      this.#slotWaiters.shift()?.();
    });
    this.#tasks.add(task);
  }

  /** Delivers one batch; never rejects. */
  async #run(batch: Item[]): Promise<void> {
    try {
      if (this.#options.beforeSend) await this.#options.beforeSend();
      await this.#deliver(batch);
    } catch (error) {
      this.#stop(error);
    }
  }

  /** Sends `batch` until every operation in it is settled, retrying, splitting or stopping as outcomes say. */
  async #deliver(batch: Item[]): Promise<void> {
    let items = batch;
    let retries = 0;
    for (;;) {
      this.#checkSignal();
      items = items.filter((item) => !item.settled);
      if (items.length === 0) return;
      if (this.#stopped) return this.#failUnsent(items);
      const outcome = await this.#attempt(items);
      if (outcome.kind === "ok") {
        for (const item of items) this.#settle(item, OK);
        this.stats.acknowledged += items.length;
        return;
      }
      this.#checkSignal();
      if (this.#stopped) return this.#failUnsent(items);
      switch (outcome.kind) {
        case "rejected-records": {
          const reasons = new Map<number, string>();
          for (const { index, reason } of outcome.rejected) {
            if (Number.isInteger(index) && index >= 0 && index < items.length && !reasons.has(index)) {
              reasons.set(index, reason);
            }
          }
          if (reasons.size === 0) {
            // Detail we cannot use: fall back to bisecting.
            return this.#split(items, `HTTP ${outcome.status} with per-record errors for records not in the batch`);
          }
          for (const [index, reason] of reasons) this.#reject(items[index]!, reason);
          this.#options.logger?.debug(
            { destination: this.#destination.name, rejected: reasons.size, resending: items.length - reasons.size },
            "records refused; sending the rest again",
          );
          // The others may or may not have been applied; operations are idempotent, so send them again.
          items = items.filter((_, index) => !reasons.has(index));
          continue;
        }
        case "invalid":
          return this.#split(items, outcome.reason);
        case "too-large":
          return this.#split(
            items,
            `${this.#destination.name} refused a request of ${batchBytes(items)} bytes as too large (HTTP ${outcome.status})`,
          );
        case "retry": {
          if (retries >= this.#options.maxRetries) {
            const attempts = retries + 1;
            this.#stop(
              new DestinationError(
                `${this.#destination.name}: a batch of ${items.length} operations failed ${attempts} ${attempts === 1 ? "attempt" : "attempts"}; last: ${outcome.reason}`,
                {
                  code: "DESTINATION_UNAVAILABLE",
                  action:
                    "The destination kept throttling or failing: check its status and the network, then run again (nothing unacknowledged is lost; it is sent next run).",
                },
              ),
            );
            return this.#failUnsent(items);
          }
          retries++;
          this.stats.retries++;
          const delayMs = retryDelay(retries, outcome.retryAfterMs, this.#policy);
          this.#options.logger?.warn(
            {
              destination: this.#destination.name,
              retry: retries,
              maxRetries: this.#options.maxRetries,
              delayMs,
              status: outcome.status,
              reason: outcome.reason,
            },
            "batch failed; retrying",
          );
          await sleep(delayMs, [this.#stopSignal.signal, this.#options.signal]);
          continue;
        }
        case "fatal":
          this.#stop(
            new DestinationError(`${this.#destination.name}: ${outcome.reason}`, {
              code: "DESTINATION_REFUSED",
              action: outcome.action,
            }),
          );
          return this.#failUnsent(items);
      }
    }
  }

  /** A batch refused as a whole: send each half; a single operation is rejected with `reason`. */
  async #split(items: Item[], reason: string): Promise<void> {
    if (items.length === 1) {
      this.#reject(items[0]!, reason);
      return;
    }
    const [first, second] = splitInHalves(items);
    this.#options.logger?.debug(
      { destination: this.#destination.name, operations: items.length, reason },
      "batch refused; splitting it to isolate the bad records",
    );
    await this.#deliver(first);
    await this.#deliver(second);
  }

  /** One request. A destination that throws despite its contract stops the run. */
  async #attempt(items: readonly Item[]): Promise<SendOutcome> {
    this.stats.requests++;
    this.stats.bytes += batchBytes(items);
    const signal = this.#options.signal;
    for (const item of items) this.#inRequest.add(item);
    try {
      return await this.#destination.send(
        items.map((item) => item.encoded),
        signal ? { signal } : {},
      );
    } catch (error) {
      throw new DestinationError(`${this.#destination.name}: sending failed unexpectedly: ${message(error)}`, {
        code: "DESTINATION_ERROR",
        cause: error,
      });
    } finally {
      for (const item of items) this.#inRequest.delete(item);
    }
  }

  #checkSignal(): void {
    const signal = this.#options.signal;
    if (signal?.aborted && !this.#stopped) {
      this.#stop(new DestinationError("delivery was cancelled", { code: "DELIVERY_CANCELLED", cause: signal.reason }));
    }
  }

  #warnLongStrings(operation: GroupOperation): void {
    const limit = this.#destination.limits.maxStringLength;
    if (limit === undefined || operation.kind !== "set") return;
    const properties = operation.properties;
    // for…in, not Object.entries: this runs for every operation, and entries allocates an array per property.
    for (const name in properties) {
      const value = properties[name];
      if (!Object.hasOwn(properties, name)) continue;
      if (typeof value !== "string" || value.length <= limit || this.#longStringWarned.has(name)) continue;
      this.#longStringWarned.add(name);
      this.#options.logger?.warn(
        { destination: this.#destination.name, property: name, group: operation.ref.groupId, length: value.length },
        `property ${name} of group ${operation.ref.groupId} is ${value.length} characters long; ${this.#destination.name} keeps only the first ${limit} (sent anyway; warned once per property and run)`,
      );
    }
  }

  /** Stops the run: every operation not in a request right now fails at once; later enqueues and flushes throw. */
  #stop(error: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopError = error;
    this.#stopSignal.abort();
    this.#batcher.take();
    // Operations in a request finish that attempt first: an acknowledgement that arrives is still recorded.
    const reason = this.#unsentReason();
    for (const item of [...this.#unsettled]) {
      if (!this.#inRequest.has(item)) this.#settle(item, { ok: false, rejected: false, reason });
    }
    for (const wake of this.#slotWaiters.splice(0)) wake();
  }

  #failUnsent(items: readonly Item[]): void {
    const reason = this.#unsentReason();
    for (const item of items) this.#settle(item, { ok: false, rejected: false, reason });
  }

  #unsentReason(): string {
    return `not sent: the run stopped (${message(this.#stopError)})`;
  }

  #reject(item: Item, reason: string): void {
    if (item.settled) return;
    this.stats.rejected++;
    this.#settle(item, { ok: false, rejected: true, reason });
  }

  #settle(item: Item, result: OperationResult): void {
    if (item.settled) return;
    item.settled = true;
    this.#unsettled.delete(item);
    this.#report(item.onResult, result);
  }

  #report(onResult: (result: OperationResult) => void, result: OperationResult): void {
    try {
      onResult(result);
    } catch (error) {
      // A throwing callback is a bug in the caller: stop and surface it from flush, never as an unhandled rejection.
      this.#stop(error);
    }
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
