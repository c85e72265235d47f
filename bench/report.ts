/** The benchmark's results: their JSON shape and the markdown table printed and put in the README. */
import type { ReceiverStats } from "./receiver.js";

/** Properties of each entry of the state benchmark's snapshot (as many as the bench table maps). */
export const STATE_PROPERTIES = 12;

/** What the receiver counted during a phase (requests accepted, their bytes, updates by operation, most in flight). */
type ReceiverCounts = Pick<
  ReceiverStats,
  "requests" | "bytes" | "updates" | "sets" | "unsets" | "deletes" | "maxInFlight"
>;

export interface PhaseResult extends ReceiverCounts {
  /** `a`…`e`. */
  readonly id: string;
  readonly label: string;
  readonly wallMs: number;
  /** Wall time over the baseline's. */
  readonly ratio: number;
  /** Peak RSS of the measured process in MiB (psql for the baseline, groupsync otherwise); null if unmeasured. */
  readonly peakRssMb: number | null;
  /** User + system CPU seconds of the measured process; null if unmeasured. */
  readonly cpuSec: number | null;
  /** Updates per second over the receiver's active window (first request in to last answer out). */
  readonly receiverUpdatesPerSec?: number;
  /** Updates per second over the whole command (start-up, reading the table, state); for (e'), over the sending loop. */
  readonly endToEndUpdatesPerSec?: number;
  /** The run summary the CLI printed with --json, trimmed to its counts. */
  readonly summary?: Record<string, unknown>;
  /** (c) and (d): every paired run (a baseline right before each); the phase's own figures are the median one's. */
  readonly repetitions?: readonly { readonly wallMs: number; readonly baselineMs: number; readonly ratio: number }[];
}

export interface StateResult {
  readonly entries: number;
  readonly properties: number;
  readonly fileBytes: number;
  readonly writeMs: number;
  readonly readMs: number;
  readonly writeRssMb: number | null;
  readonly readRssMb: number | null;
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly os: string;
  readonly node: string;
  readonly postgres: string;
}

export interface BenchResult {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly rows?: number;
  readonly receiver?: string;
  readonly runner?: string;
  readonly batchSize?: number;
  readonly concurrency?: number;
  readonly phases?: readonly PhaseResult[];
  readonly state?: StateResult;
  /** What the bench checked about the counts (never timings); empty when all held. */
  readonly problems: readonly string[];
}

const fixed = (value: number, digits: number) => value.toFixed(digits);
const seconds = (ms: number) => `${fixed(ms / 1000, 2)} s`;
const mb = (value: number | null) => (value === null ? "n/a" : `${fixed(value, 0)} MB`);
const thousands = (value: number) => Math.round(value).toLocaleString("en-US");
const bytes = (value: number) =>
  value >= 1024 * 1024
    ? `${fixed(value / 1024 / 1024, 1)} MiB`
    : value >= 1024
      ? `${fixed(value / 1024, 1)} KiB`
      : `${value} B`;

export function machineLine(machine: MachineInfo): string {
  return `${machine.cpu}, ${machine.cores} cores, ${fixed(machine.memoryGb, 0)} GB RAM, ${machine.os}, Node ${machine.node}, ${machine.postgres}`;
}

export function markdown(result: BenchResult): string {
  const lines: string[] = [];
  if (result.phases && result.rows !== undefined) {
    lines.push(
      `${thousands(result.rows)} rows, 12 properties; receiver: ${result.receiver}; groupsync run as ${result.runner}; batch_size ${result.batchSize}, concurrency ${result.concurrency}.`,
      "",
      "| Phase | Wall | × (a) | CPU | Peak RSS | Requests | Bytes sent | Updates ($set/$unset/$delete) | Updates/s |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const phase of result.phases) {
      const rate =
        phase.receiverUpdatesPerSec === undefined
          ? ""
          : `${thousands(phase.receiverUpdatesPerSec)} (end to end ${thousands(phase.endToEndUpdatesPerSec ?? 0)})`;
      const updates =
        phase.id === "a"
          ? ""
          : `${thousands(phase.updates)} (${thousands(phase.sets)}/${thousands(phase.unsets)}/${thousands(phase.deletes)})`;
      lines.push(
        `| (${phase.id}) ${phase.label} | ${seconds(phase.wallMs)} | ${fixed(phase.ratio, 2)} | ${phase.cpuSec === null ? "n/a" : `${fixed(phase.cpuSec, 1)} s`} | ${mb(phase.peakRssMb)} | ${phase.id === "a" ? "" : thousands(phase.requests)} | ${phase.id === "a" ? "" : bytes(phase.bytes)} | ${updates} | ${rate} |`,
      );
    }
  }
  if (result.state) {
    const state = result.state;
    if (lines.length > 0) lines.push("");
    lines.push(
      `State: snapshot of ${thousands(state.entries)} groups with ${state.properties} properties each.`,
      "",
      "| Entries | File size | Bytes/entry | Write | Write peak RSS | Read (verified) | Read peak RSS |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      `| ${thousands(state.entries)} | ${bytes(state.fileBytes)} | ${fixed(state.fileBytes / state.entries, 1)} | ${seconds(state.writeMs)} | ${mb(state.writeRssMb)} | ${seconds(state.readMs)} | ${mb(state.readRssMb)} |`,
    );
  }
  const paired = (result.phases ?? []).filter((phase) => phase.repetitions && phase.repetitions.length > 1);
  if (paired.length > 0) {
    lines.push(
      "",
      `${paired.map((phase) => `(${phase.id})`).join(" and ")}: the median of ${paired[0]!.repetitions!.length} runs, each right after a baseline run of its own (× is against that one); all ratios: ${paired
        .map((phase) => `(${phase.id}) ${phase.repetitions!.map((run) => fixed(run.ratio, 2)).join(", ")}`)
        .join("; ")}.`,
    );
  }
  lines.push("", `Machine: ${machineLine(result.machine)}.`);
  if (result.problems.length > 0) lines.push("", "Problems:", ...result.problems.map((problem) => `- ${problem}`));
  return lines.join("\n");
}
