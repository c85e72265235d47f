/** Schema pieces shared by the config, the mapping files and the connectors' own schemas. */
import { z } from "zod";
import { Secret } from "../secret.js";

/** A secret string: validated as a non-empty string, held as a `Secret` after parsing. */
export function secretString(description: string) {
  return z
    .string()
    .min(1, "must not be empty")
    .meta({ description, secret: true })
    .transform((value) => new Secret(value));
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `30s`, `10m`, `1h`, or a number of milliseconds; parsed to milliseconds. */
export function duration(description: string) {
  return z
    .union([
      z.number().int().nonnegative(),
      z.string().regex(DURATION, 'expected a duration such as "500ms", "30s", "10m" or "1h"'),
    ])
    .meta({ description })
    .transform((value) => {
      if (typeof value === "number") return value;
      const match = DURATION.exec(value) as RegExpExecArray;
      return Math.round(Number(match[1]) * (UNIT_MS[match[2] as string] as number));
    });
}

/** A name used as a map key in the config (sources, destinations, syncs). */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * The delivery settings every HTTP destination takes, in this order: operations per request (each API has its own
 * ceiling), requests in flight, the wait for one response, and retries of one batch.
 */
export function deliverySettings(batch: {
  readonly max: number;
  readonly default: number;
  readonly description: string;
  readonly maxConcurrency: number;
}) {
  return {
    batch_size: z.number().int().min(1).max(batch.max).default(batch.default).meta({ description: batch.description }),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(batch.maxConcurrency)
      .default(4)
      .meta({ description: "Requests in flight at once." }),
    timeout: duration("Longest wait for one response before it counts as failed and is retried.").default(30_000),
    max_retries: z
      .number()
      .int()
      .min(0)
      .max(50)
      .default(8)
      .meta({ description: "Retries of one batch on 429, 5xx and network errors before the run gives up on it." }),
  };
}
