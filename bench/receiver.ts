/**
 * The benchmark's Mixpanel /groups receiver, run in its own process (forked by bench.ts with an IPC channel) so
 * that its CPU and memory never count against the groupsync process being measured.
 *
 * Two kinds (argv[2]):
 * - `lean` (default): parses every body as JSON, checks each update's token and operation, counts, answers
 *   Mixpanel's 200 `{"error":null,"status":1}`, and keeps nothing else. It is there so that the receiver is not
 *   the bottleneck of the throughput phase.
 * - `contract`: the full contract receiver of connectors/mixpanel/contract-receiver.ts (validation of every
 *   update, profiles kept in memory): slower, and its memory grows with the table.
 *
 * IPC: the child sends `{ type: "ready", url }`; the parent sends `{ type: "stats" }` (answered with
 * `{ type: "stats", stats }`) or `{ type: "reset" }` (answered with `{ type: "reset" }`).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { startMixpanelReceiver } from "../connectors/mixpanel/contract-receiver.js";
import { BENCH_TOKEN } from "./table.js";

/** What the receiver accepted since the last reset. */
export interface ReceiverStats {
  /** Requests answered 200. */
  readonly requests: number;
  /** Requests answered with anything else. */
  readonly refused: number;
  /** Body bytes of all requests. */
  readonly bytes: number;
  /** Update objects accepted, and how many of them were $set, $unset and $delete. */
  readonly updates: number;
  readonly sets: number;
  readonly unsets: number;
  readonly deletes: number;
  /** Most requests being handled at the same time (lean receiver only; 0 for the contract receiver). */
  readonly maxInFlight: number;
  /** Milliseconds from the start of the first request to the end of the last one (lean receiver only). */
  readonly activeMs: number;
}

export type ReceiverKind = "lean" | "contract";
export type ToReceiver = { readonly type: "stats" } | { readonly type: "reset" };
export type FromReceiver =
  | { readonly type: "ready"; readonly url: string }
  | { readonly type: "stats"; readonly stats: ReceiverStats }
  | { readonly type: "reset" };

interface Counter {
  stats(): ReceiverStats;
  reset(): void;
  url: string;
}

async function startLean(): Promise<Counter> {
  let counts = { requests: 0, refused: 0, bytes: 0, updates: 0, sets: 0, unsets: 0, deletes: 0 };
  let inFlight = 0;
  let maxInFlight = 0;
  let first: number | undefined;
  let last = 0;
  const ok = JSON.stringify({ error: null, status: 1 });
  const server = createServer((request, response) => {
    first ??= performance.now();
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      counts.bytes += body.length;
      const accepted = count(body.toString("utf8"));
      if (accepted === undefined) counts.refused++;
      else {
        counts.requests++;
        counts.updates += accepted.sets + accepted.unsets + accepted.deletes;
        counts.sets += accepted.sets;
        counts.unsets += accepted.unsets;
        counts.deletes += accepted.deletes;
      }
      const text = accepted === undefined ? JSON.stringify({ error: "bad request", status: 0 }) : ok;
      response.writeHead(accepted === undefined ? 400 : 200, {
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(text)),
      });
      response.end(text);
      inFlight--;
      last = performance.now();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) =>
    server.listen(Number(process.env.BENCH_RECEIVER_PORT ?? 0), "127.0.0.1", resolve),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ ...counts, maxInFlight, activeMs: first === undefined ? 0 : last - first }),
    reset() {
      counts = { requests: 0, refused: 0, bytes: 0, updates: 0, sets: 0, unsets: 0, deletes: 0 };
      maxInFlight = 0;
      first = undefined;
      last = 0;
    },
  };
}

/** Counts the operations of a /groups body; undefined when it is not an array of well-formed updates. */
function count(text: string): { sets: number; unsets: number; deletes: number } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || parsed.length > 2000) return undefined;
  const result = { sets: 0, unsets: 0, deletes: 0 };
  for (const update of parsed as Record<string, unknown>[]) {
    if (update.$token !== BENCH_TOKEN || typeof update.$group_id !== "string") return undefined;
    if (update.$set !== undefined) result.sets++;
    else if (update.$unset !== undefined) result.unsets++;
    else if (update.$delete !== undefined) result.deletes++;
    else return undefined;
  }
  return result;
}

async function startContract(): Promise<Counter> {
  const receiver = await startMixpanelReceiver({ token: BENCH_TOKEN });
  return {
    url: receiver.url,
    stats() {
      const stats = { requests: 0, refused: 0, bytes: 0, updates: 0, sets: 0, unsets: 0, deletes: 0 };
      for (const request of receiver.requests) {
        stats.bytes += request.bytes;
        if (request.status !== 200) {
          stats.refused++;
          continue;
        }
        stats.requests++;
        for (const update of request.updates) {
          stats.updates++;
          if (update.$set !== undefined) stats.sets++;
          else if (update.$unset !== undefined) stats.unsets++;
          else if (update.$delete !== undefined) stats.deletes++;
        }
      }
      return { ...stats, maxInFlight: 0, activeMs: 0 };
    },
    reset: () => receiver.reset(),
  };
}

async function main(): Promise<void> {
  const kind = (process.argv[2] ?? "lean") as ReceiverKind;
  const counter = kind === "contract" ? await startContract() : await startLean();
  const send = (message: FromReceiver) => process.send?.(message);
  process.on("message", (message: ToReceiver) => {
    if (message.type === "stats") send({ type: "stats", stats: counter.stats() });
    else if (message.type === "reset") {
      counter.reset();
      send({ type: "reset" });
    }
  });
  // The parent going away ends the receiver too.
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", url: counter.url });
}

// Only as the forked process, not when imported for its types.
if (process.send && import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
