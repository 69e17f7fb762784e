/**
 * BLAKE3 on the native addon (`../native.ts`): the fastest backend, where it was built.
 *
 * `native/dstore_blake3.c` wraps the official BLAKE3 C implementation (vendored in
 * `native/blake3/`), which selects AVX-512, AVX2, SSE4.1, SSE2 or NEON at run time, and hashes
 * the caller's bytes in place: the WebAssembly backend must first copy every byte into its own
 * memory, four chunks wide at most. Where the addon was not built or does not load,
 * `loadNativeBlake3` returns undefined, so dstore hashes with WebAssembly instead.
 */
import { loadNativeAddon } from '../native.js'
import { OUT_LEN, type Blake3 } from './interface.js'

/** The native backend with its SIMD degree, or undefined when the addon was not built here. */
export function loadNativeBlake3 (): (Blake3 & { simdDegree: number }) | undefined {
  const addon = loadNativeAddon()
  if (addon === undefined) return undefined
  const simdDegree = addon.simdDegree()
  return {
    name: `native-simd${simdDegree}`,
    simdDegree,

    subtreeCV (data, chunkCounter, isRoot, out = new Uint8Array(OUT_LEN), outOffset = 0) {
      addon.subtree(data, chunkCounter, isRoot, out, outOffset)
      return out
    },

    groupCVs (data, chunkCounter, groupLog, out, outOffset = 0) {
      addon.groups(data, chunkCounter, groupLog, out, outOffset)
    },

    parentCV (left, right, isRoot, out = new Uint8Array(OUT_LEN), outOffset = 0) {
      addon.parent(left, right, isRoot, out, outOffset)
      return out
    }
  }
}
