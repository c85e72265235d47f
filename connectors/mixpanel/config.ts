/** Configuration of a Mixpanel destination (`type: mixpanel`). */
import { z } from "zod";
import { duration, secretString } from "../../src/config/common.js";

/** Ingestion hosts by data residency (Mixpanel's OpenAPI `servers` block). */
export const MIXPANEL_HOSTS = {
  us: "https://api.mixpanel.com",
  eu: "https://api-eu.mixpanel.com",
  in: "https://api-in.mixpanel.com",
} as const;

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
  .meta({ description: "Mixpanel group profiles, through the /groups ingestion endpoint." });

export type MixpanelDestinationConfig = z.output<typeof mixpanelDestinationSchema>;
