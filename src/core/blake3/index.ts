/**
 * BLAKE3 with subtree access. Picks the fastest implementation this runtime has:
 * the native addon (`native-simd<N>`, see `native.ts`) when the install built it and it has a
 * SIMD kernel for this CPU (N ≥ 4 chunks at once; the addon's portable C, N = 1, is slower
 * than WebAssembly SIMD), otherwise
 * the WebAssembly SIMD backend (`wasm-simd`, see `wasm.ts`) when the runtime validates its
 * module, otherwise the portable TypeScript one (`js`). All three compute the same bytes
 * (test/test-blake3 checks each against the official vectors and against each other).
 *
 * Environment: `DSTORE_BLAKE3=js` forces the portable implementation, `DSTORE_BLAKE3=wasm`
 * the WebAssembly one and `DSTORE_BLAKE3=native` the addon whatever its kernel (for tests,
 * debugging and comparisons); any other value, or none, means automatic selection.
 */
import { blake3js } from './js.js'
import { loadNativeBlake3 } from './native.js'
import { createWasmBlake3, wasmSupported } from './wasm.js'
import type { Blake3 } from './interface.js'

export * from './interface.js'

function select (): Blake3 {
  const forced = typeof process === 'object' ? process.env?.DSTORE_BLAKE3 : undefined
  if (forced === 'js') return blake3js
  if (forced !== 'wasm') {
    const native = loadNativeBlake3()
    if (native !== undefined && (native.simdDegree >= 4 || forced === 'native')) return native
  }
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
