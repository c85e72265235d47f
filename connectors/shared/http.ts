/** Small helpers the HTTP destinations share: reading answers and naming network failures. */

/** undici's error codes (https://undici.nodejs.org/#/docs/api/Errors): recognised without loading undici. */
const code = (error: unknown): unknown => (error instanceof Error ? (error as { code?: unknown }).code : undefined);

/** Network errors, resets and timeouts are all worth a retry; the reason says which it was. */
export function networkReason(error: unknown, origin: string, timeout: number): string {
  if (code(error) === "UND_ERR_HEADERS_TIMEOUT" || code(error) === "UND_ERR_BODY_TIMEOUT") {
    return `no complete answer from ${origin} within ${timeout} ms`;
  }
  if (code(error) === "UND_ERR_CONNECT_TIMEOUT") return `could not connect to ${origin} within ${timeout} ms`;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `network error talking to ${origin}: ${typeof code === "string" ? `${code} ` : ""}${error.message}${cause}`;
  }
  return `network error talking to ${origin}: ${String(error)}`;
}

/** The first 300 characters of a body, whitespace collapsed, for messages. */
export function snippet(body: string): string {
  const text = body.trim().replace(/\s+/g, " ");
  if (text === "") return "(empty body)";
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A message from a JSON error body (`detail`, `message` or `error`, the first that is a non-empty string), else a snippet. */
export function errorDetail(body: string): string {
  const json = parseJson(body);
  if (isObject(json)) {
    for (const key of ["detail", "message", "error"]) {
      const value = json[key];
      if (typeof value === "string" && value !== "") return value;
    }
  }
  return snippet(body);
}
