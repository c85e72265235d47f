/**
 * What `groupsync validate` prints: for people (issues on stderr, as every command prints errors), as JSON, or as
 * GitHub Actions workflow commands, which GitHub shows as annotations on the lines of a pull request's diff.
 */
import { ConfigError, type ConfigIssue, formatConfigIssue } from "../errors.js";
import type { ValidateFormat, ValidateReport } from "./validate-command.js";

export function renderValidateReport(
  report: ValidateReport,
  format: ValidateFormat,
): { stdout: string; stderr: string } {
  if (format === "json") return { stdout: JSON.stringify(jsonReport(report), null, 2), stderr: "" };
  if (format === "github") return { stdout: githubReport(report), stderr: "" };
  return humanReport(report);
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

function humanReport(report: ValidateReport): { stdout: string; stderr: string } {
  const out: string[] = [];
  const err: string[] = [];
  if (report.issues.length > 0) {
    err.push(`error: ${report.issues.map(formatConfigIssue).join("\n")}`);
    err.push("  Fix the file at the line shown, then run `groupsync validate`.");
  } else {
    out.push(validLine(report));
  }
  if (report.needs_env.length > 0) out.push(`would need ${report.needs_env.join(", ")} (not set here; runs need them)`);
  for (const source of report.sources ?? []) {
    if (source.error) {
      out.push(`${source.sync}: source check failed: ${source.error.message}`);
      if (source.error.action) out.push(`  ${source.error.action}`);
      continue;
    }
    const counts = source.keys ? ` (${source.keys.rows} rows)` : "";
    out.push(`${source.sync}: source ${source.issues.length === 0 ? "ok" : "has problems"}${counts}`);
    for (const issue of source.issues) out.push(`  ${formatConfigIssue(issue)}`);
  }
  return { stdout: out.join("\n"), stderr: err.join("\n") };
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
