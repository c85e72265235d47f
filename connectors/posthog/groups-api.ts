/**
 * The half of the PostHog destination that uses the private REST API with a personal API key: resolving a group
 * type's `group_type_index`, and removing group properties one at a time with `delete_property` (ingestion cannot
 * unset a group property: `$group_set` only merges, and `null` is stored as a value).
 * https://posthog.com/docs/api/groups, https://posthog.com/docs/api/groups-types
 */
import { Pool } from "undici";
import type { SendOptions } from "../../src/destination.js";
import { redact, type Secret } from "../../src/secret.js";
import { isObject, networkReason } from "../shared/http.js";
import { POSTHOG_MAX_GROUP_TYPES } from "./config.js";
import { type ApiOutcome, classifyApiResponse } from "./response.js";

export interface GroupsApiOptions {
  /** Base URL of the REST API (`https://us.posthog.com`, or a self-hosted instance). */
  readonly baseUrl: string;
  readonly personalApiKey: Secret;
  readonly projectId: string;
  readonly timeout: number;
  readonly connections: number;
}

/** Where a group type stands in the project. */
export type GroupTypeLookup =
  | { readonly kind: "found"; readonly index: number }
  | { readonly kind: "missing"; readonly existing: readonly string[] }
  | Extract<ApiOutcome, { kind: "retry" | "fatal" }>;

export class GroupsApi {
  readonly #options: GroupsApiOptions;
  readonly #origin: string;
  readonly #prefix: string;
  readonly #pool: Pool;
  /** The project's group types by name, from the last listing; refreshed when a name is not in it. */
  #types: Map<string, number> | undefined;

  constructor(options: GroupsApiOptions) {
    this.#options = options;
    const base = new URL(options.baseUrl);
    this.#origin = base.origin;
    this.#prefix = `${base.pathname.replace(/\/+$/, "")}/api/projects/${encodeURIComponent(options.projectId)}`;
    this.#pool = new Pool(this.#origin, { connections: options.connections, connectTimeout: options.timeout });
  }

  /** The `group_type_index` of `groupType`, listing the project's group types when it is not known yet. */
  async groupType(groupType: string, options?: SendOptions): Promise<GroupTypeLookup> {
    const known = this.#types?.get(groupType);
    if (known !== undefined) return { kind: "found", index: known };
    // Group types are created lazily by ingestion: list again, a new one may have appeared since.
    const listed = await this.#call("GET", "/groups_types/", undefined, "listing group types", options);
    if (listed.kind === "retry" || listed.kind === "fatal") return listed;
    if (listed.kind !== "ok" || !Array.isArray(listed.json)) {
      return {
        kind: "fatal",
        reason: `PostHog answered the group types listing of project ${this.#options.projectId} with no list`,
        action: "Check `project_id` and `app_host`: the project must exist and the key must belong to it.",
        status: 200,
      };
    }
    const types = new Map<string, number>();
    for (const entry of listed.json as unknown[]) {
      if (isObject(entry) && typeof entry.group_type === "string" && typeof entry.group_type_index === "number") {
        types.set(entry.group_type, entry.group_type_index);
      }
    }
    this.#types = types;
    const index = types.get(groupType);
    return index === undefined ? { kind: "missing", existing: [...types.keys()] } : { kind: "found", index };
  }

  /**
   * Whether ingestion can hold `groupType`: it exists, or the project has room for one more. A sixth group type is
   * dropped by ingestion after a 200, so this is the only place the problem can be seen.
   */
  async checkRoom(groupType: string, options?: SendOptions): Promise<GroupTypeLookup | undefined> {
    const lookup = await this.groupType(groupType, options);
    if (lookup.kind === "retry" || lookup.kind === "fatal") return lookup;
    if (lookup.kind === "found" || lookup.existing.length < POSTHOG_MAX_GROUP_TYPES) return undefined;
    return {
      kind: "fatal",
      reason: `PostHog project ${this.#options.projectId} already has ${lookup.existing.length} group types (${lookup.existing.join(", ")}); a group type ${JSON.stringify(groupType)} would be dropped silently by ingestion`,
      action: `PostHog allows at most ${POSTHOG_MAX_GROUP_TYPES} group types per project: use one of the existing ones as the mapping's group_key, or delete a group type in PostHog (Project Settings → Groups).`,
      status: 200,
    };
  }

  /** Removes one property of one group. "gone" (no such group or property) is success for an unset. */
  deleteProperty(index: number, groupKey: string, property: string, options?: SendOptions): Promise<ApiOutcome> {
    const query = `?group_type_index=${index}&group_key=${encodeURIComponent(groupKey)}`;
    return this.#call("POST", `/groups/delete_property/${query}`, { $unset: property }, "delete_property", options);
  }

  /** One group's properties (`GET /groups/find/`, scope group:read); "gone" when there is no such group. */
  find(index: number, groupKey: string, options?: SendOptions): Promise<ApiOutcome> {
    const query = `?group_type_index=${index}&group_key=${encodeURIComponent(groupKey)}&skip_create_notebook=true`;
    return this.#call("GET", `/groups/find/${query}`, undefined, "groups find", options);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #call(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    what: string,
    options?: SendOptions,
  ): Promise<ApiOutcome> {
    try {
      const response = await this.#pool.request({
        path: `${this.#prefix}${path}`,
        method,
        headers: {
          authorization: `Bearer ${this.#options.personalApiKey.reveal()}`,
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: this.#options.timeout,
        bodyTimeout: this.#options.timeout,
        signal: options?.signal,
      });
      const text = await response.body.text();
      return classifyApiResponse(
        { status: response.statusCode, body: text, retryAfter: response.headers["retry-after"], origin: this.#origin },
        what,
      );
    } catch (error) {
      return { kind: "retry", reason: redact(networkReason(error, this.#origin, this.#options.timeout)) };
    }
  }
}
