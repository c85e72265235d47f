/** Readers of group profiles (`groupsync verify`), by destination type: loaded only by `verify`. */
import { createMixpanelReader } from "../connectors/mixpanel/read-back.js";
import { createPostHogReader } from "../connectors/posthog/read-back.js";
import type { LoadedSync } from "./config/load.js";
import { GroupsyncError } from "./errors.js";
import type { ProfileReader } from "./read-back.js";

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
