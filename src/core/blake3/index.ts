/**
 * BLAKE3 with subtree access. Picks the fastest implementation this runtime supports.
 */
import { blake3js } from './js.js'
import type { Blake3 } from './interface.js'

export * from './interface.js'

/** The implementation dstore uses. */
export const blake3: Blake3 = blake3js

/** BLAKE3 hash (32 bytes) of `data`. */
export function hash (data: Uint8Array): Uint8Array {
  return blake3.subtreeCV(data, 0, true)
}
