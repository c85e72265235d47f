import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyResponse } from "../../connectors/mixpanel/response.js";
import type { SendOutcome } from "../../src/destination.js";
import { registerSecretValue } from "../../src/secret.js";

const origin = "https://api.mixpanel.com";
const now = Date.parse("2026-01-01T00:00:00Z");
registerSecretValue("tok-secret-9876");

const cases: {
  name: string;
  status: number;
  body: string;
  retryAfter?: string;
  expect: Partial<SendOutcome> & { kind: SendOutcome["kind"] };
  reason?: RegExp;
}[] = [
  { name: "200 with body 1", status: 200, body: "1", expect: { kind: "ok" } },
  { name: "200 verbose success", status: 200, body: '{"error":null,"status":1}', expect: { kind: "ok" } },
  {
    name: "200 with body 0",
    status: 200,
    body: "0",
    expect: { kind: "invalid", status: 200 },
    reason: /none of the updates/,
  },
  {
    name: "200 verbose status 0",
    status: 200,
    body: '{"error":"bad $set","status":0}',
    expect: { kind: "invalid" },
    reason: /bad \$set/,
  },
  {
    name: "200 with a non-null error",
    status: 200,
    body: '{"error":"x","status":1}',
    expect: { kind: "invalid" },
    reason: /x/,
  },
  {
    name: "200 with an unknown body",
    status: 200,
    body: "<html>proxy</html>",
    expect: { kind: "fatal" },
    reason: /unexpected answer.*<html>/,
  },
  {
    name: "400 with failed_records",
    status: 400,
    body: '{"code":400,"error":"some data points in the request failed validation","failed_records":[{"index":2,"$group_id":"g","field":"$set","message":"bad value"}],"num_records_imported":3,"status":"Bad Request"}',
    expect: {
      kind: "rejected-records",
      status: 400,
      rejected: [{ index: 2, reason: "Mixpanel refused the update: bad value (field $set)" }],
    },
  },
  {
    name: "400 without detail",
    status: 400,
    body: '{"error":"Groups API error: $group_id missing","status":0}',
    expect: { kind: "invalid", status: 400 },
    reason: /\$group_id missing/,
  },
  {
    name: "400 with an empty failed_records",
    status: 400,
    body: '{"error":"e","failed_records":[]}',
    expect: { kind: "invalid" },
  },
  {
    name: "401",
    status: 401,
    body: '{"error":"Invalid token","status":"error"}',
    expect: { kind: "fatal", status: 401 },
    reason: /project token.*Invalid token.*check project_token/,
  },
  {
    name: "403 never echoes a known secret",
    status: 403,
    body: '{"error":"token tok-secret-9876 forbidden"}',
    expect: { kind: "fatal" },
    reason: /token \*\*\* forbidden/,
  },
  { name: "413", status: 413, body: "{}", expect: { kind: "too-large", status: 413 } },
  {
    name: "429 with delta seconds",
    status: 429,
    body: "{}",
    retryAfter: "7",
    expect: { kind: "retry", status: 429, retryAfterMs: 7000 },
  },
  {
    name: "503 with an HTTP date",
    status: 503,
    body: "",
    retryAfter: "Thu, 01 Jan 2026 00:00:04 GMT",
    expect: { kind: "retry", retryAfterMs: 4000 },
  },
  {
    name: "500 without Retry-After",
    status: 500,
    body: "oops",
    expect: { kind: "retry", status: 500 },
    reason: /HTTP 500.*oops/,
  },
  { name: "408", status: 408, body: "", expect: { kind: "retry" } },
  {
    name: "404 is fatal and points at api_host",
    status: 404,
    body: "Not Found",
    expect: { kind: "fatal", status: 404 },
    reason: /unexpected HTTP 404/,
  },
];

for (const c of cases) {
  test(`classifyResponse: ${c.name}`, () => {
    const outcome = classifyResponse({ status: c.status, body: c.body, retryAfter: c.retryAfter, origin }, now);
    for (const [key, value] of Object.entries(c.expect)) {
      assert.deepEqual((outcome as Record<string, unknown>)[key], value, key);
    }
    if (c.expect.kind === "retry" && !("retryAfterMs" in c.expect)) assert.ok(!("retryAfterMs" in outcome));
    if (c.reason) assert.match("reason" in outcome ? outcome.reason : "", c.reason);
    if (outcome.kind === "fatal") {
      assert.match(outcome.action, c.status === 401 || c.status === 403 ? /project_token/ : /api_host/);
    }
  });
}
