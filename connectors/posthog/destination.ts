/**
 * The PostHog destination. Sets are `$groupidentify` events sent through the batch capture endpoint
 * (https://posthog.com/docs/api/capture, "Group identify"):
 * `POST {host}/batch/` `{"api_key": "phc_…", "batch": [{"event": "$groupidentify", "distinct_id": …,
 * "properties": {"$group_type", "$group_key", "$group_set"}}]}`. Ingestion only merges `$group_set` into the group,
 * so unsets go through the Groups REST API (`delete_property`, one property per call) when a personal API key is
 * configured, and are declared unsupported (skipped, reported) otherwise. PostHog has no call that deletes one
 * group, so `delete` is always unsupported. Retries, backoff and splitting live in `src/delivery`.
 */
import { Pool } from "undici";
import { jsonArrayBody } from "../../src/delivery/batcher.js";
import type { Destination, EncodedOperation, RejectedRecord, SendOptions, SendOutcome } from "../../src/destination.js";
import type { GroupOperation, OperationKind } from "../../src/model.js";
import { redact } from "../../src/secret.js";
import { networkReason } from "../shared/http.js";
import { type PostHogDestinationConfig, posthogHosts } from "./config.js";
import { GroupsApi } from "./groups-api.js";
import { classifyCaptureResponse } from "./response.js";

/** Capture refuses an event over its Kafka message limit (`message.max.bytes`, 1 000 000) as "event too big". */
export const MAX_EVENT_BYTES = 1_000_000;
/** `/batch/` takes up to 20 MB; stay far below it, as posthog-python does (5 MB). */
export const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** `$group_type` and `$group_key` longer than this are dropped by ingestion after a 200 (capture docs). */
export const MAX_GROUP_KEY_LENGTH = 400;

const UNSET_WITHOUT_PERSONAL_KEY =
  "PostHog ingestion cannot remove a group property; set personal_api_key and project_id to remove them through the Groups REST API";
/** PostHog's `send` needs the operation of an unset (its names, for the REST calls) and the group type of a set. */
interface PostHogEncoded extends EncodedOperation {
  readonly operation: GroupOperation;
}

/** Refused by `validate` for this destination (mapping `op: set_once` / `op: union`); never planned. */
const LIST_OPS_UNSUPPORTED = {
  set_once: "PostHog has no set-once for group properties; use op: set",
  union: "PostHog cannot add items to a list property; use op: set",
  remove: "PostHog cannot remove one item from a list property; use op: set",
} as const;
const DELETE_UNSUPPORTED =
  "PostHog has no API that deletes one group (only a whole group type); use on_delete: unset to remove its properties, or on_delete: ignore";

