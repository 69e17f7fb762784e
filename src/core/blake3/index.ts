/**
 * BLAKE3 with subtree access. Picks the fastest implementation this runtime supports:
 * the WebAssembly SIMD backend (`wasm-simd`, see `wasm.ts`) when the runtime validates its
 * module, otherwise the portable TypeScript one (`js`).
 *
 * Environment: `DSTORE_BLAKE3=js` forces the portable implementation (for tests, debugging
 * and comparisons); any other value, or none, means automatic selection.
 */
import { blake3js } from './js.js'
import { createWasmBlake3, wasmSupported } from './wasm.js'
import type { Blake3 } from './interface.js'

export * from './interface.js'

function select (): Blake3 {
  const forced = typeof process === 'object' ? process.env?.DSTORE_BLAKE3 : undefined
  if (forced === 'js') return blake3js
  if (!wasmSupported()) return blake3js
  try {
    return createWasmBlake3()
  } catch {
    return blake3js
  }
}

/** The implementation dstore uses. */
export const blake3: Blake3 = select()

/** BLAKE3 hash (32 bytes) of `data`. */
export function hash (data: Uint8Array): Uint8Array {
  return blake3.subtreeCV(data, 0, true)
}
