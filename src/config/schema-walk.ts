/**
 * Reads our zod schemas as data: which schema sits at a key path, which keys an object allows, whether a field is
 * marked secret. Used to word error messages; validation itself is zod's.
 */
import { z } from "zod";

type Schema = z.core.$ZodType;

/** The parts of zod's schema definitions we read (zod 4 `_zod.def`). */
interface Def {
  readonly type: string;
  readonly shape?: Readonly<Record<string, Schema>>;
  readonly valueType?: Schema;
  readonly element?: Schema;
  readonly options?: readonly Schema[];
  readonly discriminator?: string;
  readonly innerType?: Schema;
  readonly in?: Schema;
  readonly values?: readonly unknown[];
  readonly entries?: Readonly<Record<string, unknown>>;
}

const WRAPPERS = new Set(["optional", "default", "prefault", "nullable", "nonoptional", "readonly", "catch"]);

function def(schema: Schema): Def {
  return schema._zod.def as unknown as Def;
}

/** The schema and every schema it wraps (optional, default, the input side of a transform…), outermost first. */
function unwrapChain(schema: Schema): Schema[] {
  const chain = [schema];
  for (;;) {
    const d = def(chain[chain.length - 1] as Schema);
    const inner = WRAPPERS.has(d.type) ? d.innerType : d.type === "pipe" ? d.in : undefined;
    if (!inner) return chain;
    chain.push(inner);
  }
}

function core(schema: Schema): Schema {
  return unwrapChain(schema).at(-1) as Schema;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const KIND_OF_TYPE: Record<string, string> = { object: "object", record: "object", array: "array" };

function kindOf(value: unknown): string {
  return Array.isArray(value) ? "array" : isPlainObject(value) ? "object" : typeof value;
}

/** For a union, the option the value was meant for: by discriminator, or by the value's kind. */
function pickOption(schema: Schema, value: unknown): Schema {
  const d = def(schema);
  if (d.type !== "union" || !d.options) return schema;
  if (d.discriminator !== undefined && isPlainObject(value)) {
    const tag = value[d.discriminator];
    const match = d.options.find((option) => {
      const field = def(core(option)).shape?.[d.discriminator as string];
      return field !== undefined && (def(core(field)).values ?? []).includes(tag);
    });
    return match ? core(match) : schema;
  }
  const kind = kindOf(value);
  const match = d.options.find((option) => {
    const type = def(core(option)).type;
    return (KIND_OF_TYPE[type] ?? type) === kind;
  });
  return match ? core(match) : schema;
}

/** The schema validating the value at `path` of `data`, if the path leads anywhere. */
export function schemaAt(root: Schema, path: readonly PropertyKey[], data: unknown): Schema | undefined {
  let schema = root;
  let value = data;
  for (const segment of path) {
    const current = pickOption(core(schema), value);
    const d = def(current);
    const next = d.type === "object" ? d.shape?.[String(segment)] : d.type === "record" ? d.valueType : d.element;
    if (!next) return undefined;
    schema = next;
    value = isPlainObject(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[segment] : undefined;
  }
  return schema;
}

/** The keys an object schema allows (after picking the union option the value was meant for). */
export function allowedKeys(schema: Schema | undefined, value: unknown): string[] {
  if (!schema) return [];
  const d = def(pickOption(core(schema), value));
  return d.type === "object" && d.shape ? Object.keys(d.shape) : [];
}

/** Whether the field is marked `.meta({ secret: true })`. */
export function isSecret(schema: Schema | undefined): boolean {
  return schema !== undefined && unwrapChain(schema).some((s) => z.globalRegistry.get(s)?.secret === true);
}

/** "a string", "a mapping with keys column, type", …: what a schema accepts, in words. */
export function describeSchema(schema: Schema): string {
  const d = def(core(schema));
  switch (d.type) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "boolean":
      return "true or false";
    case "object":
      return `a mapping with keys ${Object.keys(d.shape ?? {}).join(", ")}`;
    case "record":
      return "a mapping";
    case "array":
      return "a list";
    case "enum":
      return `one of ${Object.values(d.entries ?? {}).join(", ")}`;
    case "literal":
      return (d.values ?? []).map((value) => JSON.stringify(value)).join(" or ");
    case "union":
      return (d.options ?? []).map(describeSchema).join(" or ");
    default:
      return d.type;
  }
}

/** The core types a schema accepts: `["number", "string"]` for a duration. */
function acceptedTypes(schema: Schema): string[] {
  const d = def(core(schema));
  return d.type === "union" ? (d.options ?? []).flatMap(acceptedTypes) : [d.type];
}

const NUMBER = /^-?\d+(\.\d+)?$/;

/**
 * Environment variables only hold strings. Where the schema wants a number or a boolean, a string from the
 * environment that spells one (`1000`, `true`) becomes one, so `batch_size: ${BATCH_SIZE:-200}` works.
 * Changes `data` in place.
 */
export function applyEnvTypes(
  root: Schema,
  data: unknown,
  uses: Iterable<{ readonly path: readonly PropertyKey[] }>,
): void {
  for (const { path } of uses) {
    const parent = path.length > 0 ? valueAtPath(data, path.slice(0, -1)) : undefined;
    const key = path.at(-1);
    if (!isPlainObject(parent) && !Array.isArray(parent)) continue;
    const container = parent as Record<PropertyKey, unknown>;
    const value = container[key as PropertyKey];
    const schema = schemaAt(root, path, data);
    if (typeof value !== "string" || !schema) continue;
    const types = acceptedTypes(schema);
    if (types.includes("number") && NUMBER.test(value)) container[key as PropertyKey] = Number(value);
    else if (types.includes("boolean") && (value === "true" || value === "false")) {
      container[key as PropertyKey] = value === "true";
    }
  }
}

function valueAtPath(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const segment of path) {
    value = isPlainObject(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[segment] : undefined;
  }
  return value;
}
