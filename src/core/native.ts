/**
 * dstore's native addon (`native/`, built by `npm install`): the BLAKE3 backend
 * (`blake3/native.ts`), and the buffer addresses and page-cache residency the fs store's
 * O_DIRECT reads and writes need (`store/fs/direct.ts`). `scripts/build-native.mjs` builds it with npm's own node-gyp and a C
 * compiler; where that fails the install still succeeds, and {@link loadNativeAddon} returns
 * undefined: dstore then hashes with WebAssembly and writes through the page cache.
 *
 * The addon is found by its path from this module upwards (`build/Release/dstore_native.node`
 * of the package), no further than dstore's own package folder: this file runs from
 * `dist/src/core/` and, bundled, from `dist/bin/` or `dist/bundle/`.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The addon's exports (`native/dstore_addon.c` registers them). */
export interface NativeAddon {
  subtree: (data: Uint8Array, chunkCounter: number, isRoot: boolean, out: Uint8Array, outOffset: number) => void
  groups: (data: Uint8Array, chunkCounter: number, groupLog: number, out: Uint8Array, outOffset: number) => void
  parent: (left: Uint8Array, right: Uint8Array, isRoot: boolean, out: Uint8Array, outOffset: number) => void
  simdDegree: () => number
  /** The address of `view`'s first byte modulo `alignment` (a power of two, at most 1 MiB). */
  misalignment: (view: Uint8Array, alignment: number) => number
  /** Bytes of the pages covering file `fd`'s bytes [offset, offset + length) that the page cache holds; -1 where that cannot be told. */
  residentBytes: (fd: number, offset: number, length: number) => number
  /**
   * Backs the whole pages inside `view` with writable memory (MADV_POPULATE_WRITE): the bytes it
   * did, -1 where this system cannot, -2 where this call failed. Optional: an addon built by an
   * older dstore lacks it, and is still used for the rest.
   */
  prefault?: (view: Uint8Array) => number
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
 * Where the addon was built, if it was: `build/Release/dstore_native.node` in this module's
 * folder or one above it, up to dstore's package folder and never beyond it (so no other
 * package's file of that name is loaded).
 */
export function nativeAddonPath (): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'build', 'Release', 'dstore_native.node')
    if (existsSync(candidate)) return candidate
    const up = dirname(dir)
    if (isDstorePackage(dir) || up === dir) break
    dir = up
  }
  return undefined
}

let loaded: { addon: NativeAddon | undefined } | undefined

/**
 * The addon, loaded once per thread, or undefined when it was not built here or does not load
 * (another libc or CPU, a copied node_modules: said once, as a process warning), or when an
 * addon from an older dstore lacks an entry point this one calls.
 */
export function loadNativeAddon (): NativeAddon | undefined {
  if (loaded !== undefined) return loaded.addon
  loaded = { addon: undefined }
  const path = nativeAddonPath()
  if (path === undefined) return undefined
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon
    const missing = (['subtree', 'groups', 'parent', 'simdDegree', 'misalignment', 'residentBytes'] as const).filter(k => typeof addon[k] !== 'function')
    if (missing.length > 0) throw new Error(`it lacks ${missing.join(', ')}: rebuild it with \`npm rebuild dstore\``)
    addon.simdDegree()
    loaded.addon = addon
  } catch (err) {
    process.emitWarning(`dstore: the native addon ${path} does not load (${err instanceof Error ? err.message : String(err)}); hashing with WebAssembly, and large puts write through the page cache`, { code: 'DSTORE_NATIVE' })
  }
  return loaded.addon
}
