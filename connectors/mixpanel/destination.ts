/**
 * The Mixpanel destination: encodes group operations as /groups update objects and makes one attempt at a batch.
 * Retries, backoff and splitting live in `src/delivery`. Request format (reference/mixpanel.md, checklist):
 * `POST {host}/groups?ip=0&strict=1&verbose=2`, `Content-Type: application/json`, a raw JSON array, one operation
 * per update object; in Hierarchical Groups projects every object carries the bare `$company_id`.
 */
import type { Pool } from "undici";
import { jsonArrayBody } from "../../src/delivery/batcher.js";
import type { Destination, EncodedOperation, SendOptions, SendOutcome } from "../../src/destination.js";
import type { GroupOperation } from "../../src/model.js";
import { redact } from "../../src/secret.js";
import { networkReason } from "../shared/http.js";
import { MIXPANEL_HOSTS, type MixpanelDestinationConfig } from "./config.js";
import { classifyResponse } from "./response.js";

/** Mixpanel's documented per-update limit ("each individual update … a maximum of 1 MB"). */
export const MAX_UPDATE_BYTES = 1_000_000;
/**
 * No request limit is documented for /groups; /import answers 413 over 2 MiB (2097152 bytes). Stay under it with
 * room for the request line and headers.
 */
export const MAX_BODY_BYTES = Math.floor(1.9 * 1024 * 1024);

export function createMixpanelDestination(config: MixpanelDestinationConfig): Destination {
  const base = new URL(config.api_host ?? MIXPANEL_HOSTS[config.region]);
  const origin = base.origin;
  const path = `${base.pathname.replace(/\/+$/, "")}/groups?ip=0&strict=1&verbose=2`;
  // One pool of keep-alive connections to the one origin, as many as requests in flight; made (and undici loaded)
  // at the first request, so a run with nothing to send does not pay for it.
  let pool: Pool | undefined;
  const connect = async (): Promise<Pool> => {
    const { Pool } = await import("undici");
    pool ??= new Pool(origin, { connections: config.concurrency, connectTimeout: config.timeout });
    return pool;
  };
  let closed: Promise<void> | undefined;
  // The start of every update object: the token is the same for all of them.
  const head = `{"$token":${JSON.stringify(config.project_token.reveal())},"$group_key":`;

  return {
    name: "mixpanel",
    limits: {
      maxBatchOperations: config.batch_size,
      maxBatchBytes: MAX_BODY_BYTES,
      maxOperationBytes: MAX_UPDATE_BYTES,
      concurrency: config.concurrency,
      // "We truncate all strings down to 255 characters" (Mixpanel's import docs; mixpanel-import does the same for
      // profile values): see /work/shared/reference/mixpanel.md, "String values".
      maxStringLength: 255,
    },

    encode(operation: GroupOperation): EncodedOperation {
      // Written as text around JSON.stringify of the parts, the same JSON as stringifying the whole update object
      // but without building that object for every operation (the hot path of a backfill).
      const ref = operation.ref;
      let json = `${head}${JSON.stringify(ref.groupKey)},"$group_id":${JSON.stringify(ref.groupId)}`;
      // An absent Company ID is left out, as JSON.stringify leaves out an undefined member (the receiver refuses it).
      if (config.hierarchical && ref.companyId !== undefined) json += `,"$company_id":${JSON.stringify(ref.companyId)}`;
      switch (operation.kind) {
        case "set":
          json += `,"$set":${JSON.stringify(operation.properties)}}`;
          break;
        case "set_once":
          json += `,"$set_once":${JSON.stringify(operation.properties)}}`;
          break;
        case "unset":
          json += `,"$unset":${JSON.stringify(operation.names)}}`;
          break;
        case "union":
          json += `,"$union":${JSON.stringify(operation.lists)}}`;
          break;
        case "remove":
          // One item per update object: `$remove` takes a scalar per property.
          json += `,"$remove":${JSON.stringify({ [operation.name]: operation.item })}}`;
          break;
        case "delete":
          // Ignored by Mixpanel; the official SDKs send "".
          json += ',"$delete":""}';
          break;
        default:
          return operation satisfies never;
      }
      const utf8 = Buffer.from(json, "utf8");
      return { json: utf8, bytes: utf8.length };
    },

    async send(batch: readonly EncodedOperation[], options?: SendOptions): Promise<SendOutcome> {
      const body = jsonArrayBody(batch);
      try {
        const response = await (pool ?? (await connect())).request({
          path,
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body,
          // Per request, for the headers and for each gap in the body. undici checks them on a coarse clock
          // (about 0.5–1 s), which is fine for timeouts of seconds.
          headersTimeout: config.timeout,
          bodyTimeout: config.timeout,
          signal: options?.signal,
        });
        const text = await response.body.text();
        return classifyResponse({
          status: response.statusCode,
          body: text,
          retryAfter: response.headers["retry-after"],
          origin,
        });
      } catch (error) {
        return { kind: "retry", reason: redact(networkReason(error, origin, config.timeout)) };
      }
    },

    close(): Promise<void> {
      closed ??= pool ? pool.close() : Promise.resolve();
      return closed;
    },
  };
}
