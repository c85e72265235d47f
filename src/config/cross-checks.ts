/**
 * Checks that a schema cannot express: references between entries, and a mapping's fit with the destination of
 * each sync using it. They read the interpolated document (not zod's output), so they run, and report, even when
 * another part of the file is invalid. (Plain http to a remote api_host is refused by the Mixpanel schema.)
 */
import { closest, distance } from "fastest-levenshtein";
import { MIXPANEL_MAX_PROPERTIES, MIXPANEL_RESERVED_PROPERTIES } from "../../connectors/mixpanel/config.js";
import { POSTHOG_MAX_GROUP_TYPES } from "../../connectors/posthog/config.js";
import type { ConfigIssue } from "../errors.js";
import type { MappingConfig } from "./schema.js";
import { issueAt, locate, type PathSegment, type YamlFile } from "./yaml-file.js";

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** A value for a message: quoted, unless it came from the environment (then only the variable is named). */
function shown(yaml: YamlFile, path: readonly PathSegment[], value: string): string {
  const { node } = locate(yaml, path);
  const env = node ? yaml.env.get(node) : undefined;
  return env ? `the value of ${env.variables.map((name) => `\${${name}}`).join(", ")}` : JSON.stringify(value);
}

function suggestion(value: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return "";
  const near = closest(value, candidates as string[]);
  return distance(value, near) <= 2 ? ` (did you mean "${near}"?)` : "";
}

/** Cross-checks of sync.config.yaml. */
export function checkConfig(yaml: YamlFile, raw: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const root = asRecord(raw);
  const entries = {
    source: asRecord(root?.sources) ?? {},
    destination: asRecord(root?.destinations) ?? {},
  };
  for (const [name, value] of Object.entries(asRecord(root?.syncs) ?? {})) {
    const sync = asRecord(value);
    for (const field of ["source", "destination"] as const) {
      const ref = sync?.[field];
      if (typeof ref !== "string" || Object.hasOwn(entries[field], ref)) continue;
      const path = ["syncs", name, field];
      const names = Object.keys(entries[field]);
      const existing = names.length > 0 ? `${field}s: ${names.join(", ")}` : `there are no ${field}s`;
      issues.push(
        issueAt(yaml, path, `no ${field} named ${shown(yaml, path, ref)}${suggestion(ref, names)}; ${existing}`),
      );
    }
  }
  return issues;
}

/** Cross-checks of a mapping file on its own. */
export function checkMapping(yaml: YamlFile, raw: unknown): ConfigIssue[] {
  const mapping = asRecord(raw);
  if (!mapping) return [];
  const hasFrom = mapping.from !== undefined;
  const hasQuery = mapping.query !== undefined;
  if (hasFrom && hasQuery) {
    return [issueAt(yaml, ["query"], "give either from (a table or view) or query (a SQL query), not both", "key")];
  }
  if (!hasFrom && !hasQuery) {
    return [
      issueAt(
        yaml,
        ["from"],
        'required key "from" or "query" is missing: give a table or view, or a read-only SQL query',
      ),
    ];
  }
  return [];
}

/** How a sync uses a mapping: what its destination requires of it. */
export interface MappingUse {
  readonly sync: string;
  readonly destination: string;
  /** The destination's `type`. */
  readonly type: unknown;
  readonly hierarchical: boolean;
}

/** Cross-checks of a mapping against the destination of one sync that uses it. */
export function checkMappingUse(yaml: YamlFile, raw: unknown, use: MappingUse): ConfigIssue[] {
  const mapping = asRecord(raw);
  if (!mapping) return [];
  const issues: ConfigIssue[] = [];
  if (mapping.user_id !== undefined && use.type !== "segment") {
    issues.push(
      issueAt(
        yaml,
        ["user_id"],
        `user_id names the user of Segment group calls; sync "${use.sync}" sends to destination "${use.destination}" (${String(use.type)}), which has no use for it: remove it`,
        "key",
      ),
    );
  }
  if (use.hierarchical && mapping.company_id === undefined) {
    issues.push(
      issueAt(
        yaml,
        ["company_id"],
        `required key "company_id" is missing: sync "${use.sync}" sends to destination "${use.destination}", ` +
          "which is hierarchical; name the column holding the Company ID",
      ),
    );
  }
  const properties = asRecord(mapping.properties);
  if (properties) issues.push(...unsupportedPropertyOps(yaml, properties, use));
  if (use.type !== "mixpanel" || !properties) return issues;
  const reserved: readonly string[] = MIXPANEL_RESERVED_PROPERTIES;
  for (const name of Object.keys(properties)) {
    if (!name.startsWith("$") || reserved.includes(name)) continue;
    const hint = suggestion(name, reserved) || `; reserved names: ${reserved.join(", ")}`;
    issues.push(
      issueAt(
        yaml,
        ["properties", name],
        `"${name}" is not a Mixpanel reserved profile property; non-reserved names must not start with "$"${hint}`,
        "key",
      ),
    );
  }
  const count = Object.keys(properties).length;
  if (count > MIXPANEL_MAX_PROPERTIES) {
    issues.push(
      issueAt(
        yaml,
        ["properties"],
        `${count} properties; Mixpanel allows at most ${MIXPANEL_MAX_PROPERTIES} on one profile`,
        "key",
      ),
    );
  }
  return issues;
}

