/** Network failures are named by undici's error codes, without loading undici (connectors/shared/http.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { errors } from "undici";
import { networkReason } from "../../connectors/shared/http.js";

test("undici's timeouts and other network errors each get their own reason", () => {
  const origin = "https://api.mixpanel.com";
  assert.equal(
    networkReason(new errors.HeadersTimeoutError(), origin, 5000),
    "no complete answer from https://api.mixpanel.com within 5000 ms",
  );
  assert.equal(
    networkReason(new errors.BodyTimeoutError(), origin, 5000),
    "no complete answer from https://api.mixpanel.com within 5000 ms",
  );
  assert.equal(
    networkReason(new errors.ConnectTimeoutError(), origin, 5000),
    "could not connect to https://api.mixpanel.com within 5000 ms",
  );
  const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
  assert.equal(
    networkReason(reset, origin, 5000),
    "network error talking to https://api.mixpanel.com: ECONNRESET socket hang up",
  );
});
