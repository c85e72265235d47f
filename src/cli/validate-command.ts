/**
 * `groupsync validate`: the config and every mapping file, offline (CI). Unset environment variables are reported
 * as needed ("would need MIXPANEL_PROJECT_TOKEN"), not as errors, unless `--strict-env`. `--check-source` also
 * connects: tables and columns exist, the cursor column can be compared, and the Group ID is unique and non-null.
 * Output: human, JSON, or GitHub Actions annotations.
 */
import { displayPath } from "../config/check-file.js";
import { type LoadedConfig, type LoadedSync, loadConfig } from "../config/load.js";
import type { Connectors } from "../engine/run-sync.js";
import { ConfigError, type ConfigIssue, formatConfigIssue, GroupsyncError } from "../errors.js";
import { compileMapping } from "../mapping/mapper.js";
import { redact } from "../secret.js";
import type { KeyCheck } from "../source.js";
import { EXIT, print } from "./common.js";

export type ValidateFormat = "human" | "json" | "github";

export interface ValidateOptions {
  readonly config: string;
  readonly format: ValidateFormat;
  readonly strictEnv: boolean;
  readonly checkSource: boolean;
  readonly connectors: Connectors;
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
  const report = await validate(options);
  if (options.format === "json") print(JSON.stringify(jsonReport(report), null, 2));
  else if (options.format === "github") print(githubReport(report));
  else humanReport(report);
  if (report.issues.length > 0) return EXIT.invalid;
  if (report.sources?.some((source) => source.error || source.issues.length > 0)) return EXIT.failed;
  return EXIT.ok;
}

async function validate(options: ValidateOptions): Promise<ValidateReport> {
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(options.config, { missingEnv: options.strictEnv ? "error" : "collect" });
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
  const sources = options.checkSource ? await checkSources(loaded, options.connectors) : undefined;
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

function jsonReport(report: ValidateReport): unknown {
  if (report.issues.length === 0) return report;
  // `error` as every other command prints it, for scripts that read one shape.
  const error = new ConfigError(report.issues);
  return {
    ...report,
    error: { code: error.code, message: error.message, action: error.action, issues: report.issues },
  };
}

function validLine(report: ValidateReport): string {
  if (report.syncs.length === 0)
    return `${report.config}: valid as far as it can be checked without the variables it needs`;
  return `${report.config}: valid (${report.syncs.length} syncs: ${report.syncs.join(", ")})`;
}

function humanReport(report: ValidateReport): void {
  if (report.issues.length > 0) {
    process.stderr.write(`error: ${report.issues.map(formatConfigIssue).join("\n")}\n`);
    process.stderr.write("  Fix the file at the line shown, then run `groupsync validate`.\n");
  } else {
    print(validLine(report));
  }
  if (report.needs_env.length > 0) {
    print(`would need ${report.needs_env.join(", ")} (not set here; runs need them)`);
  }
  for (const source of report.sources ?? []) {
    if (source.error) {
      print(`${source.sync}: source check failed: ${source.error.message}`);
      if (source.error.action) print(`  ${source.error.action}`);
      continue;
    }
    const counts = source.keys ? ` (${source.keys.rows} rows)` : "";
    print(`${source.sync}: source ${source.issues.length === 0 ? "ok" : "has problems"}${counts}`);
    for (const issue of source.issues) print(`  ${formatConfigIssue(issue)}`);
  }
}

/**
 * GitHub Actions workflow commands: each problem becomes an annotation on the file and line.
 * https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands
 */
function githubReport(report: ValidateReport): string {
  const data = (text: string) => text.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  const property = (text: string) => data(text).replace(/:/g, "%3A").replace(/,/g, "%2C");
  const annotate = (level: "error" | "warning" | "notice", message: string, issue?: ConfigIssue) => {
    const where = issue
      ? [
          `file=${property(issue.file)}`,
          ...(issue.line !== undefined ? [`line=${issue.line}`] : []),
          ...(issue.column !== undefined ? [`col=${issue.column}`] : []),
        ]
      : [];
    return `::${level} ${[...where, "title=groupsync validate"].join(",")}::${data(message)}`;
  };
  const message = (issue: ConfigIssue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`);
  const lines = report.issues.map((issue) => annotate("error", message(issue), issue));
  for (const name of report.needs_env) {
    lines.push(annotate("warning", `would need ${name}: not set in this job (runs need it)`));
  }
  for (const source of report.sources ?? []) {
    if (source.error) lines.push(annotate("error", `${source.sync}: source check failed: ${source.error.message}`));
    for (const issue of source.issues) lines.push(annotate("error", `${source.sync}: ${message(issue)}`, issue));
  }
  if (report.valid) lines.push(validLine(report));
  return lines.join("\n");
}
