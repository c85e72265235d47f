/** `groupsync verify <sync>`: read a sample of groups back and report drift. Exit 0 no drift, 4 drift. */
import type { LoadedConfig } from "../config/load.js";
import { loadConnectors } from "../connectors.js";
import type { GroupFinding, PropertyFinding } from "../verify/compare.js";
import { runVerify, type VerifyEstimate, type VerifyReport } from "../verify/verify.js";
import { EXIT, pickSyncs, print, UsageError } from "./common.js";

export interface VerifyCommandOptions {
  readonly sample: number;
  readonly keys?: string;
  readonly json: boolean;
}

export async function runVerifyCommand(
  loaded: LoadedConfig,
  name: string,
  options: VerifyCommandOptions,
): Promise<number> {
  const [sync] = pickSyncs(loaded, name, false);
  const keys = options.keys
    ?.split(",")
    .map((key) => key.trim())
    .filter((key) => key !== "");
  if (options.keys !== undefined && (!keys || keys.length === 0)) {
    throw new UsageError("--keys needs at least one Group ID (company_id/group_id in hierarchical projects)");
  }
  const connectors = await loadConnectors([sync!]);
  const { createReader } = await import("../readers.js");
  const report = await runVerify(sync!, {
    stateDir: loaded.stateDir,
    sample: options.sample,
    ...(keys ? { keys } : {}),
    createSource: (s) => connectors.createSource(s),
    createReader: (s) => createReader(s),
    // Before the slow part: on stderr, so --json output stays one document.
    onEstimate: (estimate) => process.stderr.write(`${formatEstimate(sync!.name, estimate)}\n`),
  });
  print(options.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.drifted > 0 ? EXIT.drift : EXIT.ok;
}

export function formatEstimate(sync: string, estimate: VerifyEstimate): string {
  const time = estimate.seconds < 90 ? `${estimate.seconds}s` : `${Math.ceil(estimate.seconds / 60)} min`;
  return `verify ${sync}: reading ${estimate.groups} group(s) back in ${estimate.requests} request(s), at least ${time} (${estimate.note})`;
}

function shown(value: unknown): string {
  return JSON.stringify(value);
}

function formatDrift(finding: PropertyFinding): string {
  switch (finding.drift) {
    case "missing":
      return `${finding.name}: missing in the destination; groupsync sent ${shown(finding.expected)}`;
    case "changed":
      return `${finding.name}: the destination has ${shown(finding.actual)}; groupsync sent ${shown(finding.expected)}`;
    case "unexpected":
      return `${finding.name}: the destination has ${shown(finding.actual)}; groupsync sent no value (or removed it)`;
    case "items-missing":
      return `${finding.name}: items groupsync added are gone: ${shown(finding.expected)} (list now ${shown(finding.actual)})`;
  }
}

function formatGroup(group: GroupFinding): string[] {
  if (group.status === "missing") {
    return [
      `drift  ${group.key}: no such profile in the destination`,
      ...group.drift.map((d) => `         ${formatDrift(d)}`),
    ];
  }
  if (group.status === "drift") return [`drift  ${group.key}`, ...group.drift.map((d) => `         ${formatDrift(d)}`)];
  return [];
}

export function formatReport(report: VerifyReport): string {
  const lines: string[] = [];
  for (const group of report.groups) lines.push(...formatGroup(group));
  const pending = report.groups.reduce(
    (sum, group) => sum + (group.status === "unchecked" ? 0 : group.skipped.length),
    0,
  );
  const unchecked = report.groups.filter((group) => group.status === "unchecked").length;
  if (pending > 0) {
    lines.push(
      `${pending} propert${pending === 1 ? "y" : "ies"} not compared: changed in the source since the last run, or not confirmed (use --json for the list)`,
    );
  }
  if (unchecked > 0) lines.push(`${unchecked} sampled group(s) left the source since the last run: not compared`);
  if (report.unknown_keys.length > 0) {
    lines.push(`not in groupsync's state (never sent): ${report.unknown_keys.join(", ")}`);
  }
  lines.push(
    report.drifted > 0
      ? `${report.drifted} of ${report.checked} group(s) checked differ from what groupsync last sent (destination ${report.destination}; ${report.state_groups} groups in the state)`
      : `no drift: ${report.checked} group(s) checked match what groupsync last sent (destination ${report.destination}; ${report.state_groups} groups in the state)`,
  );
  return lines.join("\n");
}
