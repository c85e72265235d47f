/**
 * The Segment destination: every change of a group is one `group` call, sent through the Tracking API's batch
 * endpoint (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#batch):
 * `POST {host}/v1/batch`, HTTP Basic auth with the write key as user name and an empty password,
 * `{"batch": [{"type": "group", "groupId", "userId" | "anonymousId", "traits", "messageId"}], "sentAt"}`.
 * Segment merges traits (an absent trait keeps its value) and overwrites a trait sent as `null`, so an unset is a
 * group call with `null` traits; it has no call that deletes a group. Retries, backoff and splitting live in
 * `src/delivery`.
 */
import { createHash, randomBytes } from "node:crypto";
import { Pool } from "undici";
import { jsonArrayBody } from "../../src/delivery/batcher.js";
import type { Destination, EncodedOperation, SendOptions, SendOutcome } from "../../src/destination.js";
import type { GroupOperation, JsonValue, OperationKind } from "../../src/model.js";
import { redact } from "../../src/secret.js";
import { networkReason } from "../shared/http.js";
import { SEGMENT_HOSTS, type SegmentDestinationConfig } from "./config.js";
import { classifySegmentResponse } from "./response.js";

/** "each batched event needs to be less than 32KB" (analytics-node checks `> 32 * 1024`). */
export const MAX_MESSAGE_BYTES = 32 * 1024;
/** "The batch API endpoint accepts a maximum of 500KB per request"; analytics-node keeps to 480 KB for padding. */
export const MAX_BATCH_BYTES = 480 * 1024;
/** Segment keeps messageIds it de-duplicates on "unique and < 100 chars". */
const MESSAGE_ID_HEX = 40;

/** Refused by `validate` for this destination (mapping `op: set_once` / `op: union`); never planned. */
const LIST_OPS_UNSUPPORTED = {
  set_once: "Segment has no set-once for group properties; use op: set",
  union: "Segment cannot add items to a list property; use op: set",
  remove: "Segment cannot remove one item from a list property; use op: set",
} as const;
const DELETE_UNSUPPORTED =
  "Segment's Tracking API has no call that deletes a group; use on_delete: unset to send its traits as null, or on_delete: ignore";
const UNSET_SKIPPED =
  "unset_as_null is false: a trait that became empty keeps its old value in Segment; set unset_as_null: true to send it as null";

export interface SegmentDestinationOptions {
  /** The sync's name: part of every messageId, so two syncs never share one. */
  readonly sync: string;
  /**
   * Part of every messageId; default: random, once per destination (that is, per run). Retries within a run reuse
   * the id, so Segment de-duplicates them; the same change in a later run gets a new id, so a value that changes
   * back and forth within Segment's de-duplication window (about a day) is never dropped as a duplicate.
   */
  readonly messageIdSalt?: string;
}

export function createSegmentDestination(
  config: SegmentDestinationConfig,
  options: SegmentDestinationOptions,
): Destination {
  const base = new URL(config.api_host ?? SEGMENT_HOSTS[config.region]);
  const origin = base.origin;
  const path = `${base.pathname.replace(/\/+$/, "")}/v1/batch`;
  const pool = new Pool(origin, { connections: config.concurrency, connectTimeout: config.timeout });
  // "Include a colon before encoding": user name = write key, empty password.
  const authorization = `Basic ${Buffer.from(`${config.write_key.reveal()}:`).toString("base64")}`;
  const salt = options.messageIdSalt ?? randomBytes(8).toString("hex");
  const unsupported: Partial<Record<OperationKind, string>> = { delete: DELETE_UNSUPPORTED, ...LIST_OPS_UNSUPPORTED };
  if (!config.unset_as_null) unsupported.unset = UNSET_SKIPPED;
  let closed: Promise<void> | undefined;

  return {
    name: "segment",
    limits: {
      maxBatchOperations: config.batch_size,
      maxBatchBytes: MAX_BATCH_BYTES,
      maxOperationBytes: MAX_MESSAGE_BYTES,
      concurrency: config.concurrency,
    },
    unsupported,

    encode(operation: GroupOperation): EncodedOperation {
      let traits: Record<string, JsonValue>;
      switch (operation.kind) {
        case "set":
          traits = { ...operation.properties };
          break;
        case "unset":
          traits = Object.fromEntries(operation.names.map((name) => [name, null]));
          break;
        case "delete":
          throw new Error(DELETE_UNSUPPORTED);
        case "set_once":
        case "union":
        case "remove":
          throw new Error(LIST_OPS_UNSUPPORTED[operation.kind]);
        default:
          return operation satisfies never;
      }
      const { groupId, userId } = operation.ref;
      const who: Record<string, string> =
        userId !== undefined
          ? { userId }
          : config.anonymous_id !== undefined
            ? { anonymousId: config.anonymous_id }
            : {};
      if (!("userId" in who) && !("anonymousId" in who)) {
        throw new Error(
          "no userId for this group call: the mapping's user_id column is empty (or the group left the source) and the destination has no anonymous_id",
        );
      }
      const payload = JSON.stringify({ groupId, ...who, traits });
      const messageId = `groupsync-${createHash("sha256")
        .update(`${salt}\0${options.sync}\0${operation.ref.groupKey}\0${payload}`)
        .digest("hex")
        .slice(0, MESSAGE_ID_HEX)}`;
      const json = JSON.stringify({
        type: "group",
        messageId,
        groupId,
        ...who,
        traits,
        context: { library: { name: "groupsync" } },
      });
      const utf8 = Buffer.from(json, "utf8");
      return { json: utf8, bytes: utf8.length };
    },

    async send(batch: readonly EncodedOperation[], sendOptions?: SendOptions): Promise<SendOutcome> {
      const body = jsonArrayBody(batch, '{"batch":', `,"sentAt":"${new Date().toISOString()}"}`);
      try {
        const response = await pool.request({
          path,
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json", authorization },
          body,
          headersTimeout: config.timeout,
          bodyTimeout: config.timeout,
          signal: sendOptions?.signal,
        });
        const text = await response.body.text();
        return classifySegmentResponse({
          status: response.statusCode,
          body: text,
          retryAfter: response.headers["retry-after"],
          rateLimitReset: response.headers["x-ratelimit-reset"],
          origin,
        });
      } catch (error) {
        return { kind: "retry", reason: redact(networkReason(error, origin, config.timeout)) };
      }
    },

    close(): Promise<void> {
      closed ??= pool.close();
      return closed;
    },
  };
}
