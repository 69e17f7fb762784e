/**
 * The BLAKE3 operations verified streaming needs, beyond a plain hash.
 *
 * BLAKE3 hashes 1 KiB chunks into 32-byte chaining values (CVs) and merges pairs of CVs into
 * parent CVs up a binary tree whose left subtrees are always the largest power of two chunks
 * that leaves something on the right. Only the topmost node is finalised with the ROOT flag.
 * A verifier that knows the root hash can therefore check any subtree once it knows the CVs
 * along its path, which is what `docs/PROTOCOL.md` builds on.
 */

/** Bytes in a BLAKE3 chunk. */
export const CHUNK_LEN = 1024
/** Bytes in a BLAKE3 chaining value and in a default-length hash. */
export const OUT_LEN = 32

/** A BLAKE3 implementation that exposes subtree chaining values. */
export interface Blake3 {
  /** Name of the implementation, for benchmarks and diagnostics (`'wasm-simd'`, `'js'`). */
  readonly name: string

  /**
   * Chaining value of the subtree made of `data`, whose first chunk has index `chunkCounter`.
   *
   * `data` must be a valid BLAKE3 subtree: a whole power-of-two number of chunks starting at a
   * multiple of that number, or the last (possibly partial) subtree of a value. With `isRoot`
   * the result is the BLAKE3 hash of the whole value (then `chunkCounter` must be 0).
   * Writes into `out` (32 bytes at `outOffset`) when given, and returns it.
   */
  subtreeCV: (data: Uint8Array, chunkCounter: number, isRoot: boolean, out?: Uint8Array, outOffset?: number) => Uint8Array

  /**
   * Chaining values of `count` consecutive full subtrees of `2^groupLog` chunks each, the first
   * starting at chunk `chunkCounter`. `data` holds exactly `count << groupLog` chunks. None is
   * finalised as root. Writes `count * 32` bytes into `out` at `outOffset`.
   */
  groupCVs: (data: Uint8Array, chunkCounter: number, groupLog: number, out: Uint8Array, outOffset?: number) => void

  /** Merges two child chaining values into their parent's (the BLAKE3 hash when `isRoot`). */
  parentCV: (left: Uint8Array, right: Uint8Array, isRoot: boolean, out?: Uint8Array, outOffset?: number) => Uint8Array
}
