/** Deterministic pseudo-random test values, identical for every system (xorshift32). */

/** `size` bytes for `seed`: the same bytes in every process and every run. */
export function data (size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  const words = new Uint32Array(out.buffer, 0, size >>> 2)
  let x = (seed * 2654435761) | 1
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x }
  for (let i = words.length * 4; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x }
  return out
}

/** The same bytes as `data(size, seed)`, generated 1 MiB at a time (for values too big to hold). */
export function * dataPieces (size: number, seed: number, piece = 1 << 20): Generator<Uint8Array> {
  // Each piece has its own sub-seed so pieces can be generated independently.
  for (let i = 0, off = 0; off < size; i++, off += piece) yield data(Math.min(piece, size - off), seed * 1_000_003 + i)
}
