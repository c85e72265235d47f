/**
 * MD5 (RFC 1321) of a string's UTF-8 bytes, computed in JavaScript for short strings. The hashes of the snapshot
 * are MD5 of each cell's text, one call per property per row: the native `crypto.hash` spends most of its ~0.5 µs
 * per call crossing into C++ (algorithm lookup, string conversion, digest string), while a short cell is a single
 * 64-byte block that JIT-compiled code hashes in a fraction of that. The result is the very same MD5 (tested
 * against node:crypto on many inputs), so snapshots, the journal and the warehouse's SQL `md5()` agree as before.
 * Long strings go to node:crypto, which is faster there.
 */
import crypto from "node:crypto";
import { endianness } from "node:os";

/** Strings longer than this (in UTF-16 units) are hashed natively: past a few blocks the call overhead no longer dominates. */
const MAX_JS_LENGTH = 64;
/** Room for MAX_JS_LENGTH characters of up to 3 UTF-8 bytes each, the padding and the length. */
const bytes = new Uint8Array(((MAX_JS_LENGTH * 3 + 72 + 63) >> 6) << 6);
const words = new Int32Array(bytes.buffer);
/** The Int32Array view reads words little-endian only on a little-endian machine. */
const LITTLE_ENDIAN = endianness() === "LE";

/** The running state A, B, C, D. */
const state = new Int32Array(4);

/** Writes `text` as UTF-8 into `bytes` (a lone surrogate as U+FFFD, as Buffer and node:crypto do); returns the length. */
function utf8(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      bytes[n++] = c;
    } else if (c < 0x800) {
      bytes[n++] = 0xc0 | (c >> 6);
      bytes[n++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          bytes[n++] = 0xf0 | (c >> 18);
          bytes[n++] = 0x80 | ((c >> 12) & 0x3f);
          bytes[n++] = 0x80 | ((c >> 6) & 0x3f);
          bytes[n++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      bytes[n++] = 0xe0 | (c >> 12);
      bytes[n++] = 0x80 | ((c >> 6) & 0x3f);
      bytes[n++] = 0x80 | (c & 0x3f);
    }
  }
  return n;
}

