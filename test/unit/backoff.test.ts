import assert from "node:assert/strict";
import { test } from "node:test";
import { MIXPANEL_BACKOFF, retryDelay, sleep } from "../../src/delivery/backoff.js";
import { parseRetryAfter } from "../../src/delivery/retry-after.js";

// Mixpanel: start at 2 s, double to 60 s, 1–5 s jitter; Retry-After exactly, capped at 300 s.
const delayCases: { retry: number; retryAfterMs?: number; random: number; ms: number }[] = [
  { retry: 1, random: 0, ms: 2000 + 1000 },
  { retry: 1, random: 0.5, ms: 2000 + 3000 },
  { retry: 2, random: 0, ms: 4000 + 1000 },
  { retry: 5, random: 0, ms: 32_000 + 1000 },
  { retry: 6, random: 0, ms: 60_000 + 1000 },
  { retry: 40, random: 0.999_999, ms: 60_000 + 5000 },
  { retry: 3, retryAfterMs: 7000, random: 0.9, ms: 7000 },
  { retry: 1, retryAfterMs: 0, random: 0.9, ms: 0 },
  { retry: 1, retryAfterMs: 3_600_000, random: 0, ms: 300_000 },
];
for (const c of delayCases) {
  test(`retryDelay(retry ${c.retry}, Retry-After ${c.retryAfterMs ?? "none"}, random ${c.random}) = ${c.ms}`, () => {
    assert.equal(
      retryDelay(c.retry, c.retryAfterMs, MIXPANEL_BACKOFF, () => c.random),
      c.ms,
    );
  });
}

const now = Date.parse("2026-01-01T00:00:00Z");
const headerCases: { value: string | string[] | undefined; ms: number | undefined }[] = [
  { value: undefined, ms: undefined },
  { value: "", ms: undefined },
  { value: "0", ms: 0 },
  { value: "3", ms: 3000 },
  { value: " 120 ", ms: 120_000 },
  { value: "1.5", ms: 1500 },
  { value: ["2", "9"], ms: 2000 },
  { value: "Thu, 01 Jan 2026 00:00:30 GMT", ms: 30_000 },
  { value: "Wed, 31 Dec 2025 23:59:00 GMT", ms: 0 },
  { value: "-5", ms: undefined },
  { value: "soon", ms: undefined },
];
for (const c of headerCases) {
  test(`parseRetryAfter(${JSON.stringify(c.value)}) = ${c.ms}`, () => {
    assert.equal(parseRetryAfter(c.value, now), c.ms);
  });
}

test("sleep wakes early when a signal aborts, and never rejects", async () => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 10);
  await sleep(5000, [undefined, controller.signal]);
  assert.ok(Date.now() - started < 1000);
  await sleep(5000, [controller.signal]); // already aborted: at once
  assert.ok(Date.now() - started < 1000);
});
