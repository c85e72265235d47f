/** The registry of connectors: config `type` → adapter. The engine only sees the Source and Destination interfaces. */
import { createMixpanelDestination } from "../connectors/mixpanel/destination.js";
import { createPostgresSource } from "../connectors/postgres/source.js";
import { createPostHogDestination } from "../connectors/posthog/destination.js";
import { createSegmentDestination } from "../connectors/segment/destination.js";
import { createSnowflakeSource } from "../connectors/snowflake/source.js";
import type { LoadedSync } from "./config/load.js";
import type { Destination } from "./destination.js";
import type { Connectors } from "./engine/run-sync.js";
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
