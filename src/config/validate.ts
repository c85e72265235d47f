/**
 * Validation with zod, reported in our words: every zod issue becomes a ConfigIssue at the offending node, saying
 * what was expected and what was found. Values of secret fields and values that came from the environment are
 * described by their type only.
 */
import { closest, distance } from "fastest-levenshtein";
import { isAlias } from "yaml";
import type { z } from "zod";
import type { ConfigIssue } from "../errors.js";
import { allowedKeys, describeSchema, isSecret, schemaAt } from "./schema-walk.js";
import { type EnvUse, formatPath, issueAt, KEY_LABELS, locate, type PathSegment, type YamlFile } from "./yaml-file.js";

type Issue = z.core.$ZodIssue;

/** Stands for "zod's default message": an issue carrying it gets our wording; any other message is the schema's. */
const DEFAULT_MESSAGE = "\u0000default";

const TYPE_WORDS: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  array: "a list",
};

export interface ValidateOptions {
  /** Leave out issues on values that came from an unset variable: they were reported as unset already. */
  readonly skipUnsetEnv: boolean;
}

/** Validates `data` (the interpolated document) against `schema`. */
export function validate<S extends z.ZodType>(
  schema: S,
  yaml: YamlFile,
  data: unknown,
  options: ValidateOptions,
): { value?: z.output<S>; issues: ConfigIssue[] } {
  const result = schema.safeParse(data, { error: () => DEFAULT_MESSAGE });
  if (result.success) return { value: result.data, issues: [] };
  const describer = new IssueDescriber(schema, yaml, data, options);
  for (const issue of result.error.issues) describer.add(issue, []);
  return { issues: describer.issues };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let value = data;
  for (const segment of path) {
    value = isPlainObject(value) || Array.isArray(value) ? (value as Record<PathSegment, unknown>)[segment] : undefined;
  }
  return value;
}

function kindWord(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "boolean") return "a boolean";
  return `a ${typeof value}`;
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return kindWord(value);
}

/** A sub-issue of a union option: its path is relative to the union. */
function typeMatched(branch: readonly Issue[]): boolean {
  return !branch.some((issue) => issue.code === "invalid_type" && issue.path.length === 0);
}

function expectedOf(issue: Issue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return TYPE_WORDS[issue.expected] ?? `a ${issue.expected}`;
    case "invalid_value":
      return issue.values.length === 1
        ? JSON.stringify(issue.values[0])
        : `one of ${issue.values.map((value) => String(value)).join(", ")}`;
    case "too_small":
    case "too_big": {
      const limit = Number(issue.code === "too_small" ? issue.minimum : issue.maximum);
      if (issue.code === "too_small" && issue.origin === "string" && limit === 1) return "a non-empty string";
      const bound =
        issue.code === "too_small"
          ? `${issue.inclusive === false ? "more than" : "at least"} ${limit}`
          : `${issue.inclusive === false ? "less than" : "at most"} ${limit}`;
      const unit = issue.origin === "string" ? " characters" : issue.origin === "array" ? " items" : "";
      return `${bound}${unit}`;
    }
    case "invalid_format":
      if (issue.format === "url") return "an http:// or https:// URL";
      if (issue.format === "regex") return `a string matching ${issue.pattern}`;
      return `a valid ${issue.format}`;
    case "not_multiple_of":
      return `a multiple of ${issue.divisor}`;
    default:
      return undefined;
  }
}

class IssueDescriber {
  readonly issues: ConfigIssue[] = [];

  constructor(
    private readonly schema: z.core.$ZodType,
    private readonly yaml: YamlFile,
    private readonly data: unknown,
    private readonly options: ValidateOptions,
  ) {}

