/**
 * Operations a destination cannot apply (`Destination.unsupported`), counted with their reasons for the run summary.
 * Shared by the delivery and the plan, so that a plan predicts the skips a run would report.
 */
import type { Destination } from "../destination.js";
import type { GroupOperation } from "../model.js";

export class SkippedOperations {
  /** Operations skipped. */
  count = 0;
  /** `kind: reason`, once per operation kind, in the order first seen. */
  readonly reasons: string[] = [];
  readonly #kinds = new Set<string>();

  /**
   * Why `destination` cannot apply `operation`, counting it as skipped; `undefined` when it can be sent. `first` is
   * true the first time this kind is skipped (to log it once, not once per group).
   */
  check(
    destination: Pick<Destination, "unsupported">,
    operation: GroupOperation,
  ): { readonly reason: string; readonly first: boolean } | undefined {
    const reason = destination.unsupported?.[operation.kind];
    if (reason === undefined) return undefined;
    this.count++;
    const first = !this.#kinds.has(operation.kind);
    if (first) {
      this.#kinds.add(operation.kind);
      this.reasons.push(`${operation.kind}: ${reason}`);
    }
    return { reason, first };
  }
}
