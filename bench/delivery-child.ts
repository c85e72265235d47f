/**
 * The sending half of a backfill alone, run as its own measured process: `count` `$set` operations shaped like the
 * bench table's rows (12 properties) go through the real delivery layer (src/delivery: batching, concurrency,
 * acknowledgements) and the real Mixpanel destination (encode, undici pool) to the receiver. It shows what
 * groupsync can send when reading the source is not the limit.
 *   tsx bench/delivery-child.ts <receiver url> <count> <batch size> <concurrency>
 * Prints `{ "ms": …, "acknowledged": … }` on stdout.
 */
import { performance } from "node:perf_hooks";
import { mixpanelDestinationSchema } from "../connectors/mixpanel/config.js";
import { createMixpanelDestination } from "../connectors/mixpanel/destination.js";
import { Delivery } from "../src/delivery/delivery.js";
import type { GroupOperation, JsonValue } from "../src/model.js";
import { BENCH_TOKEN } from "./table.js";

function operation(i: number): GroupOperation {
  const properties: Record<string, JsonValue> = {
    $name: `Company ${i} 3c59dc048e8850243be8079a5c74d079`,
    plan: ["free", "pro", "team", "enterprise"][i % 4]!,
    industry: ["saas", "fintech", "retail", "health care", "media"][i % 5]!,
    seats: 1 + (i % 500),
    events_30d: i * 7919,
    arr_usd: (i % 100000) * 12.37,
    health_score: (i % 1000) / 10 + 0.25,
    is_enterprise: i % 4 === 3,
    created_at: new Date(Date.UTC(2019, 0, 1) + i * 37_000).toISOString(),
    renewal_date: "2025-06-01",
    attributes: { region: "emea", tier: i % 3, beta: i % 2 === 0 },
    tags: [`tag${i % 7}`, `tag${i % 11}`],
  };
  return {
    kind: "set",
    ref: { groupKey: "company", companyId: "", groupId: `acct_${String(i).padStart(8, "0")}` },
    properties,
  };
}

const [url, count, batchSize, concurrency] = process.argv.slice(2);
if (!url || !count) {
  process.stderr.write("usage: tsx bench/delivery-child.ts <receiver url> <count> [batch size] [concurrency]\n");
  process.exit(2);
}
const config = mixpanelDestinationSchema.parse({
  type: "mixpanel",
  project_token: BENCH_TOKEN,
  api_host: url,
  batch_size: Number(batchSize ?? 200),
  concurrency: Number(concurrency ?? 4),
});
const destination = createMixpanelDestination(config);
const delivery = new Delivery(destination, { maxRetries: 0 });
let acknowledged = 0;
const onResult = (result: { ok: boolean }) => {
  if (result.ok) acknowledged++;
};
const started = performance.now();
for (let i = 1; i <= Number(count); i++) await delivery.enqueue(operation(i), onResult);
await delivery.flush();
const ms = performance.now() - started;
await destination.close();
process.stdout.write(`${JSON.stringify({ ms, acknowledged })}\n`);
