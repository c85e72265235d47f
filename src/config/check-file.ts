/**
 * One YAML file through the pure steps every file takes: parse (positions kept) → interpolate `${ENV}` → validate
 * with zod. Cross-checks come after, in load.ts, as they need to see several files.
 */
import { readFile } from "node:fs/promises";
import { isAbsolute, relative } from "node:path";
import type { z } from "zod";
import type { ConfigIssue } from "../errors.js";
import { interpolateDocument } from "./interpolate.js";
import { applyEnvTypes } from "./schema-walk.js";
import { validate } from "./validate.js";
import { parseYaml, type YamlFile } from "./yaml-file.js";

export interface Settings {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly missingEnv: "error" | "collect";
}

/** One file after parse → interpolate → validate. */
export interface CheckedFile<T> {
  /** The interpolated document; absent after a YAML syntax error. */
  readonly yaml?: YamlFile;
  /** The interpolated document as plain data, for cross-checks. */
  readonly raw?: unknown;
  /** The validated value; absent when validation failed. */
  readonly value?: T;
  readonly issues: readonly ConfigIssue[];
  readonly missing: readonly string[];
}

export type ReadResult = { readonly text: string } | { readonly reason: string };

/** Reads a file; a failure comes back as a reason ("not found"), for a message. */
export async function readText(path: string): Promise<ReadResult> {
  try {
    return { text: await readFile(path, "utf8") };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { reason: "not found" };
    if (code === "EISDIR") return { reason: "is a folder, not a file" };
    return { reason: `cannot be read (${code ?? "unknown error"})` };
  }
}

/** Parse → interpolate → validate, for one file's text. Pure. */
export function checkYamlText<S extends z.ZodType>(
  file: string,
  text: string,
  schema: S,
  settings: Settings,
): CheckedFile<z.output<S>> {
  const parsed = parseYaml(file, text);
  if (!parsed.yaml) return { issues: parsed.issues, missing: [] };
  const { yaml, issues: envIssues, missing } = interpolateDocument(parsed.yaml, settings);
  let raw: unknown;
  try {
    raw = yaml.doc.toJS();
  } catch (error) {
    // Aliases that expand too far (a "billion laughs" document) end here.
    const message = `cannot be read as data: ${(error as Error).message}`;
    return { issues: [...parsed.issues, ...envIssues, { file, path: "", message }], missing };
  }
  applyEnvTypes(schema, raw, yaml.env.values());
  const validated = validate(schema, yaml, raw, { skipUnsetEnv: settings.missingEnv === "error" });
  const issues = [...parsed.issues, ...envIssues, ...validated.issues];
  return { yaml, raw, ...(validated.value !== undefined ? { value: validated.value } : {}), issues, missing };
}

/** A path as the user would like to read it: relative to the working folder when it is inside it. */
export function displayPath(path: string): string {
  const shown = relative(process.cwd(), path);
  return shown === "" || shown.startsWith("..") || isAbsolute(shown) ? path : shown;
}
