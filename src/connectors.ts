/** The registry of connectors: config `type` → adapter. The engine only sees the Source and Destination interfaces. */
import { createMixpanelDestination } from "../connectors/mixpanel/destination.js";
import { createMixpanelReader } from "../connectors/mixpanel/read-back.js";
import { createPostgresSource } from "../connectors/postgres/source.js";
import { createPostHogDestination } from "../connectors/posthog/destination.js";
import { createPostHogReader } from "../connectors/posthog/read-back.js";
import { createSegmentDestination } from "../connectors/segment/destination.js";
import { createSnowflakeSource } from "../connectors/snowflake/source.js";
import type { LoadedSync } from "./config/load.js";
import type { Destination } from "./destination.js";
import type { Connectors } from "./engine/run-sync.js";
import { GroupsyncError } from "./errors.js";
import type { ProfileReader } from "./read-back.js";
import type { Source } from "./source.js";

export const connectors: Connectors = {
  createSource(sync: LoadedSync): Source {
    const config = sync.source.config;
    switch (config.type) {
      case "postgres":
        return createPostgresSource(config);
      case "snowflake":
        return createSnowflakeSource(config, { sync: sync.name });
    }
  },
  createDestination(sync: LoadedSync): Destination {
    const config = sync.destination.config;
    switch (config.type) {
      case "mixpanel":
        return createMixpanelDestination(config);
      case "posthog":
        return createPostHogDestination(config);
      case "segment":
        return createSegmentDestination(config, { sync: sync.name });
    }
  },
};

/** Readers of group profiles (`groupsync verify`), by destination type. */
export function createReader(sync: LoadedSync, options: { readonly minIntervalMs?: number } = {}): ProfileReader {
  const config = sync.destination.config;
  switch (config.type) {
    case "mixpanel":
      return createMixpanelReader(config, sync.destination.name);
    case "posthog":
      return createPostHogReader(config, sync.destination.name, options);
    case "segment":
      throw new GroupsyncError(
        `sync ${sync.name} sends to Segment, which cannot be read back: the Tracking API only accepts calls, and group traits live in the tools Segment forwards them to`,
        {
          code: "VERIFY_UNSUPPORTED",
          action:
            "Check the groups in the tool Segment forwards to (e.g. a Mixpanel or PostHog sync of the same table can be verified).",
        },
      );
  }
}
