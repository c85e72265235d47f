/**
 * The registry of connectors: config `type` → adapter. The engine only sees the Source and Destination interfaces.
 * A connector's module is imported only when a config uses it, with its SDKs (pg, undici, the Snowflake connector's
 * modules): `groupsync validate` on the example config went from 123 to 105 MB peak RSS. (snowflake-sdk itself, about
 * 60 MB and seconds to import, is loaded by the Snowflake session only when it connects.) Validation needs none of
 * them: the config schemas live in each connector's light `config.ts`.
 */
import type { LoadedSync } from "./config/load.js";
import type { Destination } from "./destination.js";
import type { Connectors } from "./engine/run-sync.js";
import type { Source } from "./source.js";

type SourceConfig = LoadedSync["source"]["config"];
type DestinationConfig = LoadedSync["destination"]["config"];
type SourceFactory = (sync: LoadedSync) => Source;
type DestinationFactory = (sync: LoadedSync) => Destination;

const sourceModules: Record<SourceConfig["type"], () => Promise<SourceFactory>> = {
  postgres: async () => {
    const { createPostgresSource } = await import("../connectors/postgres/source.js");
    return (sync) => createPostgresSource(sync.source.config as Extract<SourceConfig, { type: "postgres" }>);
  },
  snowflake: async () => {
    const { createSnowflakeSource } = await import("../connectors/snowflake/source.js");
    return (sync) =>
      createSnowflakeSource(sync.source.config as Extract<SourceConfig, { type: "snowflake" }>, { sync: sync.name });
  },
};

const destinationModules: Record<DestinationConfig["type"], () => Promise<DestinationFactory>> = {
  mixpanel: async () => {
    const { createMixpanelDestination } = await import("../connectors/mixpanel/destination.js");
    return (sync) =>
      createMixpanelDestination(sync.destination.config as Extract<DestinationConfig, { type: "mixpanel" }>);
  },
  posthog: async () => {
    const { createPostHogDestination } = await import("../connectors/posthog/destination.js");
    return (sync) =>
      createPostHogDestination(sync.destination.config as Extract<DestinationConfig, { type: "posthog" }>);
  },
  segment: async () => {
    const { createSegmentDestination } = await import("../connectors/segment/destination.js");
    return (sync) =>
      createSegmentDestination(sync.destination.config as Extract<DestinationConfig, { type: "segment" }>, {
        sync: sync.name,
      });
  },
};

/** Loads the connectors `syncs` use (every connector when `syncs` is omitted, as tests do). */
export async function loadConnectors(syncs?: readonly LoadedSync[]): Promise<Connectors> {
  const sourceTypes = syncs
    ? new Set(syncs.map((sync) => sync.source.config.type))
    : (Object.keys(sourceModules) as SourceConfig["type"][]);
  const destinationTypes = syncs
    ? new Set(syncs.map((sync) => sync.destination.config.type))
    : (Object.keys(destinationModules) as DestinationConfig["type"][]);
  const sources = new Map(
    await Promise.all([...sourceTypes].map(async (type) => [type, await sourceModules[type]()] as const)),
  );
  const destinations = new Map(
    await Promise.all([...destinationTypes].map(async (type) => [type, await destinationModules[type]()] as const)),
  );
  const missing = (kind: string, type: string): never => {
    throw new Error(`internal error: the ${kind} connector "${type}" was not loaded for this sync`);
  };
  return {
    createSource: (sync) => (sources.get(sync.source.config.type) ?? missing("source", sync.source.config.type))(sync),
    createDestination: (sync) =>
      (destinations.get(sync.destination.config.type) ?? missing("destination", sync.destination.config.type))(sync),
  };
}
