/** Configuration of a Mixpanel destination (`type: mixpanel`). */
import { z } from "zod";
import { duration, secretString } from "../../src/config/common.js";
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
    batch_size: z
      .number()
      .int()
      .min(1)
      .max(2000)
      .default(200)
      .meta({ description: "Updates per request (Mixpanel allows up to 2000)." }),
    concurrency: z.number().int().min(1).max(32).default(4).meta({ description: "Requests in flight at once." }),
    timeout: duration("Longest wait for one response before it counts as failed and is retried.").default(30_000),
    max_retries: z
      .number()
      .int()
      .min(0)
      .max(50)
      .default(8)
      .meta({ description: "Retries of one batch on 429, 5xx and network errors before the run gives up on it." }),
  })
  .superRefine((config, context) => {
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
