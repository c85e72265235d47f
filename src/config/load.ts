/**
 * Loads sync.config.yaml and every mapping file it names. Each file goes through the same pure steps: parse YAML
 * (keeping positions) → interpolate `${ENV}` → validate with zod → cross-checks. Every problem in every file is
 * collected, and thrown together as one ConfigError.
 */
import { dirname, resolve } from "node:path";
import { isMap, isScalar } from "yaml";
import { ConfigError, type ConfigIssue, formatConfigIssue } from "../errors.js";
import { type CheckedFile, checkYamlText, displayPath, readText, type Settings } from "./check-file.js";
import { asRecord, checkConfig, checkMapping, checkMappingUse, checkSyncDestinations } from "./cross-checks.js";
import {
  type Config,
  configSchema,
  type DestinationConfig,
  type MappingConfig,
  mappingSchema,
  type SourceConfig,
  type SyncConfig,
} from "./schema.js";
import { issueAt, locate, type PathSegment, positionOf, type YamlFile } from "./yaml-file.js";

export interface LoadedSync {
  /** The sync's name: its key under `syncs`. */
  readonly name: string;
  readonly sync: SyncConfig;
  /** The parsed mapping file. */
  readonly mapping: MappingConfig;
  /** Absolute path of the mapping file (written relative to the config file's folder). */
  readonly mappingFile: string;
  readonly source: { readonly name: string; readonly config: SourceConfig };
  readonly destination: { readonly name: string; readonly config: DestinationConfig };
  /** Line and column of a key path in the mapping file, for errors found later (a column the table lacks). */
  readonly locateInMapping: (path: readonly PathSegment[]) => { line: number; column: number } | undefined;
}

export interface LoadedConfig {
  /** Absolute path of sync.config.yaml. */
  readonly file: string;
  /** Absolute: `state_dir` resolved relative to the config file's folder. */
  readonly stateDir: string;
  readonly config: Config;
  /** In file order. */
  readonly syncs: readonly LoadedSync[];
  /** Environment variables that were not set (only ever non-empty in "collect" mode). */
  readonly missingEnv: readonly string[];
}

export interface LoadOptions {
  /** Where `${VAR}` values come from; default `process.env`. */
  readonly env?: Record<string, string | undefined>;
  /**
   * "error" (default): a missing `${VAR}` is a ConfigIssue naming the variable. "collect": record it in
   * `missingEnv` and substitute a placeholder, so CI can validate offline.
   */
  readonly missingEnv?: "error" | "collect";
}

/** Sync names in the order the file lists them (object keys would put numeric names first). */
function syncNames(yaml: YamlFile | undefined, raw: unknown): string[] {
  const node = yaml ? locate(yaml, ["syncs"]).node : undefined;
  const names = isMap(node) ? node.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key)) : [];
  return [...new Set([...names, ...Object.keys(asRecord(asRecord(raw)?.syncs) ?? {})])];
}

/** Orders issues by file (in the order files were read), then by position. */
function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const files = [...new Set(issues.map((issue) => issue.file))];
  return [...issues].sort(
    (a, b) =>
      files.indexOf(a.file) - files.indexOf(b.file) ||
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0),
  );
}

interface LoadedMappings {
  readonly issues: readonly ConfigIssue[];
  readonly missing: readonly string[];
  /** By sync name: the mapping file's absolute path and, when valid, its value. */
  readonly bySync: ReadonlyMap<
    string,
    { readonly file: string; readonly value?: MappingConfig; readonly yaml?: YamlFile }
  >;
}

