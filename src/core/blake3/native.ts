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
 * of the package), no further than dstore's own package folder: this file runs from
 * `dist/src/core/blake3/` and, bundled, from `dist/bin/` or `dist/bundle/`.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { OUT_LEN, type Blake3 } from './interface.js'

/** The addon's exports (native/dstore_blake3.c). */
interface Addon {
  subtree: (data: Uint8Array, chunkCounter: number, isRoot: boolean, out: Uint8Array, outOffset: number) => void
  groups: (data: Uint8Array, chunkCounter: number, groupLog: number, out: Uint8Array, outOffset: number) => void
  parent: (left: Uint8Array, right: Uint8Array, isRoot: boolean, out: Uint8Array, outOffset: number) => void
  simdDegree: () => number
}

/** Whether `dir` is dstore's package folder (where the upward search stops). */
function isDstorePackage (dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'dstore'
  } catch {
    return false
  }
}

/**
 * Where the addon was built, if it was: `build/Release/dstore_blake3.node` in this module's
 * folder or one above it, up to dstore's package folder and never beyond it (so no other
 * package's file of that name is loaded).
 */
export function nativeAddonPath (): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'build', 'Release', 'dstore_blake3.node')
    if (existsSync(candidate)) return candidate
    const up = dirname(dir)
    if (isDstorePackage(dir) || up === dir) break
    dir = up
  }
  return undefined
}

/** The native backend with its SIMD degree, or undefined when the addon was not built here. */
export function loadNativeBlake3 (): (Blake3 & { simdDegree: number }) | undefined {
  const path = nativeAddonPath()
  if (path === undefined) return undefined
  let addon: Addon
  let simdDegree: number
  try {
    addon = createRequire(import.meta.url)(path) as Addon
    simdDegree = addon.simdDegree()
  } catch (err) {
    // Built, but not loadable here (another libc or CPU, a copied node_modules): say so once.
    process.emitWarning(`dstore: the native BLAKE3 addon ${path} does not load (${err instanceof Error ? err.message : String(err)}); hashing with WebAssembly`, { code: 'DSTORE_NATIVE_BLAKE3' })
    return undefined
  }
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
