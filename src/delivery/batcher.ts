/**
 * Packs encoded operations into request bodies that respect a destination's limits. Pure: no I/O, no timers.
 * A body is a JSON array, so its size is the items' bytes plus `[`, `]` and one `,` between items.
 */

/** Anything with an encoded size. */
export interface Sized {
  readonly bytes: number;
}

/** The subset of `DestinationLimits` that shapes batches. */
export interface BatchLimits {
  /** Most operations in one request. */
  readonly maxBatchOperations: number;
  /** Most bytes in one request body, brackets and commas included. */
  readonly maxBatchBytes: number;
  /** Most bytes one encoded operation may take. */
  readonly maxOperationBytes: number;
}

/** Bytes of the JSON array body holding these items. */
export function batchBytes(items: readonly Sized[]): number {
  let bytes = 2;
  for (const item of items) bytes += item.bytes;
  return bytes + Math.max(0, items.length - 1);
}

/**
 * A request body: `head`, then the JSON array of the items' encoded bytes, then `tail` (wrappers such as
 * `{"batch":` and `}`), written into one Buffer: no string of the whole body, and no second encoding of it.
 */
export function jsonArrayBody(items: readonly (Sized & { readonly json: Buffer })[], head = "", tail = ""): Buffer {
  const body = Buffer.allocUnsafe(Buffer.byteLength(head) + batchBytes(items) + Buffer.byteLength(tail));
  let at = body.write(head, 0, "utf8");
  body[at++] = 0x5b; // [
  for (let i = 0; i < items.length; i++) {
    if (i > 0) body[at++] = 0x2c; // ,
    at += items[i]!.json.copy(body, at);
  }
  body[at++] = 0x5d; // ]
  body.write(tail, at, "utf8");
  return body;
}

/** Why an operation of `bytes` can never be sent, or `undefined` if it can. */
export function oversizeReason(bytes: number, limits: BatchLimits): string | undefined {
  if (bytes > limits.maxOperationBytes) {
    return `the encoded operation is ${bytes} bytes, over the limit of ${limits.maxOperationBytes} bytes per operation`;
  }
  if (bytes + 2 > limits.maxBatchBytes) {
    return `the encoded operation is ${bytes} bytes and cannot fit in a request body of at most ${limits.maxBatchBytes} bytes`;
  }
  return undefined;
}

/** Splits a batch in two halves (the first one the larger), to isolate records a destination refused. */
export function splitInHalves<T>(items: readonly T[]): [T[], T[]] {
  const middle = Math.ceil(items.length / 2);
  return [items.slice(0, middle), items.slice(middle)];
}

/** Accumulates items and hands out full batches. Items must already have passed `oversizeReason`. */
export class Batcher<T extends Sized> {
  readonly #limits: BatchLimits;
  #items: T[] = [];
  #bytes = 2;

  constructor(limits: BatchLimits) {
    this.#limits = limits;
  }

  /** Items buffered. */
  get size(): number {
    return this.#items.length;
  }

  /** Body bytes of the buffered items. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Buffers `item` and returns the batches now ready, in order: the previous buffer if `item` would have made it too
   * large, then the buffer with `item` if it reached `maxBatchOperations`.
   */
  add(item: T): T[][] {
    const ready: T[][] = [];
    if (this.#items.length > 0 && this.#bytes + 1 + item.bytes > this.#limits.maxBatchBytes) {
      ready.push(this.#takeAll());
    }
    this.#bytes += (this.#items.length > 0 ? 1 : 0) + item.bytes;
    this.#items.push(item);
    if (this.#items.length >= this.#limits.maxBatchOperations) ready.push(this.#takeAll());
    return ready;
  }

  /** Takes what is buffered (a partial batch), or `undefined` when nothing is. */
  take(): T[] | undefined {
    return this.#items.length > 0 ? this.#takeAll() : undefined;
  }

  #takeAll(): T[] {
    const items = this.#items;
    this.#items = [];
    this.#bytes = 2;
    return items;
  }
}
