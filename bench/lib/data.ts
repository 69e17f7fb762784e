/**
 * Deterministic pseudo-random test values, identical for every system and process (xorshift32).
 * A value is a concatenation of 1 MiB pieces, each from its own sub-seed, so `data` (whole) and
 * `dataPieces` (streamed, for values too big to hold) give exactly the same bytes.
 */

const PIECE = 1 << 20

function fill (out: Uint8Array, seed: number): void {
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2)
  let x = (seed * 2654435761) | 1
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x }
  for (let i = words.length * 4; i < out.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x }
}

/** `size` bytes for `seed`. */
export function data (size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  for (let i = 0, off = 0; off < size; i++, off += PIECE) fill(out.subarray(off, Math.min(size, off + PIECE)), seed * 1_000_003 + i)
  return out
}

/** The same bytes as `data(size, seed)`, one fresh 1 MiB piece at a time. */
export function * dataPieces (size: number, seed: number): Generator<Uint8Array> {
  for (let i = 0, off = 0; off < size; i++, off += PIECE) {
    const piece = new Uint8Array(Math.min(PIECE, size - off))
    fill(piece, seed * 1_000_003 + i)
    yield piece
  }
}