export function createPostHogDestination(config: PostHogDestinationConfig): Destination<PostHogEncoded> {
  const hosts = posthogHosts(config);
  const ingestion = new URL(hosts.ingestion);
  const origin = ingestion.origin;
  const batchPath = `${ingestion.pathname.replace(/\/+$/, "")}/batch/`;
  const pool = new Pool(origin, { connections: config.concurrency, connectTimeout: config.timeout });
  const api =
    config.personal_api_key && config.project_id !== undefined
      ? new GroupsApi({
          baseUrl: hosts.app,
          personalApiKey: config.personal_api_key,
          projectId: config.project_id,
          timeout: config.timeout,
          connections: config.concurrency,
        })
      : undefined;
  const apiKey = JSON.stringify(config.project_api_key.reveal());
  const unsupported: Partial<Record<OperationKind, string>> = { delete: DELETE_UNSUPPORTED, ...LIST_OPS_UNSUPPORTED };
  if (!api) unsupported.unset = UNSET_WITHOUT_PERSONAL_KEY;

  /**
   * What a batch already did, so a retried batch does not repeat it: the delivery layer re-sends the same encoded
   * operations after a partial failure. Re-sending an event would be harmless but would also re-apply an older
   * value after a newer one (PostHog orders group updates by ingestion, not timestamp), and REST calls are
   * rate limited.
   */
  const sentEvents = new WeakSet<PostHogEncoded>();
  const removed = new WeakMap<PostHogEncoded, Set<string>>();
  /** Group types checked for room in the project (with a personal key only). */
  const roomChecked = new Set<string>();
  let closed: Promise<void> | undefined;

  async function capture(events: readonly PostHogEncoded[], options?: SendOptions): Promise<SendOutcome> {
    const body = jsonArrayBody(events, `{"api_key":${apiKey},"batch":`, "}");
    try {
      const response = await pool.request({
        path: batchPath,
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body,
        headersTimeout: config.timeout,
        bodyTimeout: config.timeout,
        signal: options?.signal,
      });
      const text = await response.body.text();
      return classifyCaptureResponse({
        status: response.statusCode,
        body: text,
        retryAfter: response.headers["retry-after"],
        origin,
      });
    } catch (error) {
      return { kind: "retry", reason: redact(networkReason(error, origin, config.timeout)) };
    }
  }

  /** Removes the properties of one unset; `undefined` when done, else a reason to reject it, or an outcome. */
  async function unset(
    api: GroupsApi,
    encoded: PostHogEncoded,
    options?: SendOptions,
  ): Promise<string | SendOutcome | undefined> {
    const operation = encoded.operation as Extract<GroupOperation, { kind: "unset" }>;
    const lookup = await api.groupType(operation.ref.groupKey, options);
    if (lookup.kind === "retry" || lookup.kind === "fatal") return lookup;
    if (lookup.kind === "missing") {
      return `PostHog project has no group type ${JSON.stringify(operation.ref.groupKey)} (it has: ${lookup.existing.join(", ") || "none"}), so there is nothing to unset yet`;
    }
    const done = removed.get(encoded) ?? new Set<string>();
    removed.set(encoded, done);
    for (const name of operation.names) {
      if (done.has(name)) continue;
      const outcome = await api.deleteProperty(lookup.index, operation.ref.groupId, name, options);
      if (outcome.kind === "refused") return `${outcome.reason} (property ${name})`;
      if (outcome.kind === "retry" || outcome.kind === "fatal") return outcome;
      // "ok", or "gone": no such group or property, which is what an unset wants.
      done.add(name);
    }
    return undefined;
  }

  return {
    name: "posthog",
    limits: {
      maxBatchOperations: config.batch_size,
      maxBatchBytes: MAX_BODY_BYTES,
      maxOperationBytes: MAX_EVENT_BYTES,
      concurrency: config.concurrency,
    },
    unsupported,

    encode(operation: GroupOperation): PostHogEncoded {
      const { groupKey, groupId } = operation.ref;
      for (const [what, value] of [
        ["Group Key ($group_type)", groupKey],
        ["Group ID ($group_key)", groupId],
      ] as const) {
        if (value.length > MAX_GROUP_KEY_LENGTH) {
          throw new Error(`${what} is ${value.length} characters; PostHog drops groups over ${MAX_GROUP_KEY_LENGTH}`);
        }
      }
      let message: unknown;
      switch (operation.kind) {
        case "set":
          message = {
            event: "$groupidentify",
            // posthog-node's choice for group identify events: no person is linked to the group by it.
            distinct_id: `$${groupKey}_${groupId}`,
            properties: {
              $group_type: groupKey,
              $group_key: groupId,
              $group_set: operation.properties,
              $lib: "groupsync",
            },
          };
          break;
        case "unset":
          // Not an event: the REST calls this stands for, one delete_property per name (shown by `plan`).
          message = { $group_type: groupKey, $group_key: groupId, $unset: operation.names };
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
      const json = JSON.stringify(message);
      const utf8 = Buffer.from(json, "utf8");
      return { operation, json: utf8, bytes: utf8.length };
    },

    async send(batch: readonly PostHogEncoded[], options?: SendOptions): Promise<SendOutcome> {
      const events: number[] = [];
      const unsets: number[] = [];
      batch.forEach((encoded, index) => {
        if (encoded.operation.kind === "set") {
          if (!sentEvents.has(encoded)) events.push(index);
        } else unsets.push(index);
      });

      if (events.length > 0) {
        if (api) {
          for (const groupType of new Set(events.map((index) => batch[index]!.operation.ref.groupKey))) {
            if (roomChecked.has(groupType)) continue;
            const problem = await api.checkRoom(groupType, options);
            if (problem?.kind === "retry" || problem?.kind === "fatal") return problem;
            roomChecked.add(groupType);
          }
        }
        const outcome = await capture(
          events.map((index) => batch[index]!),
          options,
        );
        if (outcome.kind === "rejected-records") {
          // Indexes of the events sent, mapped back to the batch.
          return {
            ...outcome,
            rejected: outcome.rejected.map((record) => ({ ...record, index: events[record.index] ?? -1 })),
          };
        }
        if (outcome.kind !== "ok") return outcome;
        for (const index of events) sentEvents.add(batch[index]!);
      }

      if (unsets.length === 0) return { kind: "ok" };
      if (!api) {
        // The delivery layer skips unsupported kinds; reaching here is a bug in the caller.
        return { kind: "fatal", reason: UNSET_WITHOUT_PERSONAL_KEY, action: "Set personal_api_key.", status: 0 };
      }
      const rejected: RejectedRecord[] = [];
      for (const index of unsets) {
        const result = await unset(api, batch[index]!, options);
        if (result === undefined) continue;
        if (typeof result === "string") rejected.push({ index, reason: redact(result) });
        else return result;
      }
      return rejected.length > 0 ? { kind: "rejected-records", rejected, status: 400 } : { kind: "ok" };
    },

    close(): Promise<void> {
      closed ??= Promise.all([pool.close(), api?.close()]).then(() => undefined);
      return closed;
    },
  };
}
