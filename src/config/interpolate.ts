/**
 * `${VAR}` interpolation in string scalars. `${VAR:-default}` uses the default when VAR is unset or empty; `$${`
 * is a literal `${`. Values come from the environment and often hold secrets: nothing here puts a value into a
 * message.
 */
import { isMap, isPair, isScalar, isSeq, type Node } from "yaml";
import type { ConfigIssue } from "../errors.js";
import { type EnvUse, issueAtNode, type PathSegment, type YamlFile } from "./yaml-file.js";

export interface Interpolated {
  readonly value: string;
  /** Every variable referenced, in order. */
  readonly variables: readonly string[];
  /** Referenced variables that were unset and had no default. */
  readonly missing: readonly string[];
  /** Malformed references, as messages. */
  readonly errors: readonly string[];
}

const REFERENCE = /\$\$\{|\$\{([^}]*)(\})?/g;
const NAME_AND_DEFAULT = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;
const HOW = "write ${NAME} or ${NAME:-default}, and $${ for a literal ${";

/** Interpolates one string. `placeholder` stands in for a variable that is unset and has no default. */
export function interpolateString(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  placeholder: (name: string) => string = () => "",
): Interpolated {
  const variables: string[] = [];
  const missing: string[] = [];
  const errors: string[] = [];
  const value = text.replace(REFERENCE, (match, inner: string | undefined, close: string | undefined) => {
    if (match === "$${") return "${";
    const shown = match.length > 40 ? `${match.slice(0, 40)}…` : match;
    if (close === undefined) {
      errors.push(`unclosed reference "${shown}": ${HOW}`);
      return match;
    }
    const parsed = NAME_AND_DEFAULT.exec(inner ?? "");
    if (!parsed || parsed[2]?.includes("${")) {
      errors.push(`invalid reference "${shown}": ${HOW} (a default cannot contain a reference)`);
      return match;
    }
    const name = parsed[1] as string;
    const fallback = parsed[2];
    variables.push(name);
    const set = env[name];
    if (set !== undefined && !(fallback !== undefined && set === "")) return set;
    if (fallback !== undefined) return fallback;
    missing.push(name);
    return placeholder(name);
  });
  return { value, variables, missing, errors };
}

/**
 * A stand-in for an unset variable in "collect" mode: an https URL on the reserved `.invalid` domain passes the
 * checks of the common string fields (non-empty secrets, URLs), so the rest of the file can still be validated.
 */
export function missingEnvPlaceholder(name: string): string {
  return `https://unset.invalid/${name}`;
}

export interface InterpolateOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** "error": an unset variable is an issue. "collect": it is only recorded, and a placeholder is used. */
  readonly missingEnv: "error" | "collect";
}

/**
 * Interpolates every string value (keys are left alone) of a copy of the document. Returns the copy, with a
 * record of which scalars took their value from the environment.
 */
export function interpolateDocument(
  yaml: YamlFile,
  options: InterpolateOptions,
): { yaml: YamlFile; issues: ConfigIssue[]; missing: string[] } {
  const doc = yaml.doc.clone();
  const env = new Map<Node, EnvUse>();
  const out: YamlFile = { ...yaml, doc, env };
  const issues: ConfigIssue[] = [];
  const missing: string[] = [];

  const visit = (node: unknown, path: PathSegment[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isPair(pair)) visit(pair.value, [...path, isScalar(pair.key) ? String(pair.key.value) : String(pair.key)]);
      }
    } else if (isSeq(node)) {
      for (const [index, item] of node.items.entries()) visit(item, [...path, index]);
    } else if (isScalar(node) && typeof node.value === "string" && node.value.includes("${")) {
      const result = interpolateString(node.value, options.env, missingEnvPlaceholder);
      node.value = result.value;
      if (result.variables.length > 0) env.set(node, { path, variables: result.variables, missing: result.missing });
      for (const message of result.errors) issues.push(issueAtNode(out, node, path, message));
      for (const name of result.missing) {
        missing.push(name);
        if (options.missingEnv === "error") {
          issues.push(
            issueAtNode(
              out,
              node,
              path,
              `environment variable ${name} is not set (set it, or write \${${name}:-default})`,
            ),
          );
        }
      }
    }
  };
  visit(doc.contents, []);
  return { yaml: out, issues, missing };
}