/** Runs the compression function over the 16 words starting at word `o` (RFC 1321, section 3.4, unrolled). */
function block(o: number): void {
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let x: number;
  x = (a + ((b & c) | (~b & d)) + words[o + 0]! + -680876936) | 0;
  a = (b + ((x << 7) | (x >>> 25))) | 0;
  x = (d + ((a & b) | (~a & c)) + words[o + 1]! + -389564586) | 0;
  d = (a + ((x << 12) | (x >>> 20))) | 0;
  x = (c + ((d & a) | (~d & b)) + words[o + 2]! + 606105819) | 0;
  c = (d + ((x << 17) | (x >>> 15))) | 0;
  x = (b + ((c & d) | (~c & a)) + words[o + 3]! + -1044525330) | 0;
  b = (c + ((x << 22) | (x >>> 10))) | 0;
  x = (a + ((b & c) | (~b & d)) + words[o + 4]! + -176418897) | 0;
  a = (b + ((x << 7) | (x >>> 25))) | 0;
  x = (d + ((a & b) | (~a & c)) + words[o + 5]! + 1200080426) | 0;
  d = (a + ((x << 12) | (x >>> 20))) | 0;
  x = (c + ((d & a) | (~d & b)) + words[o + 6]! + -1473231341) | 0;
  c = (d + ((x << 17) | (x >>> 15))) | 0;
  x = (b + ((c & d) | (~c & a)) + words[o + 7]! + -45705983) | 0;
  b = (c + ((x << 22) | (x >>> 10))) | 0;
  x = (a + ((b & c) | (~b & d)) + words[o + 8]! + 1770035416) | 0;
  a = (b + ((x << 7) | (x >>> 25))) | 0;
  x = (d + ((a & b) | (~a & c)) + words[o + 9]! + -1958414417) | 0;
  d = (a + ((x << 12) | (x >>> 20))) | 0;
  x = (c + ((d & a) | (~d & b)) + words[o + 10]! + -42063) | 0;
  c = (d + ((x << 17) | (x >>> 15))) | 0;
  x = (b + ((c & d) | (~c & a)) + words[o + 11]! + -1990404162) | 0;
  b = (c + ((x << 22) | (x >>> 10))) | 0;
  x = (a + ((b & c) | (~b & d)) + words[o + 12]! + 1804603682) | 0;
  a = (b + ((x << 7) | (x >>> 25))) | 0;
  x = (d + ((a & b) | (~a & c)) + words[o + 13]! + -40341101) | 0;
  d = (a + ((x << 12) | (x >>> 20))) | 0;
  x = (c + ((d & a) | (~d & b)) + words[o + 14]! + -1502002290) | 0;
  c = (d + ((x << 17) | (x >>> 15))) | 0;
  x = (b + ((c & d) | (~c & a)) + words[o + 15]! + 1236535329) | 0;
  b = (c + ((x << 22) | (x >>> 10))) | 0;
  x = (a + ((b & d) | (c & ~d)) + words[o + 1]! + -165796510) | 0;
  a = (b + ((x << 5) | (x >>> 27))) | 0;
  x = (d + ((a & c) | (b & ~c)) + words[o + 6]! + -1069501632) | 0;
  d = (a + ((x << 9) | (x >>> 23))) | 0;
  x = (c + ((d & b) | (a & ~b)) + words[o + 11]! + 643717713) | 0;
  c = (d + ((x << 14) | (x >>> 18))) | 0;
  x = (b + ((c & a) | (d & ~a)) + words[o + 0]! + -373897302) | 0;
  b = (c + ((x << 20) | (x >>> 12))) | 0;
  x = (a + ((b & d) | (c & ~d)) + words[o + 5]! + -701558691) | 0;
  a = (b + ((x << 5) | (x >>> 27))) | 0;
  x = (d + ((a & c) | (b & ~c)) + words[o + 10]! + 38016083) | 0;
  d = (a + ((x << 9) | (x >>> 23))) | 0;
  x = (c + ((d & b) | (a & ~b)) + words[o + 15]! + -660478335) | 0;
  c = (d + ((x << 14) | (x >>> 18))) | 0;
  x = (b + ((c & a) | (d & ~a)) + words[o + 4]! + -405537848) | 0;
  b = (c + ((x << 20) | (x >>> 12))) | 0;
  x = (a + ((b & d) | (c & ~d)) + words[o + 9]! + 568446438) | 0;
  a = (b + ((x << 5) | (x >>> 27))) | 0;
  x = (d + ((a & c) | (b & ~c)) + words[o + 14]! + -1019803690) | 0;
  d = (a + ((x << 9) | (x >>> 23))) | 0;
  x = (c + ((d & b) | (a & ~b)) + words[o + 3]! + -187363961) | 0;
  c = (d + ((x << 14) | (x >>> 18))) | 0;
  x = (b + ((c & a) | (d & ~a)) + words[o + 8]! + 1163531501) | 0;
  b = (c + ((x << 20) | (x >>> 12))) | 0;
  x = (a + ((b & d) | (c & ~d)) + words[o + 13]! + -1444681467) | 0;
  a = (b + ((x << 5) | (x >>> 27))) | 0;
  x = (d + ((a & c) | (b & ~c)) + words[o + 2]! + -51403784) | 0;
  d = (a + ((x << 9) | (x >>> 23))) | 0;
  x = (c + ((d & b) | (a & ~b)) + words[o + 7]! + 1735328473) | 0;
  c = (d + ((x << 14) | (x >>> 18))) | 0;
  x = (b + ((c & a) | (d & ~a)) + words[o + 12]! + -1926607734) | 0;
  b = (c + ((x << 20) | (x >>> 12))) | 0;
  x = (a + (b ^ c ^ d) + words[o + 5]! + -378558) | 0;
  a = (b + ((x << 4) | (x >>> 28))) | 0;
  x = (d + (a ^ b ^ c) + words[o + 8]! + -2022574463) | 0;
  d = (a + ((x << 11) | (x >>> 21))) | 0;
  x = (c + (d ^ a ^ b) + words[o + 11]! + 1839030562) | 0;
  c = (d + ((x << 16) | (x >>> 16))) | 0;
  x = (b + (c ^ d ^ a) + words[o + 14]! + -35309556) | 0;
  b = (c + ((x << 23) | (x >>> 9))) | 0;
  x = (a + (b ^ c ^ d) + words[o + 1]! + -1530992060) | 0;
  a = (b + ((x << 4) | (x >>> 28))) | 0;
  x = (d + (a ^ b ^ c) + words[o + 4]! + 1272893353) | 0;
  d = (a + ((x << 11) | (x >>> 21))) | 0;
  x = (c + (d ^ a ^ b) + words[o + 7]! + -155497632) | 0;
  c = (d + ((x << 16) | (x >>> 16))) | 0;
  x = (b + (c ^ d ^ a) + words[o + 10]! + -1094730640) | 0;
  b = (c + ((x << 23) | (x >>> 9))) | 0;
  x = (a + (b ^ c ^ d) + words[o + 13]! + 681279174) | 0;
  a = (b + ((x << 4) | (x >>> 28))) | 0;
  x = (d + (a ^ b ^ c) + words[o + 0]! + -358537222) | 0;
  d = (a + ((x << 11) | (x >>> 21))) | 0;
  x = (c + (d ^ a ^ b) + words[o + 3]! + -722521979) | 0;
  c = (d + ((x << 16) | (x >>> 16))) | 0;
  x = (b + (c ^ d ^ a) + words[o + 6]! + 76029189) | 0;
  b = (c + ((x << 23) | (x >>> 9))) | 0;
  x = (a + (b ^ c ^ d) + words[o + 9]! + -640364487) | 0;
  a = (b + ((x << 4) | (x >>> 28))) | 0;
  x = (d + (a ^ b ^ c) + words[o + 12]! + -421815835) | 0;
  d = (a + ((x << 11) | (x >>> 21))) | 0;
  x = (c + (d ^ a ^ b) + words[o + 15]! + 530742520) | 0;
  c = (d + ((x << 16) | (x >>> 16))) | 0;
  x = (b + (c ^ d ^ a) + words[o + 2]! + -995338651) | 0;
  b = (c + ((x << 23) | (x >>> 9))) | 0;
  x = (a + (c ^ (b | ~d)) + words[o + 0]! + -198630844) | 0;
  a = (b + ((x << 6) | (x >>> 26))) | 0;
  x = (d + (b ^ (a | ~c)) + words[o + 7]! + 1126891415) | 0;
  d = (a + ((x << 10) | (x >>> 22))) | 0;
  x = (c + (a ^ (d | ~b)) + words[o + 14]! + -1416354905) | 0;
  c = (d + ((x << 15) | (x >>> 17))) | 0;
  x = (b + (d ^ (c | ~a)) + words[o + 5]! + -57434055) | 0;
  b = (c + ((x << 21) | (x >>> 11))) | 0;
  x = (a + (c ^ (b | ~d)) + words[o + 12]! + 1700485571) | 0;
  a = (b + ((x << 6) | (x >>> 26))) | 0;
  x = (d + (b ^ (a | ~c)) + words[o + 3]! + -1894986606) | 0;
  d = (a + ((x << 10) | (x >>> 22))) | 0;
  x = (c + (a ^ (d | ~b)) + words[o + 10]! + -1051523) | 0;
  c = (d + ((x << 15) | (x >>> 17))) | 0;
  x = (b + (d ^ (c | ~a)) + words[o + 1]! + -2054922799) | 0;
  b = (c + ((x << 21) | (x >>> 11))) | 0;
  x = (a + (c ^ (b | ~d)) + words[o + 8]! + 1873313359) | 0;
  a = (b + ((x << 6) | (x >>> 26))) | 0;
  x = (d + (b ^ (a | ~c)) + words[o + 15]! + -30611744) | 0;
  d = (a + ((x << 10) | (x >>> 22))) | 0;
  x = (c + (a ^ (d | ~b)) + words[o + 6]! + -1560198380) | 0;
  c = (d + ((x << 15) | (x >>> 17))) | 0;
  x = (b + (d ^ (c | ~a)) + words[o + 13]! + 1309151649) | 0;
  b = (c + ((x << 21) | (x >>> 11))) | 0;
  x = (a + (c ^ (b | ~d)) + words[o + 4]! + -145523070) | 0;
  a = (b + ((x << 6) | (x >>> 26))) | 0;
  x = (d + (b ^ (a | ~c)) + words[o + 11]! + -1120210379) | 0;
  d = (a + ((x << 10) | (x >>> 22))) | 0;
  x = (c + (a ^ (d | ~b)) + words[o + 2]! + 718787259) | 0;
  c = (d + ((x << 15) | (x >>> 17))) | 0;
  x = (b + (d ^ (c | ~a)) + words[o + 9]! + -343485551) | 0;
  b = (c + ((x << 21) | (x >>> 11))) | 0;
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
}