/** Loads the mapping file of every sync (each file once), and checks it against each sync's destination. */
async function loadMappings(
  config: CheckedFile<Config>,
  names: readonly string[],
  folder: string,
  settings: Settings,
): Promise<LoadedMappings> {
  const root = asRecord(config.raw);
  const paths = new Map<string, string>();
  for (const name of names) {
    const mapping = asRecord(asRecord(root?.syncs)?.[name])?.mapping;
    if (typeof mapping === "string") paths.set(name, resolve(folder, mapping));
  }
  const files = new Map(
    await Promise.all(
      [...new Set(paths.values())].map(async (absolute) => {
        const read = await readText(absolute);
        const checked =
          "reason" in read ? read : checkYamlText(displayPath(absolute), read.text, mappingSchema, settings);
        return [absolute, checked] as const;
      }),
    ),
  );

  const issues: ConfigIssue[] = [];
  const reported = new Set<string>();
  const missing: string[] = [];
  const bySync = new Map<string, { file: string; value?: MappingConfig; yaml?: YamlFile }>();
  for (const [name, absolute] of paths) {
    const mapping = files.get(absolute)!;
    if ("reason" in mapping) {
      if (config.yaml) {
        issues.push(issueAt(config.yaml, ["syncs", name, "mapping"], `mapping file ${mapping.reason}: ${absolute}`));
      }
      continue;
    }
    const destinationName = String(asRecord(asRecord(root?.syncs)?.[name])?.destination);
    const destination = asRecord(asRecord(root?.destinations)?.[destinationName]);
    const use = destination && {
      sync: name,
      destination: destinationName,
      type: destination.type,
      hierarchical: destination.hierarchical === true,
    };
    const fileIssues = [
      ...mapping.issues,
      ...(mapping.yaml ? checkMapping(mapping.yaml, mapping.raw) : []),
      ...(mapping.yaml && use ? checkMappingUse(mapping.yaml, mapping.raw, use) : []),
    ];
    // A mapping file shared by several syncs is reported once.
    for (const issue of fileIssues) {
      const key = formatConfigIssue(issue);
      if (!reported.has(key)) issues.push(issue);
      reported.add(key);
    }
    missing.push(...mapping.missing);
    bySync.set(name, {
      file: absolute,
      ...(mapping.value ? { value: mapping.value } : {}),
      ...(mapping.yaml ? { yaml: mapping.yaml } : {}),
    });
  }
  return { issues, missing, bySync };
}

/** Loads and checks the config and every mapping file. Throws a ConfigError carrying every issue found. */
export async function loadConfig(file: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const settings: Settings = { env: options.env ?? process.env, missingEnv: options.missingEnv ?? "error" };
  const path = resolve(file);
  const read = await readText(path);
  if ("reason" in read) {
    throw new ConfigError([{ file, path: "", message: `config file ${read.reason} (${path})` }], {
      code: "CONFIG_NOT_FOUND",
      action: "Pass the path of sync.config.yaml with --config, or run groupsync in the folder that holds it.",
    });
  }
  const config = checkYamlText(file, read.text, configSchema, settings);
  const names = syncNames(config.yaml, config.raw);
  const mappings = await loadMappings(config, names, dirname(path), settings);
  const issues = [
    ...config.issues,
    ...(config.yaml ? checkConfig(config.yaml, config.raw) : []),
    ...mappings.issues,
    ...(config.yaml ? checkSyncDestinations(config.yaml, config.raw, mappings.bySync) : []),
  ];
  if (issues.length > 0 || !config.value) {
    throw new ConfigError(sortIssues(issues), { missingEnv: [...new Set([...config.missing, ...mappings.missing])] });
  }

  const value = config.value;
  const syncs = names.map((name): LoadedSync => {
    const sync = value.syncs[name]!;
    const mapping = mappings.bySync.get(name)!;
    return {
      name,
      sync,
      mapping: mapping.value!,
      mappingFile: mapping.file,
      source: { name: sync.source, config: value.sources[sync.source]! },
      destination: { name: sync.destination, config: value.destinations[sync.destination]! },
      locateInMapping: (keyPath) => {
        if (!mapping.yaml) return undefined;
        const found = locate(mapping.yaml, keyPath);
        return found.nearest ? positionOf(mapping.yaml, found.node ?? found.nearest) : undefined;
      },
    };
  });
  return {
    file: path,
    stateDir: resolve(dirname(path), value.state_dir),
    config: value,
    syncs,
    missingEnv: [...new Set([...config.missing, ...mappings.missing])],
  };
}
