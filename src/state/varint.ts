/** Unsigned LEB128 integers, as the snapshot files store lengths and counts. */

/** Writes `value` at `offset`; returns the offset after it. */
export function writeVarint(buffer: Buffer, offset: number, value: number): number {
  let v = value;
  let o = offset;
  while (v >= 0x80) {
    buffer[o++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buffer[o++] = v;
  return o;
}

/** Reads the integer at `at.offset` and moves `at.offset` past it; -1 when the bytes end (at `end`) before it does. */
export function readVarint(buffer: Buffer, at: { offset: number }, end: number): number {
  let value = 0;
  let shift = 0;
  for (let o = at.offset; o < end; o++) {
    const byte = buffer[o]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      at.offset = o + 1;
      return value;
    }
    shift += 7;
  }
  return -1;
}
