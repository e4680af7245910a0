// The HPACK Huffman code (RFC 7541 Appendix B) and a 4-bits-at-a-time decoder built from it.
//
// The code is canonical: codes of one length are consecutive in symbol order and shorter codes
// come first, so the 257 code lengths below (symbols 0–255 and EOS = 256, transcribed from the
// RFC's table) determine every code. test/unit/cri/hpack.test.ts checks derived codes against
// rows of the RFC table.

import { RuntimeError } from "../errors.ts";

/** Bit length of the Huffman code of each symbol 0–256 (256 = EOS), RFC 7541 Appendix B. */
export const HUFFMAN_LENGTHS: readonly number[] = [
  // 0–31: control characters
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  // 32–63: ' ' ! " # $ % & ' ( ) * + , - . / 0–9 : ; < = > ?
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  // 64–95: @ A–Z [ \ ] ^ _
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  // 96–127: ` a–z { | } ~ DEL
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  // 128–255
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23,
  21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26,
  24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27,
  27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  // 256: EOS
  30,
];

/** The code of each symbol (MSB-first, `HUFFMAN_LENGTHS[s]` bits), derived canonically. */
export const HUFFMAN_CODES: readonly number[] = canonicalCodes(HUFFMAN_LENGTHS);

/**
 * Decodes Huffman-coded `src[start, end)` into `dst` from offset 0 and returns the number of
 * bytes written; `dst` must hold at least `(end - start) * 8 / 5` bytes. Rejects EOS in the
 * string, padding longer than 7 bits and padding that is not a prefix of EOS (RFC 7541 §5.2).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    let t = (state << 4) | (b >> 4);
    if (FAIL[t]) throw bad();
    if (SYM[t]! >= 0) dst[n++] = SYM[t]!;
    state = NEXT[t]!;
    t = (state << 4) | (b & 15);
    if (FAIL[t]) throw bad();
    if (SYM[t]! >= 0) dst[n++] = SYM[t]!;
    state = NEXT[t]!;
  }
  if (!ACCEPT[state]) throw new RuntimeError("invalid-argument", "hpack: invalid huffman padding");
  return n;
}

// --- internal ---

function canonicalCodes(lengths: readonly number[]): number[] {
  const order = lengths.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  const codes = new Array<number>(lengths.length).fill(0);
  let code = 0;
  let prev = order[0]!.len;
  for (const { len, sym } of order) {
    code *= 2 ** (len - prev);
    prev = len;
    codes[sym] = code;
    code += 1;
  }
  return codes;
}

function bad(): RuntimeError {
  return new RuntimeError("invalid-argument", "hpack: EOS inside a huffman-coded string");
}

// The decoding tree has 257 leaves and 256 internal nodes (root = 0). The transition tables are
// indexed by (internal node << 4 | next 4 bits): the node reached, the symbol emitted on the way
// (at most one: every code is at least 5 bits long) or -1, and whether EOS was decoded.
const NODES = 256;
const NEXT = new Uint8Array(NODES * 16);
const SYM = new Int16Array(NODES * 16).fill(-1);
const FAIL = new Uint8Array(NODES * 16);
/** Internal nodes at which the string may end: the bits since the last symbol are ≤ 7 ones. */
const ACCEPT = new Uint8Array(NODES);

(function buildDecoder() {
  // child[node * 2 + bit]: ≥ 0 an internal node, < 0 a leaf holding symbol -(child + 1)
  const child = new Int32Array(NODES * 2);
  const depth = new Uint8Array(NODES);
  const allOnes = new Uint8Array(NODES);
  allOnes[0] = 1;
  let used = 1;
  for (let sym = 0; sym < HUFFMAN_LENGTHS.length; sym++) {
    const len = HUFFMAN_LENGTHS[sym]!;
    const code = HUFFMAN_CODES[sym]!;
    let node = 0;
    for (let k = len - 1; k >= 0; k--) {
      const bit = Math.floor(code / 2 ** k) & 1;
      if (k === 0) {
        child[node * 2 + bit] = -(sym + 1);
        break;
      }
      let next = child[node * 2 + bit]!;
      if (next === 0) {
        next = used++;
        child[node * 2 + bit] = next;
        depth[next] = depth[node]! + 1;
        allOnes[next] = allOnes[node]! & bit;
      }
      node = next;
    }
  }
  if (used !== NODES) throw new Error(`hpack huffman table: ${used} internal nodes, expected ${NODES}`);
  for (let s = 0; s < NODES; s++) {
    ACCEPT[s] = allOnes[s]! && depth[s]! <= 7 ? 1 : 0;
    for (let nib = 0; nib < 16; nib++) {
      const t = (s << 4) | nib;
      let node = s;
      for (let k = 3; k >= 0; k--) {
        const c = child[node * 2 + ((nib >> k) & 1)]!;
        if (c >= 0) {
          node = c;
          continue;
        }
        const sym = -c - 1;
        if (sym === 256) FAIL[t] = 1;
        else SYM[t] = sym;
        node = 0;
      }
      NEXT[t] = node;
    }
  }
})();
