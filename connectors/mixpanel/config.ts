/** Configuration of a Mixpanel destination (`type: mixpanel`). */
import { z } from "zod";
import { deliverySettings, duration, secretString } from "../../src/config/common.js";
import { isInsecureRemote } from "../../src/config/insecure-host.js";

/** Ingestion hosts by data residency (Mixpanel's OpenAPI `servers` block). */
export const MIXPANEL_HOSTS = {
  us: "https://api.mixpanel.com",
  eu: "https://api-eu.mixpanel.com",
  in: "https://api-in.mixpanel.com",
} as const;

/**
 * Mixpanel's reserved profile properties: the only property names that may start with `$`.
 * https://docs.mixpanel.com/docs/data-structure/property-reference/reserved-properties
 */
export const MIXPANEL_RESERVED_PROPERTIES = [
  "$name",
  "$email",
  "$phone",
  "$avatar",
  "$created",
  "$first_name",
  "$last_name",
  "$city",
  "$region",
  "$country_code",
  "$timezone",
  "$unsubscribed",
] as const;

/** Most properties one profile may hold ("Each Mixpanel profile is limited to 2,000 properties"). */
export const MIXPANEL_MAX_PROPERTIES = 2000;

export const mixpanelDestinationSchema = z
  .strictObject({
    type: z.literal("mixpanel"),
    project_token: secretString("The project token (Project Settings → Access Keys). Use ${MIXPANEL_PROJECT_TOKEN}."),
    region: z
      .enum(["us", "eu", "in"])
      .default("us")
      .meta({ description: "Data residency of the project: us, eu or in." }),
    api_host: z
      .url({ protocol: /^https?$/ })
      .optional()
      .meta({ description: "Overrides the region's host: a proxy, or a local receiver in tests." }),
    allow_insecure: z
      .boolean()
      .default(false)
      .meta({ description: "Allow plain http:// to a host that is not loopback." }),
    hierarchical: z
      .boolean()
      .default(false)
      .meta({ description: "The project uses Hierarchical Groups: every update carries $company_id." }),
    ...deliverySettings({
      max: 2000,
      default: 200,
      description: "Updates per request (Mixpanel allows up to 2000).",
      maxConcurrency: 32,
    }),
    query: z
      .strictObject({
        service_account_username: secretString(
          "Service account user name (Organization Settings → Service Accounts). Use ${MIXPANEL_SA_USERNAME}.",
        ),
        service_account_secret: secretString("Service account secret. Use ${MIXPANEL_SA_SECRET}."),
        project_id: z
          .union([z.number().int().positive(), z.string().regex(/^\d+$/, "expected the numeric project ID")])
          .transform(String)
          .meta({ description: "The numeric project ID (Project Settings → Overview)." }),
        data_group_ids: z
          .record(z.string().min(1), z.union([z.number().int().nonnegative(), z.string().min(1)]).transform(String))
          .meta({
            description:
              "The data_group_id of each group key this project's syncs use, e.g. { company: 2 } (Project Settings → Group Keys).",
          }),
        api_host: z
          .url({ protocol: /^https?$/ })
          .optional()
          .meta({
            description:
              "Overrides the Query API host (default https://mixpanel.com, eu.mixpanel.com or in.mixpanel.com by region).",
          }),
        min_interval: duration(
          "Least time between two queries. The Query API allows 60 queries per hour: the default, 60s, never exceeds it.",
        ).default(60_000),
        ids_per_query: z.number().int().min(1).max(1000).default(100).meta({
          description: "Group IDs read back per query (`distinct_ids`).",
        }),
      })
      .optional()
      .meta({
        description:
          "`groupsync verify` only: reads group profiles back through the Query API (/api/query/engage), which needs a service account.",
      }),
  })
  .superRefine((config, context) => {
    const queryHost = config.query?.api_host;
    if (queryHost && !config.allow_insecure && isInsecureRemote(queryHost)) {
      context.addIssue({
        code: "custom",
        path: ["query", "api_host"],
        message:
          "plain http:// to a host that is not loopback would send the service account secret unencrypted; use https:// or set allow_insecure: true",
      });
    }
    // The project token travels in every request body: never in clear text off this machine unless asked to.
    if (config.api_host && !config.allow_insecure && isInsecureRemote(config.api_host)) {
      context.addIssue({
        code: "custom",
        path: ["api_host"],
        message:
          "plain http:// to a host that is not loopback would send the project token unencrypted; use https:// or set allow_insecure: true",
      });
    }
  })
  .meta({ description: "Mixpanel group profiles, through the /groups ingestion endpoint." });

export type MixpanelDestinationConfig = z.output<typeof mixpanelDestinationSchema>;

/** Query API hosts by data residency (https://docs.mixpanel.com/reference/engage-query: `{regionAndDomain}.com`). */
export const MIXPANEL_QUERY_HOSTS = {
  us: "https://mixpanel.com",
  eu: "https://eu.mixpanel.com",
  in: "https://in.mixpanel.com",
} as const;
