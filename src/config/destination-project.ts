/**
 * What identifies the project a destination writes to: its host and the credential that names the project. The
 * engine hashes it into the state's identity (never stored in clear), so a snapshot written for one project is never
 * used for another (a new token or write key means another project: its groups were never sent).
 */
import type { DestinationConfig } from "./schema.js";

export function destinationProject(config: DestinationConfig): { readonly host: string; readonly project: string } {
  switch (config.type) {
    case "mixpanel":
      return { host: config.api_host ?? config.region, project: config.project_token.reveal() };
    case "posthog":
      return { host: config.host, project: config.project_api_key.reveal() };
    case "segment":
      return { host: config.api_host ?? config.region, project: config.write_key.reveal() };
  }
}
