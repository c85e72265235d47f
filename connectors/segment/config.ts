/** Configuration of a Segment destination (`type: segment`). */
import { z } from "zod";
import { deliverySettings, secretString } from "../../src/config/common.js";
import { isInsecureRemote } from "../../src/config/insecure-host.js";

/**
 * Tracking API hosts by workspace region. "If you are located in the EU and use the https://api.segment.io/v1/
 * endpoint, you might not see any errors, but your events will not appear"
 * (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/).
 */
export const SEGMENT_HOSTS = {
  us: "https://api.segment.io",
  eu: "https://events.eu1.segmentapis.com",
} as const;

/**
 * Segment's reserved group traits, in the casing Segment documents (https://segment.com/docs/connections/spec/group/
 * "Traits"). Traits are case-insensitive (`createdAt` ≡ `created_at`), but destinations map the documented form.
 */
export const SEGMENT_RESERVED_GROUP_TRAITS = [
  "address",
  "avatar",
  "createdAt",
  "description",
  "email",
  "employees",
  "id",
  "industry",
  "name",
  "phone",
  "website",
  "plan",
] as const;

export const segmentDestinationSchema = z
  .strictObject({
    type: z.literal("segment"),
    write_key: secretString("The write key of a Segment HTTP API source. Use ${SEGMENT_WRITE_KEY}."),
    region: z
      .enum(["us", "eu"])
      .default("us")
      .meta({ description: "Workspace region: us (api.segment.io) or eu (events.eu1.segmentapis.com)." }),
    api_host: z
      .url({ protocol: /^https?$/ })
      .optional()
      .meta({ description: "Overrides the region's host: a proxy, or a local receiver in tests." }),
    allow_insecure: z
      .boolean()
      .default(false)
      .meta({ description: "Allow plain http:// to a host that is not loopback." }),
    anonymous_id: z.string().min(1).max(100).optional().meta({
      description:
        "The fixed anonymousId of group calls that have no userId (no user_id column in the mapping, or an empty one). Segment requires one of the two.",
    }),
    unset_as_null: z.boolean().default(true).meta({
      description:
        "A trait that became empty is sent as null (Segment overwrites it with null). false: such changes are skipped and reported, and the old value stays.",
    }),
    ...deliverySettings({
      max: 2500,
      default: 100,
      description: "Group calls per /v1/batch request (Segment allows up to 2500).",
      maxConcurrency: 16,
    }),
  })
  .superRefine((config, context) => {
    if (config.api_host && !config.allow_insecure && isInsecureRemote(config.api_host)) {
      context.addIssue({
        code: "custom",
        path: ["api_host"],
        message:
          "plain http:// to a host that is not loopback would send the write key unencrypted; use https:// or set allow_insecure: true",
      });
    }
  })
  .meta({ description: "Segment group calls, through the Tracking API's /v1/batch endpoint." });

export type SegmentDestinationConfig = z.output<typeof segmentDestinationSchema>;
