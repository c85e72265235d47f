/**
 * Parses an HTTP `Retry-After` header (RFC 9110 §10.2.3): delay seconds, or an HTTP date. Destinations use it to
 * fill `retryAfterMs` in a `retry` outcome.
 */

/** Milliseconds to wait, or `undefined` when the header is absent or unreadable. */
export function parseRetryAfter(value: string | readonly string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // Only an HTTP date has letters; Date.parse would read "12" as a year.
  if (!/[A-Za-z]/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