/** Per-property operations a destination cannot apply, with why and what to use instead. */
const UNSUPPORTED_OPS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  posthog: {
    set_once:
      "PostHog ingestion has no set-once for group properties ($groupidentify only merges $group_set); use op: set",
    union:
      "PostHog has no list union or remove for group properties; use op: set to send the whole list (it replaces the list in PostHog)",
  },
  segment: {
    set_once: "Segment group calls have no set-once (traits are merged, a trait sent again overwrites); use op: set",
    union:
      "Segment group calls cannot add or remove list items (a trait sent again replaces the list); use op: set to send the whole list",
  },
};

function unsupportedPropertyOps(yaml: YamlFile, properties: Record<string, unknown>, use: MappingUse): ConfigIssue[] {
  const refused = UNSUPPORTED_OPS[String(use.type)];
  if (!refused) return [];
  const issues: ConfigIssue[] = [];
  for (const [name, spec] of Object.entries(properties)) {
    const op = asRecord(spec)?.op;
    if (typeof op !== "string" || refused[op] === undefined) continue;
    issues.push(
      issueAt(
        yaml,
        ["properties", name, "op"],
        `op: ${op} cannot be used with destination "${use.destination}" of sync "${use.sync}": ${refused[op]}`,
      ),
    );
  }
  return issues;
}

/** A mapping file as loaded, by sync name (what `loadConfig` knows once every mapping was read). */
export interface LoadedMappingFile {
  readonly value?: MappingConfig;
  readonly yaml?: YamlFile;
}

/** Destinations that cannot delete one group: mirror mode must unset or ignore instead. */
const NO_GROUP_DELETE: Readonly<Record<string, string>> = {
  posthog: "PostHog has no API that deletes one group",
  segment: "Segment's Tracking API has no call that deletes a group",
};

/**
 * Cross-checks of the syncs against their destinations that need the mapping files too: what a destination cannot
 * do (delete a group; attribute a Segment call to nobody), and PostHog's limit of group types per project, summed
 * over every sync that writes to the same project.
 */
export function checkSyncDestinations(
  yaml: YamlFile,
  raw: unknown,
  mappings: ReadonlyMap<string, LoadedMappingFile>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const destinations = asRecord(asRecord(raw)?.destinations) ?? {};
  /** PostHog projects (host + project API key) → group type → the syncs using it. */
  const projects = new Map<string, { destinations: Set<string>; types: Map<string, string[]> }>();
  for (const [name, value] of Object.entries(asRecord(asRecord(raw)?.syncs) ?? {})) {
    const sync = asRecord(value);
    const destinationName = typeof sync?.destination === "string" ? sync.destination : undefined;
    const destination = destinationName === undefined ? undefined : asRecord(destinations[destinationName]);
    const mapping = mappings.get(name);
    if (!destination || !destinationName || !mapping?.value) continue;
    const type = destination.type;

    const cannot = typeof type === "string" ? NO_GROUP_DELETE[type] : undefined;
    if (cannot && sync?.mode === "mirror" && mapping.value.on_delete === "delete") {
      const fix = `; set on_delete: unset (removes the group's properties) or on_delete: ignore in the mapping file`;
      const explicit = mapping.yaml && locate(mapping.yaml, ["on_delete"]).node;
      issues.push(
        explicit && mapping.yaml
          ? issueAt(
              mapping.yaml,
              ["on_delete"],
              `sync "${name}" mirrors to destination "${destinationName}": ${cannot}${fix}`,
            )
          : issueAt(
              yaml,
              ["syncs", name, "mode"],
              `mirror mode deletes groups that left the source (on_delete defaults to delete), but ${cannot}${fix}`,
            ),
      );
    }

    if (type === "segment" && mapping.value.user_id === undefined && destination.anonymous_id === undefined) {
      issues.push(
        issueAt(
          yaml,
          ["syncs", name, "destination"],
          `Segment requires a userId or an anonymousId on every group call: name a user_id column in the mapping file of sync "${name}", or set anonymous_id on destination "${destinationName}"`,
        ),
      );
    }

    if (type === "posthog") {
      const project = `${String(destination.host ?? "us")}|${String(destination.project_api_key)}`;
      const entry = projects.get(project) ?? { destinations: new Set(), types: new Map() };
      projects.set(project, entry);
      entry.destinations.add(destinationName);
      const syncs = entry.types.get(mapping.value.group_key) ?? [];
      entry.types.set(mapping.value.group_key, [...syncs, name]);
    }
  }
  for (const { destinations: names, types } of projects.values()) {
    if (types.size <= POSTHOG_MAX_GROUP_TYPES) continue;
    const first = [...names][0] as string;
    const list = [...types].map(([groupType, syncs]) => `${groupType} (${syncs.join(", ")})`).join(", ");
    issues.push(
      issueAt(
        yaml,
        ["destinations", first],
        `${types.size} group types are synced to one PostHog project (${list}); PostHog allows at most ${POSTHOG_MAX_GROUP_TYPES} per project and silently drops events of any other: use fewer distinct group_key values`,
        "key",
      ),
    );
  }
  return issues;
}
