/** PostHog: how operations are encoded, which kinds are unsupported, and how every documented answer is read. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { posthogDestinationSchema } from "../../connectors/posthog/config.js";
import { createPostHogDestination } from "../../connectors/posthog/destination.js";
import { classifyApiResponse, classifyCaptureResponse } from "../../connectors/posthog/response.js";
import { registerSecretValue } from "../../src/secret.js";

const origin = "https://us.i.posthog.com";
const now = Date.parse("2026-01-01T00:00:00Z");
registerSecretValue("phc_secret_key_1234");

const config = (extra: Record<string, unknown> = {}) =>
  posthogDestinationSchema.parse({ type: "posthog", project_api_key: "phc_secret_key_1234", ...extra });
const ref = { groupKey: "company", groupId: "acme" };

describe("encode", () => {
  const destination = createPostHogDestination(config());
  test("a set is a $groupidentify event: $group_type from the Group Key, $group_key from the Group ID", () => {
    const encoded = destination.encode({ kind: "set", ref, properties: { name: "Acme", seats: 5 } });
    assert.deepEqual(JSON.parse(encoded.json.toString()), {
      event: "$groupidentify",
      distinct_id: "$company_acme",
      properties: {
        $group_type: "company",
        $group_key: "acme",
        $group_set: { name: "Acme", seats: 5 },
        $lib: "groupsync",
      },
    });
    assert.equal(encoded.bytes, Buffer.byteLength(encoded.json.toString()));
    assert.doesNotMatch(encoded.json.toString(), /phc_/, "the key travels once per request, not per event");
  });
  test("an unset stands for its delete_property calls", () => {
    const encoded = destination.encode({ kind: "unset", ref, names: ["plan", "seats"] });
    assert.deepEqual(JSON.parse(encoded.json.toString()), {
      $group_type: "company",
      $group_key: "acme",
      $unset: ["plan", "seats"],
    });
  });
  test("a Group ID over 400 characters is refused with a reason (ingestion would drop it after a 200)", () => {
    assert.throws(
      () => destination.encode({ kind: "set", ref: { ...ref, groupId: "x".repeat(401) }, properties: { a: 1 } }),
      /401 characters; PostHog drops groups over 400/,
    );
  });
  test("without a personal API key, unsets and deletes are unsupported, with what to do", () => {
    assert.match(destination.unsupported?.unset ?? "", /personal_api_key/);
    assert.match(destination.unsupported?.delete ?? "", /on_delete: unset/);
    assert.equal(destination.unsupported?.set, undefined);
  });
  test("with a personal API key and project ID, unsets are supported; deletes never are", () => {
    const withKey = createPostHogDestination(config({ personal_api_key: "phx_personal_5678", project_id: 42 }));
    assert.equal(withKey.unsupported?.unset, undefined);
    assert.ok(withKey.unsupported?.delete);
  });
});

describe("config", () => {
  test("personal_api_key needs project_id", () => {
    const result = posthogDestinationSchema.safeParse({
      type: "posthog",
      project_api_key: "phc_x",
      personal_api_key: "phx_y",
    });
    assert.equal(result.success, false);
    assert.match(JSON.stringify(result.error?.issues), /project_id/);
  });
  test("host is us, eu or a URL; plain http to a remote host needs allow_insecure", () => {
    assert.equal(config({ host: "eu" }).host, "eu");
    assert.equal(
      posthogDestinationSchema.safeParse({ type: "posthog", project_api_key: "k", host: "mars" }).success,
      false,
    );
    const insecure = posthogDestinationSchema.safeParse({
      type: "posthog",
      project_api_key: "k",
      host: "http://ph.example.com",
    });
    assert.equal(insecure.success, false);
    assert.equal(config({ host: "http://ph.example.com", allow_insecure: true }).host, "http://ph.example.com");
  });
});

describe("classifyCaptureResponse", () => {
  const answer = (status: number, body: string, retryAfter?: string) =>
    classifyCaptureResponse({ status, body, origin, ...(retryAfter ? { retryAfter } : {}) }, now);
  test("200 {status: 1} is ok", () => assert.deepEqual(answer(200, '{"status":1}'), { kind: "ok" }));
  test("a 200 that is not PostHog's answer is fatal (a wrong host or proxy)", () => {
    const outcome = answer(200, "<html>hello</html>");
    assert.equal(outcome.kind, "fatal");
  });
  test("400 (plain text) refuses the batch as a whole, with the detail", () => {
    const outcome = answer(400, "event submitted without a distinct_id");
    assert.equal(outcome.kind, "invalid");
    assert.match(outcome.kind === "invalid" ? outcome.reason : "", /without a distinct_id/);
  });
  test("401 is fatal, names the key and never shows it", () => {
    const outcome = answer(401, "API key is not valid: phc_secret_key_1234");
    assert.equal(outcome.kind, "fatal");
    if (outcome.kind !== "fatal") return;
    assert.match(outcome.action, /project_api_key/);
    assert.doesNotMatch(outcome.reason, /phc_secret_key_1234/);
  });
  test("413 is too large (split)", () =>
    assert.deepEqual(answer(413, "length limit exceeded"), { kind: "too-large", status: 413 }));
  test("429 with Retry-After retries after it", () => {
    assert.deepEqual(answer(429, "rate limited", "7"), {
      kind: "retry",
      reason: `HTTP 429 from ${origin}: rate limited`,
      status: 429,
      retryAfterMs: 7000,
    });
  });
  test("503 and 500 retry", () => {
    assert.equal(answer(503, "transient error, please retry").kind, "retry");
    assert.equal(answer(500, "").kind, "retry");
  });
  test("an unexpected status is fatal", () => assert.equal(answer(404, "nope").kind, "fatal"));
});

describe("classifyApiResponse", () => {
  const answer = (status: number, body: unknown, retryAfter?: string) =>
    classifyApiResponse(
      {
        status,
        body: typeof body === "string" ? body : JSON.stringify(body),
        origin,
        ...(retryAfter ? { retryAfter } : {}),
      },
      "delete_property",
      now,
    );
  test("200 returns the JSON", () => assert.deepEqual(answer(200, [{ a: 1 }]), { kind: "ok", json: [{ a: 1 }] }));
  test("a property that does not exist is gone: the unset's goal holds", () => {
    const outcome = answer(400, {
      type: "validation_error",
      code: "invalid_input",
      detail: "Property 'plan' does not exist on this group.",
      attr: "$unset",
    });
    assert.equal(outcome.kind, "gone");
  });
  test("404 (no such group) is gone", () => assert.equal(answer(404, { detail: "Not found." }).kind, "gone"));
  test("another 400 is a refusal with DRF's detail", () => {
    const outcome = answer(400, { type: "validation_error", detail: "This field is required.", attr: "$unset" });
    assert.equal(outcome.kind, "refused");
    assert.match(outcome.kind === "refused" ? outcome.reason : "", /This field is required/);
  });
  test("401 and 403 are fatal and point at the personal key", () => {
    for (const status of [401, 403]) {
      const outcome = answer(status, { detail: "API key missing required scope 'group:write'" });
      assert.equal(outcome.kind, "fatal");
      assert.match(outcome.kind === "fatal" ? outcome.action : "", /personal_api_key/);
    }
  });
  test("429 (DRF throttle, 480/min) retries after Retry-After", () => {
    const outcome = answer(429, { detail: "Request was throttled." }, "3");
    assert.equal(outcome.kind, "retry");
    assert.equal(outcome.kind === "retry" ? outcome.retryAfterMs : 0, 3000);
  });
});
