/**
 * Portable BLAKE3 in TypeScript: the reference implementation and the fallback when
 * WebAssembly SIMD is unavailable.
 *
 * Follows the BLAKE3 specification (https://github.com/BLAKE3-team/BLAKE3-specs): 7-round
 * compression over 64-byte blocks, 1 KiB chunks, a binary tree of parent nodes. Only the
 * default hash mode (no key, no derive_key) is implemented because CIDs use only that.
 * It works on 32-bit integers held in locals and allocates nothing per block.
 */
import { CHUNK_LEN, OUT_LEN, type Blake3 } from './interface.js'

export const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
])

export const CHUNK_START = 1
export const CHUNK_END = 2
export const PARENT = 4
export const ROOT = 8

const BLOCK_LEN = 64

/** Message word order for each of the 7 rounds (the permutation applied round after round). */
const SCHEDULE: Uint8Array = (() => {
  const perm = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
  const out = new Uint8Array(7 * 16)
  let order = Array.from({ length: 16 }, (_, i) => i)
  for (let r = 0; r < 7; r++) {
    out.set(order, r * 16)
    order = perm.map(p => order[p])
  }
  return out
})()

/**
 * The BLAKE3 compression function. Reads 16 message words from `m` at `mOff`, the input CV
 * from `cv` at `cvOff`, and writes the first 8 output words (the new CV) to `out` at `outOff`.
 */