/** The first 8 bytes of the MD5 of `text`'s UTF-8 bytes, as 8 latin1 characters. */
export function md5Prefix8(text: string): string {
  if (text.length > MAX_JS_LENGTH || !LITTLE_ENDIAN) return crypto.hash("md5", text, "binary").slice(0, 8);
  const n = utf8(text);
  // Padding: 0x80, zeros up to 56 mod 64, then the length in bits as a 64-bit little-endian number.
  const total = ((n + 8) >> 6) + 1;
  const end = total << 6;
  bytes[n] = 0x80;
  bytes.fill(0, n + 1, end - 8);
  words[(end >> 2) - 2] = n << 3;
  words[(end >> 2) - 1] = n >>> 29;
  state[0] = 0x67452301;
  state[1] = 0xefcdab89;
  state[2] = 0x98badcfe;
  state[3] = 0x10325476;
  for (let i = 0; i < total; i++) block(i << 4);
  const h0 = state[0]!;
  const h1 = state[1]!;
  return String.fromCharCode(
    h0 & 0xff,
    (h0 >>> 8) & 0xff,
    (h0 >>> 16) & 0xff,
    h0 >>> 24,
    h1 & 0xff,
    (h1 >>> 8) & 0xff,
    (h1 >>> 16) & 0xff,
    h1 >>> 24,
  );
}