  add(issue: Issue, prefix: readonly PathSegment[]): void {
    const path = [...prefix, ...issue.path.map((segment) => (typeof segment === "number" ? segment : String(segment)))];
    switch (issue.code) {
      case "unrecognized_keys":
        for (const key of issue.keys) this.push([...path, key], this.unknownKey(key, path), "key");
        return;
      case "invalid_key": {
        const key = String(path.at(-1));
        const label = KEY_LABELS[formatPath(path.slice(0, -1))] ?? "key";
        const why = issue.issues.map((inner) => this.plain(inner)).join("; ");
        this.push(path, `invalid ${label} ${show(key)}: ${why}`, "key");
        return;
      }
      case "invalid_union": {
        // A plain union (a column name, or { column, type }): when the value had the shape of exactly one option,
        // that option's complaints are the useful ones (properties.arr.type, not "invalid input").
        const matched = issue.discriminator === undefined ? issue.errors.filter(typeMatched) : [];
        const best = matched.sort((a, b) => a.length - b.length)[0];
        if (best && best.length > 0) {
          for (const inner of best) this.add(inner, path);
          return;
        }
        const options = "options" in issue ? issue.options : undefined;
        const at = schemaAt(this.schema, path, this.data);
        const expected =
          issue.discriminator !== undefined && options
            ? `one of ${options.map(String).join(", ")}`
            : at
              ? describeSchema(at)
              : "another value";
        this.push(path, this.compose(path, expected));
        return;
      }
      default: {
        const custom = issue.message === DEFAULT_MESSAGE ? undefined : issue.message;
        const expected =
          custom === undefined ? expectedOf(issue) : /^expected /.test(custom) ? custom.slice(9) : undefined;
        this.push(path, expected === undefined ? (custom ?? "is not valid") : this.compose(path, expected));
      }
    }
  }

  /** "expected X; found Y", or "required key … is missing" when there is nothing at the path. */
  private compose(path: readonly PathSegment[], expected: string): string {
    const parent = valueAt(this.data, path.slice(0, -1));
    const last = path.at(-1);
    if (path.length === 0 && (this.data === null || this.data === undefined)) {
      return `the file is empty; expected ${expected}`;
    }
    if (isPlainObject(parent) && last !== undefined && !Object.hasOwn(parent, last)) {
      return `required key "${last}" is missing (expected ${expected})`;
    }
    return `expected ${expected}; found ${this.found(path)}`;
  }

  /** The value at `path`, in words that never reveal a secret or an environment variable's value. */
  private found(path: readonly PathSegment[]): string {
    const value = valueAt(this.data, path);
    const env = this.envUse(path);
    if (env) {
      const names = (list: readonly string[]) => list.map((name) => `\${${name}}`).join(", ");
      if (env.missing.length > 0) return `a placeholder for ${names(env.missing)}, which is not set`;
      return `${kindWord(value)} from ${names(env.variables)}`;
    }
    if (isSecret(schemaAt(this.schema, path, this.data))) return kindWord(value);
    return show(value);
  }

  private envUse(path: readonly PathSegment[]): EnvUse | undefined {
    const { node } = locate(this.yaml, path);
    const target = isAlias(node) ? node.resolve(this.yaml.doc) : node;
    return target ? this.yaml.env.get(target) : undefined;
  }

  /** An issue inside a record key: its message alone. */
  private plain(issue: Issue): string {
    if (issue.message !== DEFAULT_MESSAGE) return issue.message;
    const expected = expectedOf(issue);
    return expected === undefined ? "is not valid" : `expected ${expected}`;
  }

  private unknownKey(key: string, objectPath: readonly PathSegment[]): string {
    const keys = allowedKeys(schemaAt(this.schema, objectPath, this.data), valueAt(this.data, objectPath));
    if (keys.length === 0) return `unknown key ${show(key)}`;
    const near = closest(key, keys);
    if (distance(key, near) <= Math.max(2, Math.floor(near.length / 3))) {
      return `unknown key ${show(key)} (did you mean ${show(near)}?)`;
    }
    return `unknown key ${show(key)}; allowed keys: ${keys.join(", ")}`;
  }

  private push(path: readonly PathSegment[], message: string, at: "value" | "key" = "value"): void {
    const missing = this.envUse(path)?.missing ?? [];
    if (this.options.skipUnsetEnv && missing.length > 0) return;
    this.issues.push({
      ...issueAt(this.yaml, path, message, at),
      ...(missing.length > 0 ? { needsEnv: missing } : {}),
    });
  }
}
