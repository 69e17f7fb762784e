/**
 * BLAKE3 as a native addon: the fastest backend, where it was built.
 *
 * `native/dstore_blake3.c` wraps the official BLAKE3 C implementation (vendored in
 * `native/blake3/`), which selects AVX-512, AVX2, SSE4.1, SSE2 or NEON at run time, and hashes
 * the caller's bytes in place: the WebAssembly backend must first copy every byte into its own
 * memory, four chunks wide at most. `npm install` builds it (`scripts/build-native.mjs`, with
 * npm's own node-gyp and a C compiler); where that fails the install still succeeds, and
 * `loadNativeBlake3` returns undefined, so dstore hashes with WebAssembly instead.
 *
 * The addon is found by its path from this module upwards (`build/Release/dstore_blake3.node`
 * of the package): this file runs from `dist/src/core/blake3/` and, bundled, from `dist/bin/`
 * or `dist/bundle/`.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { OUT_LEN, type Blake3 } from './interface.js'

/** The addon's exports (native/dstore_blake3.c). */
interface Addon {
  subtree: (data: Uint8Array, chunkCounter: number, isRoot: boolean, out: Uint8Array, outOffset: number) => void
  groups: (data: Uint8Array, chunkCounter: number, groupLog: number, out: Uint8Array, outOffset: number) => void
  parent: (block: Uint8Array, isRoot: boolean, out: Uint8Array, outOffset: number) => void
  simdDegree: () => number
}

/** Where the addon was built, if it was: the first `build/Release/dstore_blake3.node` upwards. */
export function nativeAddonPath (): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'build', 'Release', 'dstore_blake3.node')
    if (existsSync(candidate)) return candidate
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  return undefined
}

/** The native backend, or undefined when the addon was not built or does not load here. */
export function loadNativeBlake3 (): Blake3 | undefined {
  const path = nativeAddonPath()
  if (path === undefined) return undefined
  let addon: Addon
  try {
    addon = createRequire(import.meta.url)(path) as Addon
  } catch {
    return undefined
  }
  const block = new Uint8Array(2 * OUT_LEN)
  return {
    name: `native-simd${addon.simdDegree()}`,

    subtreeCV (data, chunkCounter, isRoot, out = new Uint8Array(OUT_LEN), outOffset = 0) {
      addon.subtree(data, chunkCounter, isRoot, out, outOffset)
      return out
    },

    groupCVs (data, chunkCounter, groupLog, out, outOffset = 0) {
      addon.groups(data, chunkCounter, groupLog, out, outOffset)
    },

    parentCV (left, right, isRoot, out = new Uint8Array(OUT_LEN), outOffset = 0) {
      if (left.length !== OUT_LEN || right.length !== OUT_LEN) throw new TypeError('parentCV needs two 32-byte CVs')
      block.set(left, 0)
      block.set(right, OUT_LEN)
      addon.parent(block, isRoot, out, outOffset)
      return out
    }
  }
}
