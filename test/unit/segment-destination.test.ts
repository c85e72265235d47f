/** Segment: group calls, messageIds, the user a call is attributed to, limits, and every answer read. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { segmentDestinationSchema } from "../../connectors/segment/config.js";
import { createSegmentDestination, MAX_MESSAGE_BYTES } from "../../connectors/segment/destination.js";
import { classifySegmentResponse, parseRateLimitReset } from "../../connectors/segment/response.js";
import { registerSecretValue } from "../../src/secret.js";

const now = Date.parse("2026-01-01T00:00:00Z");
const origin = "https://api.segment.io";
registerSecretValue("seg_write_key_4321");

const config = (extra: Record<string, unknown> = {}) =>
  segmentDestinationSchema.parse({ type: "segment", write_key: "seg_write_key_4321", ...extra });
const ref = { groupKey: "company", groupId: "acme", userId: "u1" };

describe("encode", () => {
  const destination = createSegmentDestination(config({ anonymous_id: "groupsync" }), {
    sync: "s",
    messageIdSalt: "t",
  });
  const parse = (json: string) => JSON.parse(json) as Record<string, unknown>;

  test("a set is a group call: groupId from the Group ID, traits from the properties, userId from the row", () => {
    const message = parse(
      destination.encode({ kind: "set", ref, properties: { name: "Acme", employees: 50 } }).json.toString(),
    );
    assert.equal(message.type, "group");
    assert.equal(message.groupId, "acme");
    assert.equal(message.userId, "u1");
    assert.equal(message.anonymousId, undefined);
    assert.deepEqual(message.traits, { name: "Acme", employees: 50 });
    assert.match(String(message.messageId), /^groupsync-[0-9a-f]{40}$/);
    assert.ok(String(message.messageId).length < 100);
  });
  test("an unset sends the traits as null (Segment overwrites with null)", () => {
    const message = parse(destination.encode({ kind: "unset", ref, names: ["plan", "industry"] }).json.toString());
    assert.deepEqual(message.traits, { plan: null, industry: null });
  });
  test("without a userId, the fixed anonymousId is used", () => {
    const message = parse(
      destination
        .encode({ kind: "set", ref: { groupKey: "company", groupId: "acme" }, properties: { a: 1 } })
        .json.toString(),
    );
    assert.equal(message.anonymousId, "groupsync");
    assert.equal(message.userId, undefined);
  });
  test("without a userId nor an anonymous_id, the operation is refused with a reason", () => {
    const bare = createSegmentDestination(config(), { sync: "s" });
    assert.throws(
      () => bare.encode({ kind: "set", ref: { groupKey: "company", groupId: "acme" }, properties: { a: 1 } }),
      /no userId.*anonymous_id/,
    );
  });
  test("messageId: the same change gives the same id; another change, sync or run another", () => {
    const set = { kind: "set" as const, ref, properties: { plan: "pro" } };
    const id = (json: string) => parse(json).messageId;
    const first = id(destination.encode(set).json.toString());
    assert.equal(
      id(destination.encode(set).json.toString()),
      first,
      "a retry or re-encode of the same change: same id",
    );
    assert.notEqual(id(destination.encode({ ...set, properties: { plan: "team" } }).json.toString()), first);
    assert.notEqual(id(destination.encode({ ...set, ref: { ...ref, groupId: "globex" } }).json.toString()), first);
    const otherSync = createSegmentDestination(config({ anonymous_id: "groupsync" }), {
      sync: "s2",
      messageIdSalt: "t",
    });
    assert.notEqual(id(otherSync.encode(set).json.toString()), first);
    const sameRunSalt = createSegmentDestination(config({ anonymous_id: "groupsync" }), {
      sync: "s",
      messageIdSalt: "t",
    });
    assert.equal(
      id(sameRunSalt.encode(set).json.toString()),
      first,
      "deterministic: a pure function of salt, sync and change",
    );
    const nextRun = createSegmentDestination(config({ anonymous_id: "groupsync" }), { sync: "s" });
    assert.notEqual(
      id(nextRun.encode(set).json.toString()),
      first,
      "a later run's identical change is not dropped as a duplicate",
    );
  });
  test("delete is unsupported; unset too when unset_as_null is false", () => {
    assert.match(destination.unsupported?.delete ?? "", /no call that deletes a group/);
    assert.equal(destination.unsupported?.unset, undefined);
    const keep = createSegmentDestination(config({ unset_as_null: false, anonymous_id: "a" }), { sync: "s" });
    assert.match(keep.unsupported?.unset ?? "", /unset_as_null/);
  });
  test("limits: 32 KB per message, under 500 KB per batch, batch_size calls", () => {
    assert.equal(destination.limits.maxOperationBytes, 32 * 1024);
    assert.ok(destination.limits.maxBatchBytes < 500 * 1000);
    assert.equal(destination.limits.maxBatchOperations, 100);
    const big = destination.encode({ kind: "set", ref, properties: { blob: "x".repeat(MAX_MESSAGE_BYTES) } });
    assert.ok(big.bytes > destination.limits.maxOperationBytes, "the delivery layer rejects it with its key");
  });
});

describe("classifySegmentResponse", () => {
  const answer = (status: number, body: string, headers: { retryAfter?: string; rateLimitReset?: string } = {}) =>
    classifySegmentResponse({ status, body, origin, ...headers }, now);
  test("200 is ok", () => assert.deepEqual(answer(200, '{"success":true}'), { kind: "ok" }));
  test("400 refuses the batch with the detail: split to isolate", () => {
    const outcome = answer(400, '{"success":false,"message":"event is over 32KB"}');
    assert.equal(outcome.kind, "invalid");
    assert.match(outcome.kind === "invalid" ? outcome.reason : "", /over 32KB/);
  });
  test("401 is fatal, about the write key", () => {
    const outcome = answer(401, "invalid write key seg_write_key_4321");
    assert.equal(outcome.kind, "fatal");
    assert.match(outcome.kind === "fatal" ? outcome.action : "", /write_key/);
    assert.doesNotMatch(JSON.stringify(outcome), /seg_write_key_4321/);
  });
  test("413 splits", () => assert.equal(answer(413, "").kind, "too-large"));
  test("429 waits Retry-After, else X-RateLimit-Reset", () => {
    const a = answer(429, "", { retryAfter: "2" });
    assert.equal(a.kind === "retry" ? a.retryAfterMs : -1, 2000);
    const b = answer(429, "", { rateLimitReset: "5" });
    assert.equal(b.kind === "retry" ? b.retryAfterMs : -1, 5000);
  });
  test("5xx retry, except 501 and 505", () => {
    assert.equal(answer(500, "").kind, "retry");
    assert.equal(answer(503, "").kind, "retry");
    assert.equal(answer(501, "").kind, "fatal");
    assert.equal(answer(505, "").kind, "fatal");
  });
  test("X-RateLimit-Reset: seconds, or an epoch time", () => {
    assert.equal(parseRateLimitReset("3", now), 3000);
    assert.equal(parseRateLimitReset(String(now / 1000 + 10), now), 10_000);
    assert.equal(parseRateLimitReset(String(now + 4000), now), 4000);
    assert.equal(parseRateLimitReset("soon", now), undefined);
  });
});
