/**
 * Reads PostHog groups back through the Groups REST API, for `groupsync verify`
 * (https://posthog.com/docs/api/groups): `GET /api/projects/:id/groups/find/?group_type_index=&group_key=
 * &skip_create_notebook=true` with a personal API key (scope group:read), one group per call, 404 when missing.
 * Personal-key requests are limited to 480 per minute and 4800 per hour: one call every 750 ms stays under both.
 */
import { ConfigError } from "../../src/errors.js";
import type { JsonValue } from "../../src/model.js";
import type { ProfileReader, ReadOutcome } from "../../src/read-back.js";
import { isObject } from "../shared/http.js";
import { type PostHogDestinationConfig, posthogHosts } from "./config.js";
import { GroupsApi } from "./groups-api.js";

/** 4800 requests per hour (SustainedRateThrottle) is one every 750 ms. */
export const POSTHOG_READ_INTERVAL_MS = 750;

export function createPostHogReader(
  config: PostHogDestinationConfig,
  destination: string,
  options: { readonly minIntervalMs?: number } = {},
): ProfileReader {
  if (!config.personal_api_key || config.project_id === undefined) {
    throw new ConfigError(
      [
        {
          file: "sync.config.yaml",
          path: `destinations.${destination}.personal_api_key`,
          message:
            "verify reads PostHog groups back through the Groups REST API, which needs personal_api_key (scope group:read) and project_id",
        },
      ],
      { code: "VERIFY_NOT_CONFIGURED" },
    );
  }
  const api = new GroupsApi({
    baseUrl: posthogHosts(config).app,
    personalApiKey: config.personal_api_key,
    projectId: config.project_id,
    timeout: config.timeout,
    connections: 1,
  });
  const minIntervalMs = options.minIntervalMs ?? POSTHOG_READ_INTERVAL_MS;
  return {
    name: "posthog",
    batchSize: 1,
    minIntervalMs,
    rateNote: `Groups REST API: one group per call, one call every ${minIntervalMs} ms (4800 requests per hour)`,
    async read(refs, options): Promise<ReadOutcome> {
      const profiles: (Record<string, JsonValue> | undefined)[] = [];
      for (const ref of refs) {
        const type = await api.groupType(ref.groupKey, options);
        if (type.kind === "retry" || type.kind === "fatal") return type;
        if (type.kind === "missing") {
          profiles.push(undefined);
          continue;
        }
        const found = await api.find(type.index, ref.groupId, options);
        if (found.kind === "retry" || found.kind === "fatal") return found;
        if (found.kind === "refused") {
          return { kind: "fatal", reason: found.reason, action: "Check the group key and project_id." };
        }
        if (found.kind === "gone") {
          profiles.push(undefined);
          continue;
        }
        const properties = isObject(found.json) ? found.json.group_properties : undefined;
        profiles.push(isObject(properties) ? (properties as Record<string, JsonValue>) : {});
      }
      return { kind: "ok", profiles };
    },
    close: () => api.close(),
  };
}