export function compress (cv: Uint32Array, cvOff: number, m: Uint32Array, mOff: number,
  counterLo: number, counterHi: number, blockLen: number, flags: number,
  out: Uint32Array, outOff: number): void {
  let v0 = cv[cvOff]; let v1 = cv[cvOff + 1]; let v2 = cv[cvOff + 2]; let v3 = cv[cvOff + 3]
  let v4 = cv[cvOff + 4]; let v5 = cv[cvOff + 5]; let v6 = cv[cvOff + 6]; let v7 = cv[cvOff + 7]
  let v8 = 0x6a09e667; let v9 = 0xbb67ae85; let v10 = 0x3c6ef372; let v11 = 0xa54ff53a
  let v12 = counterLo | 0; let v13 = counterHi | 0; let v14 = blockLen | 0; let v15 = flags | 0
  const s = SCHEDULE
  for (let r = 0; r < 112; r += 16) {
    // Columns.
    v0 = (v0 + v4 + m[mOff + s[r]]) | 0; v12 ^= v0; v12 = (v12 >>> 16) | (v12 << 16)
    v8 = (v8 + v12) | 0; v4 ^= v8; v4 = (v4 >>> 12) | (v4 << 20)
    v0 = (v0 + v4 + m[mOff + s[r + 1]]) | 0; v12 ^= v0; v12 = (v12 >>> 8) | (v12 << 24)
    v8 = (v8 + v12) | 0; v4 ^= v8; v4 = (v4 >>> 7) | (v4 << 25)
    v1 = (v1 + v5 + m[mOff + s[r + 2]]) | 0; v13 ^= v1; v13 = (v13 >>> 16) | (v13 << 16)
    v9 = (v9 + v13) | 0; v5 ^= v9; v5 = (v5 >>> 12) | (v5 << 20)
    v1 = (v1 + v5 + m[mOff + s[r + 3]]) | 0; v13 ^= v1; v13 = (v13 >>> 8) | (v13 << 24)
    v9 = (v9 + v13) | 0; v5 ^= v9; v5 = (v5 >>> 7) | (v5 << 25)
    v2 = (v2 + v6 + m[mOff + s[r + 4]]) | 0; v14 ^= v2; v14 = (v14 >>> 16) | (v14 << 16)
    v10 = (v10 + v14) | 0; v6 ^= v10; v6 = (v6 >>> 12) | (v6 << 20)
    v2 = (v2 + v6 + m[mOff + s[r + 5]]) | 0; v14 ^= v2; v14 = (v14 >>> 8) | (v14 << 24)
    v10 = (v10 + v14) | 0; v6 ^= v10; v6 = (v6 >>> 7) | (v6 << 25)
    v3 = (v3 + v7 + m[mOff + s[r + 6]]) | 0; v15 ^= v3; v15 = (v15 >>> 16) | (v15 << 16)
    v11 = (v11 + v15) | 0; v7 ^= v11; v7 = (v7 >>> 12) | (v7 << 20)
    v3 = (v3 + v7 + m[mOff + s[r + 7]]) | 0; v15 ^= v3; v15 = (v15 >>> 8) | (v15 << 24)
    v11 = (v11 + v15) | 0; v7 ^= v11; v7 = (v7 >>> 7) | (v7 << 25)
    // Diagonals.
    v0 = (v0 + v5 + m[mOff + s[r + 8]]) | 0; v15 ^= v0; v15 = (v15 >>> 16) | (v15 << 16)
    v10 = (v10 + v15) | 0; v5 ^= v10; v5 = (v5 >>> 12) | (v5 << 20)
    v0 = (v0 + v5 + m[mOff + s[r + 9]]) | 0; v15 ^= v0; v15 = (v15 >>> 8) | (v15 << 24)
    v10 = (v10 + v15) | 0; v5 ^= v10; v5 = (v5 >>> 7) | (v5 << 25)
    v1 = (v1 + v6 + m[mOff + s[r + 10]]) | 0; v12 ^= v1; v12 = (v12 >>> 16) | (v12 << 16)
    v11 = (v11 + v12) | 0; v6 ^= v11; v6 = (v6 >>> 12) | (v6 << 20)
    v1 = (v1 + v6 + m[mOff + s[r + 11]]) | 0; v12 ^= v1; v12 = (v12 >>> 8) | (v12 << 24)
    v11 = (v11 + v12) | 0; v6 ^= v11; v6 = (v6 >>> 7) | (v6 << 25)
    v2 = (v2 + v7 + m[mOff + s[r + 12]]) | 0; v13 ^= v2; v13 = (v13 >>> 16) | (v13 << 16)
    v8 = (v8 + v13) | 0; v7 ^= v8; v7 = (v7 >>> 12) | (v7 << 20)
    v2 = (v2 + v7 + m[mOff + s[r + 13]]) | 0; v13 ^= v2; v13 = (v13 >>> 8) | (v13 << 24)
    v8 = (v8 + v13) | 0; v7 ^= v8; v7 = (v7 >>> 7) | (v7 << 25)
    v3 = (v3 + v4 + m[mOff + s[r + 14]]) | 0; v14 ^= v3; v14 = (v14 >>> 16) | (v14 << 16)
    v9 = (v9 + v14) | 0; v4 ^= v9; v4 = (v4 >>> 12) | (v4 << 20)
    v3 = (v3 + v4 + m[mOff + s[r + 15]]) | 0; v14 ^= v3; v14 = (v14 >>> 8) | (v14 << 24)
    v9 = (v9 + v14) | 0; v4 ^= v9; v4 = (v4 >>> 7) | (v4 << 25)
  }
  out[outOff] = v0 ^ v8; out[outOff + 1] = v1 ^ v9; out[outOff + 2] = v2 ^ v10; out[outOff + 3] = v3 ^ v11
  out[outOff + 4] = v4 ^ v12; out[outOff + 5] = v5 ^ v13; out[outOff + 6] = v6 ^ v14; out[outOff + 7] = v7 ^ v15
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** Scratch space: one block's words, a CV, and a CV stack deep enough for 2^53 chunks. */
const block = new Uint32Array(16)
const blockBytes = new Uint8Array(block.buffer)
const cvStack = new Uint32Array(8 * 64)
const parentBlock = new Uint32Array(16)

function loadBlock (data: Uint8Array, offset: number, len: number): void {
  if (len < BLOCK_LEN) blockBytes.fill(0)
  blockBytes.set(data.subarray(offset, offset + len))
  if (!littleEndian) {
    for (let i = 0; i < 16; i++) {
      const w = block[i]
      block[i] = ((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24)
    }
  }
}

function counterHi (counter: number): number {
  return Math.floor(counter / 0x100000000) | 0
}

/**
 * Compresses one chunk (≤ 1 KiB) of `data` at `offset` into `out[outOff..+8]`.
 * With `root`, the last block is finalised with the ROOT flag.
 */
function chunkCV (data: Uint8Array, offset: number, len: number, counter: number, root: boolean,
  out: Uint32Array, outOff: number): void {
  out.set(IV, outOff)
  const lo = counter | 0
  const hi = counterHi(counter)
  let pos = 0
  let flags = CHUNK_START
  // An empty chunk still has one (empty) block.
  do {
    const blen = Math.min(BLOCK_LEN, len - pos)
    const last = pos + blen >= len
    loadBlock(data, offset + pos, blen)
    let f = flags
    if (last) f |= CHUNK_END | (root ? ROOT : 0)
    compress(out, outOff, block, 0, lo, hi, blen, f, out, outOff)
    flags = 0
    pos += blen
  } while (pos < len)
}

function parentInto (stack: Uint32Array, leftOff: number, rightOff: number, root: boolean,
  out: Uint32Array, outOff: number): void {
  parentBlock.set(stack.subarray(leftOff, leftOff + 8), 0)
  parentBlock.set(stack.subarray(rightOff, rightOff + 8), 8)
  compress(IV, 0, parentBlock, 0, 0, 0, BLOCK_LEN, PARENT | (root ? ROOT : 0), out, outOff)
}

function wordsToBytes (words: Uint32Array, wOff: number, out: Uint8Array, outOffset: number): void {
  for (let i = 0; i < 8; i++) {
    const w = words[wOff + i]
    const o = outOffset + i * 4
    out[o] = w; out[o + 1] = w >>> 8; out[o + 2] = w >>> 16; out[o + 3] = w >>> 24
  }
}

function bytesToWords (bytes: Uint8Array, out: Uint32Array, outOff: number): void {
  for (let i = 0; i < 8; i++) {
    const o = i * 4
    out[outOff + i] = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24)
  }
}

/**
 * Subtree CV into `result` (8 words). Chunks are pushed on a CV stack and merged the way the
 * BLAKE3 reference does: after chunk i, merge as many times as i+1 has trailing zero bits,
 * except that the final merges (and the root flag) are left to the end.
 */
function subtreeWords (data: Uint8Array, chunkCounter: number, isRoot: boolean, result: Uint32Array): void {
  const len = data.length
  if (len <= CHUNK_LEN) {
    chunkCV(data, 0, len, chunkCounter, isRoot, result, 0)
    return
  }
  const chunks = Math.ceil(len / CHUNK_LEN)
  let depth = 0
  for (let i = 0; i < chunks; i++) {
    const off = i * CHUNK_LEN
    chunkCV(data, off, Math.min(CHUNK_LEN, len - off), chunkCounter + i, false, cvStack, depth * 8)
    depth++
    if (i === chunks - 1) break
    // Merge completed subtrees: a chunk count (relative to the subtree start) ending in k zero bits closes k levels.
    let done = i + 1
    while ((done & 1) === 0) {
      depth--
      parentInto(cvStack, (depth - 1) * 8, depth * 8, false, cvStack, (depth - 1) * 8)
      done >>>= 1
    }
  }
  while (depth > 1) {
    depth--
    const root = isRoot && depth === 1
    parentInto(cvStack, (depth - 1) * 8, depth * 8, root, depth === 1 ? result : cvStack, depth === 1 ? 0 : (depth - 1) * 8)
  }
}

const resultWords = new Uint32Array(8)
const leftWords = new Uint32Array(16)

/** The portable implementation of {@link Blake3}. */
export const blake3js: Blake3 = {
  name: 'js',

  subtreeCV (data, chunkCounter, isRoot, out = new Uint8Array(OUT_LEN), outOffset = 0) {
    subtreeWords(data, chunkCounter, isRoot, resultWords)
    wordsToBytes(resultWords, 0, out, outOffset)
    return out
  },

  groupCVs (data, chunkCounter, groupLog, out, outOffset = 0) {
    const groupLen = CHUNK_LEN << groupLog
    const count = data.length / groupLen
    if (!Number.isInteger(count)) throw new TypeError('groupCVs needs whole groups')
    for (let g = 0; g < count; g++) {
      subtreeWords(data.subarray(g * groupLen, (g + 1) * groupLen), chunkCounter + (g << groupLog), false, resultWords)
      wordsToBytes(resultWords, 0, out, outOffset + g * OUT_LEN)
    }
  },

  parentCV (left, right, isRoot, out = new Uint8Array(OUT_LEN), outOffset = 0) {
    bytesToWords(left, leftWords, 0)
    bytesToWords(right, leftWords, 8)
    compress(IV, 0, leftWords, 0, 0, 0, BLOCK_LEN, PARENT | (isRoot ? ROOT : 0), resultWords, 0)
    wordsToBytes(resultWords, 0, out, outOffset)
    return out
  }
}
