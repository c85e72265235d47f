/**
 * How long to wait before retrying a batch. Mixpanel's guidance for 429 and 5xx: "starting with a backoff of 2s and
 * doubling backoff until 60s, with 1-5s of jitter" (https://developer.mixpanel.com/reference/import-events, "Rate
 * Limit"). A `Retry-After` from the server wins, but is capped so a bad header cannot stall a run for hours.
 */

export interface BackoffPolicy {
  /** Delay before the first retry, without jitter. */
  readonly baseDelayMs: number;
  /** Longest delay without jitter. */
  readonly maxDelayMs: number;
  /** Uniform random jitter added to every backed-off delay, `[min, max]` ms. */
  readonly jitterMs: readonly [number, number];
  /** Longest `Retry-After` honoured. */
  readonly maxRetryAfterMs: number;
}

export const MIXPANEL_BACKOFF: BackoffPolicy = {
  baseDelayMs: 2000,
  maxDelayMs: 60_000,
  jitterMs: [1000, 5000],
  maxRetryAfterMs: 300_000,
};

/**
 * The wait before retry number `retry` (1 for the first): exactly `retryAfterMs` (capped) when the server gave one,
 * else `base · 2^(retry-1)` capped at `maxDelayMs`, plus jitter. `random` returns a number in [0, 1).
 */
export function retryDelay(
  retry: number,
  retryAfterMs: number | undefined,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), policy.maxRetryAfterMs);
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const [low, high] = policy.jitterMs;
  return Math.round(exponential + low + (high - low) * random());
}

/** Resolves after `ms`, or as soon as one of the signals aborts; never rejects. */
export function sleep(ms: number, signals: readonly (AbortSignal | undefined)[]): Promise<void> {
  return new Promise((resolve) => {
    const live = signals.filter((signal): signal is AbortSignal => signal !== undefined);
    const done = () => {
      clearTimeout(timer);
      for (const signal of live) signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (live.some((signal) => signal.aborted)) return done();
    for (const signal of live) signal.addEventListener("abort", done, { once: true });
  });
}
