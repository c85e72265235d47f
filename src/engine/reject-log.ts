/**
 * Rejected rows and operations: each is counted, logged (the first few in full, then a count by reason) and
 * written with its key and reason to the sync's rejects.jsonl, which the next run replaces. Keys only, never
 * property values: a reject file must be safe to attach to a ticket.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import type { Logger } from "pino";
import { redact } from "../secret.js";

const LOGGED_IN_FULL = 20;

export class RejectLog {
  #count = 0;
  readonly #byReason = new Map<string, number>();
  #stream: WriteStream | undefined;
  #failed: Error | undefined;

  constructor(
    private readonly log: Logger,
    private readonly tempPath: string | undefined,
  ) {}

  get count(): number {
    return this.#count;
  }

  /** Records `rows` rejected rows (or operations) for one key. */
  add(key: string, reason: string, rows = 1): void {
    const clean = redact(reason);
    this.#count += rows;
    const kind = clean.replace(/"[^"]*"/g, '"…"').slice(0, 120);
    this.#byReason.set(kind, (this.#byReason.get(kind) ?? 0) + rows);
    if (this.#count - rows < LOGGED_IN_FULL) this.log.warn({ key, reason: clean }, `rejected ${key}: ${clean}`);
    if (this.tempPath) {
      this.#stream ??= createWriteStream(this.tempPath, { mode: 0o600 }).on("error", (error) => {
        this.#failed = error;
      });
      this.#stream.write(`${JSON.stringify({ key, reason: clean, rows })}\n`);
    }
  }

  async #close(): Promise<void> {
    const stream = this.#stream;
    if (!stream) return;
    await new Promise<void>((resolve) => stream.end(resolve));
  }

  /** Replaces `finalPath` with this run's rejects (an empty run removes it), and logs the count by reason. */
  async commit(finalPath: string): Promise<void> {
    await this.#close();
    if (this.#count > LOGGED_IN_FULL) {
      this.log.warn({ by_reason: Object.fromEntries(this.#byReason) }, `${this.#count} rejected in all`);
    }
    if (this.#failed) throw this.#failed;
    if (this.#stream && this.tempPath) await rename(this.tempPath, finalPath);
    else await rm(finalPath, { force: true });
  }

  /** Drops this run's rejects. Never throws: it runs in a `finally`, after the error that matters. */
  async discard(): Promise<void> {
    await this.#close();
    if (this.tempPath) await rm(this.tempPath, { force: true }).catch(() => undefined);
  }
}
