/**
 * What PostHog does with what it receives: the pure half of the contract receiver. Capture refuses a batch as a
 * whole for a malformed event (400, plain text; `rust/capture/src/api.rs`); ingestion then applies
 * `$groupidentify` events one by one, silently dropping those it cannot take (a sixth group type, a key over 400
 * characters, `$process_person_profile: false`). `$group_set` is merged into the group; `null` is stored as a value
 * (`nodejs/src/worker/ingestion/groups/group-update.ts`). The REST API removes one property at a time.
 */

/** "maximum event size exceeded": capture's Kafka message limit. */
export const MAX_EVENT_BYTES = 1_000_000;
/** `$group_type` and `$group_key` longer than this are dropped by ingestion. */
export const MAX_KEY_LENGTH = 400;
/** `MAX_GROUP_TYPES_PER_TEAM`. */
export const MAX_GROUP_TYPES = 5;

/** One project's groups, as PostHog holds them. */
export interface ProjectState {
  /** Group type names by `group_type_index` (0–4), in the order ingestion created them. */
  readonly groupTypes: string[];
  /** `${group_type}|${group_key}` → group properties. */
  readonly groups: Map<string, Record<string, unknown>>;
}

/** Why capture refuses the whole batch because of this event (HTTP 400), or `undefined`. */
export function captureViolation(event: unknown): string | undefined {
  if (!isObject(event)) return "failed to decode request: an event must be a JSON object";
  const bytes = Buffer.byteLength(JSON.stringify(event));
  if (bytes > MAX_EVENT_BYTES) return "maximum event size exceeded";
  if (typeof event.event !== "string" || event.event === "") return "event submitted with an empty event name";
  const properties = isObject(event.properties) ? event.properties : {};
  const distinctId = event.distinct_id ?? event.$distinct_id ?? properties.distinct_id;
  if (distinctId === undefined || distinctId === null) return "event submitted without a distinct_id";
  if (String(distinctId).trim() === "") return "event submitted with an empty distinct_id";
  return undefined;
}

/** Applies one accepted event; returns why ingestion dropped it, or `undefined` when applied (or not a group event). */
export function ingestEvent(state: ProjectState, event: Record<string, unknown>): string | undefined {
  if (event.event !== "$groupidentify") return undefined;
  const properties = isObject(event.properties) ? event.properties : {};
  if (properties.$process_person_profile === false) return "$process_person_profile is false";
  const type = properties.$group_type;
  const key = properties.$group_key;
  if (typeof type !== "string" || typeof key !== "string" || type === "" || key === "") {
    return "$group_type and $group_key must be non-empty strings";
  }
  if (type.length > MAX_KEY_LENGTH || key.length > MAX_KEY_LENGTH) return "group_key_too_long";
  if (!state.groupTypes.includes(type)) {
    if (state.groupTypes.length >= MAX_GROUP_TYPES) return `no room for a sixth group type (${type})`;
    state.groupTypes.push(type);
  }
  const id = `${type}|${key}`;
  const group = state.groups.get(id) ?? {};
  if (isObject(properties.$group_set)) Object.assign(group, structuredClone(properties.$group_set));
  state.groups.set(id, group);
  return undefined;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
