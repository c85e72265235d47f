/**
 * The documented rules of one /groups update object, and how each operation changes a profile: the pure half of the
 * contract receiver. Shapes from Mixpanel's OpenAPI `/groups#…` operations (reference/mixpanel.md §1) and the
 * Hierarchical Groups rules (bare `$company_id`; a company profile's `$group_id` is its `$company_id`).
 */

export const OPERATIONS = ["$set", "$set_once", "$unset", "$union", "$remove", "$delete"] as const;
const MODIFIERS = ["$ip", "$time", "$ignore_time", "$ignore_alias", "$latitude", "$longitude"];
const IDENTITY = ["$token", "$group_key", "$group_id", "$company_id"];
const KNOWN = new Set<string>([...IDENTITY, ...MODIFIERS, ...OPERATIONS]);

/** "each individual update in the request to a maximum of 1 MB" (reference/limits). */
export const MAX_UPDATE_BYTES = 1_000_000;

/** Why an update object is invalid. */
export interface Violation {
  /** The key at fault, `""` for the object as a whole. */
  readonly field: string;
  readonly message: string;
}

export type Profiles = Map<string, Record<string, unknown>>;

/** The receiver's profile key: `${group_key}|${company_id ?? ""}|${group_id}`. */
export function profileKey(update: Record<string, unknown>): string {
  const company = typeof update.$company_id === "string" ? update.$company_id : "";
  return `${String(update.$group_key)}|${company}|${String(update.$group_id)}`;
}

/** The first rule `update` breaks, or `undefined`. */
export function validateUpdate(update: unknown, hierarchical: boolean): Violation | undefined {
  if (!isObject(update)) return { field: "", message: "an update must be a JSON object" };
  const bytes = Buffer.byteLength(JSON.stringify(update));
  if (bytes > MAX_UPDATE_BYTES) return { field: "", message: `update is ${bytes} bytes, over the 1 MB limit` };
  for (const key of Object.keys(update)) {
    if (!KNOWN.has(key)) return { field: key, message: `unknown key ${key}` };
  }
  for (const field of ["$group_key", "$group_id"]) {
    if (typeof update[field] !== "string" || update[field] === "") {
      return { field, message: `${field} must be a non-empty string` };
    }
  }
  const company = update.$company_id;
  if (hierarchical) {
    if (typeof company !== "string" || company === "") {
      return { field: "$company_id", message: "$company_id is required (a non-empty string) in Hierarchical Groups" };
    }
    if (company.startsWith("$company:")) {
      return { field: "$company_id", message: "$company_id must be the bare id, not the $company: prefixed form" };
    }
    if (update.$group_key === "$company_id" && update.$group_id !== company) {
      return { field: "$group_id", message: "for $group_key $company_id, $group_id must equal $company_id" };
    }
  } else if (company !== undefined) {
    return { field: "$company_id", message: "$company_id is only accepted by Hierarchical Groups projects" };
  }
  const operations = OPERATIONS.filter((operation) => operation in update);
  if (operations.length !== 1) {
    return {
      field: operations[1] ?? "",
      message: `an update needs exactly one of ${OPERATIONS.join(", ")}; found ${operations.length === 0 ? "none" : operations.join(", ")}`,
    };
  }
  const operation = operations[0]!;
  const problem = checkOperation(operation, update[operation]);
  return problem === undefined ? undefined : { field: operation, message: `${operation} ${problem}` };
}

function checkOperation(operation: (typeof OPERATIONS)[number], value: unknown): string | undefined {
  switch (operation) {
    case "$set":
    case "$set_once":
      return isObject(value) ? undefined : "must be an object of properties";
    case "$unset":
      return Array.isArray(value) && value.length > 0 && value.every((name) => typeof name === "string" && name !== "")
        ? undefined
        : "must be a non-empty array of property names";
    case "$union":
      if (!isObject(value) || Object.keys(value).length === 0) return "must be a non-empty object";
      return Object.values(value).every(
        (list) => Array.isArray(list) && list.length > 0 && list.every((item) => isScalar(item)),
      )
        ? undefined
        : "values must be non-empty arrays of strings or numbers";
    case "$remove":
      if (!isObject(value) || Object.keys(value).length === 0) return "must be a non-empty object";
      return Object.values(value).every(isScalar) ? undefined : "values must be strings or numbers";
    case "$delete":
      return undefined;
  }
}

/** Applies a valid update to `profiles`. */
export function applyUpdate(profiles: Profiles, update: Record<string, unknown>): void {
  const key = profileKey(update);
  const existing = profiles.get(key);
  const create = () => {
    const profile = existing ?? {};
    profiles.set(key, profile);
    return profile;
  };
  if (isObject(update.$set)) Object.assign(create(), structuredClone(update.$set));
  if (isObject(update.$set_once)) {
    const profile = create();
    for (const [name, value] of Object.entries(update.$set_once)) {
      if (!(name in profile)) profile[name] = structuredClone(value);
    }
  }
  if (Array.isArray(update.$unset) && existing) {
    for (const name of update.$unset) delete existing[name as string];
  }
  if (isObject(update.$union)) {
    const profile = create();
    for (const [name, values] of Object.entries(update.$union)) {
      const list = Array.isArray(profile[name]) ? [...(profile[name] as unknown[])] : [];
      for (const value of values as unknown[]) if (!list.includes(value)) list.push(value);
      profile[name] = list;
    }
  }
  if (isObject(update.$remove) && existing) {
    for (const [name, value] of Object.entries(update.$remove)) {
      const list = existing[name];
      if (Array.isArray(list)) existing[name] = list.filter((item) => item !== value);
    }
  }
  if ("$delete" in update) profiles.delete(key);
}

function isScalar(value: unknown): boolean {
  return typeof value === "string" || typeof value === "number";
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
