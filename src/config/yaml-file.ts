/**
 * A parsed YAML file that remembers where every node came from, so that any problem found later (by zod, by a
 * cross-check) can be reported at `file:line:column` with its dotted key path.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, type Pair, parseDocument } from "yaml";
import type { ConfigIssue } from "../errors.js";

export type PathSegment = string | number;

/** Where a scalar's value came through `${VAR}` references. */
export interface EnvUse {
  /** Where the scalar is. */
  readonly path: readonly PathSegment[];
  /** Every variable the scalar references. */
  readonly variables: readonly string[];
  /** The ones that were not set and had no default. */
  readonly missing: readonly string[];
}

export interface YamlFile {
  /** The file as shown in issues. */
  readonly file: string;
  readonly doc: Document;
  readonly lines: LineCounter;
  /** Scalars whose value came from the environment: their values must never be echoed. */
  readonly env: ReadonlyMap<Node, EnvUse>;
}

/** What the keys of a map name, by the dotted path of the map: for messages about duplicate or invalid keys. */
export const KEY_LABELS: Record<string, string> = {
  sources: "source name",
  destinations: "destination name",
  syncs: "sync name",
  properties: "property",
};

// The library's own wording suggests an API call, which is no help to someone editing a config file.
const MULTIPLE_DOCS = "the file holds more than one YAML document (a line with ---); it must hold exactly one";

/**
 * Parses one document. Duplicate keys (which YAML forbids) come back as issues; on a syntax error there is no
 * document to go on with, only the issues.
 */
export function parseYaml(file: string, text: string): { yaml?: YamlFile; issues: ConfigIssue[] } {
  const lines = new LineCounter();
  // Duplicate keys are found by our own walk below: it knows their path and the first definition.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((error): ConfigIssue => {
      const { line, col } = lines.linePos(error.pos[0]);
      const message = error.code === "MULTIPLE_DOCS" ? MULTIPLE_DOCS : `YAML syntax error: ${error.message}`;
      return { file, line, column: col, path: "", message };
    });
    return { issues };
  }
  const yaml: YamlFile = { file, doc, lines, env: new Map() };
  const issues: ConfigIssue[] = [];
  findDuplicateKeys(yaml, doc.contents, [], issues);
  return { yaml, issues };
}

function findDuplicateKeys(yaml: YamlFile, node: unknown, path: PathSegment[], issues: ConfigIssue[]): void {
  if (isSeq(node))
    for (const [index, item] of node.items.entries()) findDuplicateKeys(yaml, item, [...path, index], issues);
  if (!isMap(node)) return;
  const seen = new Map<string, Pair>();
  for (const pair of node.items) {
    const key = keyText(pair.key);
    const first = seen.get(key);
    if (first) {
      const label = KEY_LABELS[formatPath(path)] ?? "key";
      const firstLine = positionOf(yaml, first.key as Node).line;
      issues.push(
        issueAtNode(
          yaml,
          pair.key as Node,
          [...path, key],
          `duplicate ${label} "${key}" (first defined at line ${firstLine})`,
        ),
      );
    } else {
      seen.set(key, pair);
    }
    findDuplicateKeys(yaml, pair.value, [...path, key], issues);
  }
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

/** A dotted key path: `properties.arr.type`, `tags[0]`, `properties["a.b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z0-9_$-]+$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

export interface Located {
  /** The node at the path, when the path exists. */
  readonly node?: Node;
  /** The key of the last segment, when it is a map key. */
  readonly key?: Node;
  /** The deepest node on the path that exists (the parent map, for a missing key). */
  readonly nearest?: Node;
}

/** Finds the node at `path`. Duplicate keys resolve to the last one, as in the parsed value. */
export function locate(yaml: YamlFile, path: readonly PathSegment[]): Located {
  let node: Node | undefined = (yaml.doc.contents ?? undefined) as Node | undefined;
  let key: Node | undefined;
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(yaml.doc) as Node | undefined;
    let next: Node | undefined;
    if (isMap(node)) {
      const pair = node.items.findLast((item) => keyText(item.key) === String(segment));
      next = pair ? ((pair.value ?? undefined) as Node | undefined) : undefined;
      key = pair?.key as Node | undefined;
      if (pair && next === undefined) return { ...(key ? { key, nearest: key } : {}) };
    } else if (isSeq(node) && typeof segment === "number") {
      next = node.items[segment] as Node | undefined;
      key = undefined;
    }
    if (next === undefined) return node ? { nearest: node } : {};
    node = next;
  }
  return node ? { node, nearest: node, ...(key ? { key } : {}) } : {};
}

/** 1-based position of a node; the document start for none. */
export function positionOf(yaml: YamlFile, node: Node | undefined): { line: number; column: number } {
  const offset = node?.range?.[0];
  if (offset === undefined) return { line: 1, column: 1 };
  const { line, col } = yaml.lines.linePos(offset);
  return { line, column: col };
}

export function issueAtNode(
  yaml: YamlFile,
  node: Node | undefined,
  path: readonly PathSegment[],
  message: string,
): ConfigIssue {
  return { file: yaml.file, ...positionOf(yaml, node), path: formatPath(path), message };
}

/**
 * An issue at `path`: at its value (or at its key with `at: "key"`); for a path that does not exist, at the
 * deepest part that does (the parent map of a missing key).
 */
export function issueAt(
  yaml: YamlFile,
  path: readonly PathSegment[],
  message: string,
  at: "value" | "key" = "value",
): ConfigIssue {
  const found = locate(yaml, path);
  let node = at === "key" ? (found.key ?? found.nearest) : found.nearest;
  // An empty value (`key:` and nothing) has no text of its own: point at its key.
  if (isScalar(node) && node.range && node.range[0] === node.range[1] && found.key) node = found.key;
  return issueAtNode(yaml, node, path, message);
}
