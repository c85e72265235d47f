/**
 * Reads Mixpanel group profiles back through the Query API, for `groupsync verify`
 * (https://docs.mixpanel.com/reference/engage-query): `POST {host}/api/query/engage?project_id=<id>`, HTTP Basic
 * auth with a service account, form fields `data_group_id` (the group key's ID) and `distinct_ids` (a JSON array of
 * Group IDs). Answer: `{"page", "page_size", "session_id", "status": "ok", "total", "results": [{"$distinct_id",
 * "$properties"}]}`. The Query API allows 60 queries per hour and 5 at once: verify spaces queries by
 * `query.min_interval` (default 60 s) and sends one at a time.
 */
import { Pool } from "undici";
import { parseRetryAfter } from "../../src/delivery/retry-after.js";
import { ConfigError } from "../../src/errors.js";
import type { GroupRef, JsonValue } from "../../src/model.js";
import type { ProfileReader, ReadOutcome } from "../../src/read-back.js";
import { redact } from "../../src/secret.js";
import { errorDetail, isObject, networkReason, parseJson } from "../shared/http.js";
import { MIXPANEL_QUERY_HOSTS, type MixpanelDestinationConfig } from "./config.js";

/** The Query API's documented rate limit. */
export const QUERY_LIMIT_PER_HOUR = 60;

/**
 * The distinct_id of a group profile in the Query API: the bare Group ID, or in Hierarchical Groups the composite
 * form (reference/mixpanel.md §4: `$company:<company_id>` for a company, `$company:<company_id>|<key>:<id>`).
 */
export function queryDistinctId(ref: GroupRef, hierarchical: boolean): string {
  if (!hierarchical) return ref.groupId;
  if (ref.groupKey === "$company_id") return `$company:${ref.companyId ?? ref.groupId}`;
  return `$company:${ref.companyId ?? ""}|${ref.groupKey}:${ref.groupId}`;
}

export function createMixpanelReader(config: MixpanelDestinationConfig, destination: string): ProfileReader {
  const query = config.query;
  if (!query) {
    throw new ConfigError(
      [
        {
          file: "sync.config.yaml",
          path: `destinations.${destination}.query`,
          message:
            "verify reads Mixpanel profiles back through the Query API, which needs a service account: add query: { service_account_username, service_account_secret, project_id, data_group_ids }",
        },
      ],
      { code: "VERIFY_NOT_CONFIGURED" },
    );
  }
  const base = new URL(query.api_host ?? MIXPANEL_QUERY_HOSTS[config.region]);
  const origin = base.origin;
  const path = `${base.pathname.replace(/\/+$/, "")}/api/query/engage?project_id=${encodeURIComponent(query.project_id)}`;
  const pool = new Pool(origin, { connections: 1, connectTimeout: config.timeout });
  const authorization = `Basic ${Buffer.from(
    `${query.service_account_username.reveal()}:${query.service_account_secret.reveal()}`,
  ).toString("base64")}`;
  let closed: Promise<void> | undefined;

  return {
    name: "mixpanel",
    batchSize: query.ids_per_query,
    minIntervalMs: query.min_interval,
    rateNote: `Query API: ${QUERY_LIMIT_PER_HOUR} queries per hour; one query every ${query.min_interval / 1000}s, ${query.ids_per_query} groups per query`,

    async read(refs, options): Promise<ReadOutcome> {
      const groupKey = refs[0]?.groupKey ?? "";
      const dataGroupId = query.data_group_ids[groupKey];
      if (dataGroupId === undefined) {
        return {
          kind: "fatal",
          reason: `no data_group_id for group key ${JSON.stringify(groupKey)} in destinations.${destination}.query.data_group_ids`,
          action: `Add ${JSON.stringify(groupKey)}: <its ID> under query.data_group_ids (Project Settings → Group Keys shows each key's ID).`,
        };
      }
      const ids = refs.map((ref) => queryDistinctId(ref, config.hierarchical));
      const body = new URLSearchParams({ data_group_id: dataGroupId, distinct_ids: JSON.stringify(ids) }).toString();
      let status: number;
      let text: string;
      let retryAfter: string | string[] | undefined;
      try {
        const response = await pool.request({
          path,
          method: "POST",
          headers: {
            authorization,
            "content-type": "application/x-www-form-urlencoded",
            accept: "application/json",
          },
          body,
          headersTimeout: config.timeout,
          bodyTimeout: config.timeout,
          signal: options?.signal,
        });
        status = response.statusCode;
        text = await response.body.text();
        retryAfter = response.headers["retry-after"];
      } catch (error) {
        return { kind: "retry", reason: redact(networkReason(error, origin, config.timeout)) };
      }
      const detail = redact(errorDetail(text));
      if (status === 401 || status === 403) {
        return {
          kind: "fatal",
          reason: `Mixpanel refused the service account for project ${query.project_id} (HTTP ${status}: ${detail})`,
          action:
            "Check query.service_account_username, query.service_account_secret and query.project_id: the service account must have access to the project.",
        };
      }
      if (status === 429 || status >= 500) {
        const retryAfterMs = parseRetryAfter(retryAfter);
        return {
          kind: "retry",
          reason: `HTTP ${status} from ${origin}: ${detail}`,
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        };
      }
      const json = parseJson(text);
      if (status !== 200 || !isObject(json) || !Array.isArray(json.results)) {
        return {
          kind: "fatal",
          reason: `unexpected answer from the Query API (HTTP ${status}): ${detail}`,
          action: "Check query.api_host and query.data_group_ids.",
        };
      }
      const found = new Map<string, Record<string, JsonValue>>();
      for (const result of json.results as unknown[]) {
        if (isObject(result) && typeof result.$distinct_id === "string" && isObject(result.$properties)) {
          found.set(result.$distinct_id, result.$properties as Record<string, JsonValue>);
        }
      }
      return { kind: "ok", profiles: ids.map((id) => found.get(id)) };
    },

    close() {
      closed ??= pool.close();
      return closed;
    },
  };
}
