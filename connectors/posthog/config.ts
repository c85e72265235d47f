/** Configuration of a PostHog destination (`type: posthog`). */
import { z } from "zod";
import { deliverySettings, secretString } from "../../src/config/common.js";
import { isInsecureRemote } from "../../src/config/insecure-host.js";

/**
 * Cloud hosts by region: ingestion (capture) and the private REST API are different hosts
 * (https://posthog.com/docs/api/capture, https://posthog.com/docs/api). A self-hosted instance serves both.
 */
export const POSTHOG_HOSTS = {
  us: { ingestion: "https://us.i.posthog.com", app: "https://us.posthog.com" },
  eu: { ingestion: "https://eu.i.posthog.com", app: "https://eu.posthog.com" },
} as const;

/** Most group types one project can hold (`MAX_GROUP_TYPES_PER_TEAM`); ingestion silently drops a sixth. */
export const POSTHOG_MAX_GROUP_TYPES = 5;

const httpUrl = z.url({ protocol: /^https?$/ });

export const posthogDestinationSchema = z
  .strictObject({
    type: z.literal("posthog"),
    project_api_key: secretString(
      "The project API key (phc_…, Project Settings → Project API key). Use ${POSTHOG_PROJECT_API_KEY}.",
    ),
    host: z
      .union([z.enum(["us", "eu"]), httpUrl])
      .default("us")
      .meta({ description: "us or eu (PostHog Cloud), or the URL of a self-hosted instance." }),
    personal_api_key: secretString(
      "A personal API key (phx_…) with the group:read and group:write scopes. Needed to unset group properties " +
        "(PostHog ingestion cannot); without it, unsets are skipped and reported. Use ${POSTHOG_PERSONAL_API_KEY}.",
    ).optional(),
    project_id: z
      .union([z.number().int().positive(), z.string().regex(/^\d+$/, "expected the numeric project ID")])
      .transform(String)
      .optional()
      .meta({ description: "The numeric project ID (Project Settings); required with personal_api_key." }),
    app_host: httpUrl.optional().meta({
      description: "Overrides the host of the private REST API (default: us.posthog.com, eu.posthog.com, or `host`).",
    }),
    allow_insecure: z
      .boolean()
      .default(false)
      .meta({ description: "Allow plain http:// to a host that is not loopback." }),
    ...deliverySettings({
      max: 1000,
      default: 100,
      description: "Operations per request to /batch/.",
      maxConcurrency: 16,
    }),
  })
  .superRefine((config, context) => {
    if (config.personal_api_key && config.project_id === undefined) {
      context.addIssue({
        code: "custom",
        path: ["project_id"],
        message: "required with personal_api_key: the Groups REST API is per project (Project Settings → Project ID)",
      });
    }
    if (config.allow_insecure) return;
    for (const key of ["host", "app_host"] as const) {
      const value = config[key];
      if (value && isInsecureRemote(value)) {
        context.addIssue({
          code: "custom",
          path: [key],
          message:
            "plain http:// to a host that is not loopback would send the API keys unencrypted; use https:// or set allow_insecure: true",
        });
      }
    }
  })
  .meta({
    description: "PostHog group properties: $groupidentify events through /batch/, unsets through the Groups REST API.",
  });

export type PostHogDestinationConfig = z.output<typeof posthogDestinationSchema>;

/** The ingestion and REST API base URLs of a configured destination. */
export function posthogHosts(config: Pick<PostHogDestinationConfig, "host" | "app_host">): {
  ingestion: string;
  app: string;
} {
  const cloud = config.host === "us" || config.host === "eu" ? POSTHOG_HOSTS[config.host] : undefined;
  const ingestion = cloud?.ingestion ?? config.host;
  return { ingestion, app: config.app_host ?? cloud?.app ?? config.host };
}
