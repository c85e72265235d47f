/**
 * `groupsync validate`: the config and every mapping file, offline (CI). Unset environment variables are reported
 * as needed ("would need MIXPANEL_PROJECT_TOKEN"), not as errors, unless `--strict-env`. `--check-source` also
 * connects: tables and columns exist, the cursor column can be compared, and the Group ID is unique and non-null.
 * Output: human, JSON, or GitHub Actions annotations.
 */
import { displayPath } from "../config/check-file.js";
import { type LoadedConfig, type LoadedSync, loadConfig } from "../config/load.js";
import type { Connectors } from "../engine/run-sync.js";
import { ConfigError, type ConfigIssue, GroupsyncError } from "../errors.js";
import { compileMapping } from "../mapping/mapper.js";
import { redact } from "../secret.js";
import type { KeyCheck } from "../source.js";
import { EXIT, print } from "./common.js";
import { renderValidateReport } from "./validate-output.js";

export type ValidateFormat = "human" | "json" | "github";

export interface ValidateOptions {
  readonly config: string;
  readonly format: ValidateFormat;
  readonly strictEnv: boolean;
  readonly checkSource: boolean;
  /** Loads the connectors of the syncs to check (only `--check-source` connects). */
  readonly connectors: (syncs: readonly LoadedSync[]) => Promise<Connectors>;
}

/** What `--check-source` found for one sync. */
export interface SourceReport {
  readonly sync: string;
  /** Problems found (missing columns, NULL or duplicated Group IDs), at the mapping file's line. */
  readonly issues: ConfigIssue[];
  /** The source could not be checked (connection, permissions, SQL). */
  readonly error?: { readonly code: string; readonly message: string; readonly action?: string };
  readonly keys?: KeyCheck;
}

export interface ValidateReport {
  readonly valid: boolean;
  readonly config: string;
  readonly syncs: readonly string[];
  readonly issues: readonly ConfigIssue[];
  /** Environment variables the files reference that are not set here. */
  readonly needs_env: readonly string[];
  readonly sources?: readonly SourceReport[];
}

export async function runValidate(options: ValidateOptions): Promise<number> {
  const report = await validateConfig(options);
  const { stdout, stderr } = renderValidateReport(report, options.format);
  if (stderr) process.stderr.write(`${stderr}\n`);
  if (stdout) print(stdout);
  if (report.issues.length > 0) return EXIT.invalid;
  if (report.sources?.some((source) => source.error || source.issues.length > 0)) return EXIT.failed;
  return EXIT.ok;
}

/** Checks the files (and, with `checkSource`, the sources); never throws for what it finds. */
export async function validateConfig(
  options: Omit<ValidateOptions, "format"> & { readonly env?: Record<string, string | undefined> },
): Promise<ValidateReport> {
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(options.config, {
      missingEnv: options.strictEnv ? "error" : "collect",
      ...(options.env ? { env: options.env } : {}),
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Offline, a value that only fails because its variable is unset is a need, not an error.
    const issues = error.issues.filter((issue) => options.strictEnv || !issue.needsEnv?.length);
    // With --strict-env they are errors already.
    const needs = options.strictEnv ? [] : [...error.missingEnv, ...error.issues.flatMap((i) => i.needsEnv ?? [])];
    const config = displayPath(options.config);
    return { valid: issues.length === 0, config, syncs: [], issues, needs_env: [...new Set(needs)] };
  }
  const config = displayPath(loaded.file);
  const sources = options.checkSource ? await checkSources(loaded, await options.connectors(loaded.syncs)) : undefined;
  return {
    valid: !sources?.some((source) => source.error || source.issues.length > 0),
    config,
    syncs: loaded.syncs.map((sync) => sync.name),
    issues: [],
    needs_env: loaded.missingEnv,
    ...(sources ? { sources } : {}),
  };
}

async function checkSources(loaded: LoadedConfig, connectors: Connectors): Promise<SourceReport[]> {
  if (loaded.missingEnv.length > 0) {
    const needs = loaded.missingEnv.join(", ");
    return loaded.syncs.map((sync) => ({
      sync: sync.name,
      issues: [],
      error: { code: "ENV_MISSING", message: `cannot connect without ${needs}`, action: `Set ${needs}.` },
    }));
  }
  const reports: SourceReport[] = [];
  for (const sync of loaded.syncs) reports.push(await checkSource(sync, connectors));
  return reports;
}

function hierarchical(sync: LoadedSync): boolean {
  const config = sync.destination.config;
  return "hierarchical" in config && config.hierarchical === true;
}

async function checkSource(sync: LoadedSync, connectors: Connectors): Promise<SourceReport> {
  const source = connectors.createSource(sync);
  const file = displayPath(sync.mappingFile);
  const at = (path: string[], message: string): ConfigIssue => ({
    file,
    ...sync.locateInMapping(path),
    path: path.join("."),
    message,
  });
  try {
    await source.check();
    const columns = await source.describe(
      sync.mapping.from !== undefined ? { from: sync.mapping.from } : { query: sync.mapping.query as string },
    );
    const mapping = compileMapping(sync.mapping, columns, {
      hierarchical: hierarchical(sync),
      file,
      locate: sync.locateInMapping,
    });
    const issues: ConfigIssue[] = [];
    if (!source.checkKeys) return { sync: sync.name, issues };
    const keys = await source.checkKeys(mapping.readSpec);
    const key = mapping.readSpec.orderBy.length === 2 ? "Company ID and Group ID" : "Group ID";
    if (keys.nullKeys > 0) {
      issues.push(
        at(["group_id"], `${keys.nullKeys} of ${keys.rows} rows have a NULL or blank ${key}; they would be rejected`),
      );
    }
    if (keys.duplicateKeys > 0) {
      issues.push(
        at(
          ["group_id"],
          `${keys.duplicateKeys} ${key} values appear on more than one row (${keys.duplicateRows} rows); they would be rejected: Group IDs must be unique`,
        ),
      );
    }
    return { sync: sync.name, issues, keys };
  } catch (error) {
    if (error instanceof ConfigError) return { sync: sync.name, issues: [...error.issues] };
    const known = error instanceof GroupsyncError;
    return {
      sync: sync.name,
      issues: [],
      error: {
        code: known ? error.code : "INTERNAL",
        message: redact(known ? error.message : String((error as Error)?.message ?? error)),
        ...(known && error.action ? { action: error.action } : {}),
      },
    };
  } finally {
    await source.close().catch(() => undefined);
  }
}
