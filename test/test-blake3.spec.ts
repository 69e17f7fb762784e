import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { blake3, hash, CHUNK_LEN } from '../src/core/blake3/index.js'
import { blake3js } from '../src/core/blake3/js.js'
import { loadNativeBlake3 } from '../src/core/blake3/native.js'
import { nativeAddonPath } from '../src/core/native.js'
import { createWasmBlake3, wasmSupported } from '../src/core/blake3/wasm.js'
import { LAYOUT } from '../src/core/blake3/wasm-binary.js'
import type { Blake3 } from '../src/core/blake3/interface.js'
import { blake3Input, fixture, hex, pseudoRandom } from './helpers.js'

interface Blake3Vectors { cases: Array<{ input_len: number, hash: string }> }
const vectors = fixture<Blake3Vectors>('blake3-test-vectors.json')

/** Subtree CV computed the slow, obviously-right way: recursive split, per the spec. */
function referenceSubtree (impl: Blake3, data: Uint8Array, counter: number, isRoot: boolean): Uint8Array {
  const chunks = Math.max(1, Math.ceil(data.length / CHUNK_LEN))
  if (chunks === 1) return impl.subtreeCV(data, counter, isRoot)
  const leftChunks = 2 ** Math.floor(Math.log2(chunks - 1))
  const left = referenceSubtree(impl, data.subarray(0, leftChunks * CHUNK_LEN), counter, false)
  const right = referenceSubtree(impl, data.subarray(leftChunks * CHUNK_LEN), counter + leftChunks, false)
  return impl.parentCV(left, right, isRoot)
}

/** The native and WASM backends are tested directly too, so DSTORE_BLAKE3 cannot hide them from the suite. */
const wasm: Blake3 | undefined = wasmSupported() ? createWasmBlake3() : undefined
const native = loadNativeBlake3()
const impls: Blake3[] = [...(native != null ? [native] : []), ...(wasm != null ? [wasm] : []), blake3js]
if (!impls.some(i => i.name === blake3.name)) impls.unshift(blake3)

/**
 * Chunk counts around the SIMD batches (4 chunks in WebAssembly; 4, 8 or 16 natively), the
 * parent batches and odd carries.
 */
const CHUNK_COUNTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 257]

describe('blake3', () => {
  for (const impl of impls) {
    describe(`${impl.name} implementation`, () => {
      describe('subtreeCV as root (hash mode)', () => {
        for (const c of vectors.cases) {
          it(`matches the official vector for ${c.input_len} bytes`, () => {
            const out = impl.subtreeCV(blake3Input(c.input_len), 0, true)
            assert.equal(hex(out), c.hash.slice(0, 64))
          })
        }
      })

      describe('parentCV and non-root subtrees', () => {
        for (const c of vectors.cases.filter(c => c.input_len > CHUNK_LEN)) {
          it(`rebuilds the ${c.input_len}-byte root from subtree chaining values`, () => {
            const out = referenceSubtree(impl, blake3Input(c.input_len), 0, true)
            assert.equal(hex(out), c.hash.slice(0, 64))
          })
        }

        it('gives different chaining values for root and non-root finalisation', () => {
          const data = blake3Input(3000)
          assert.notEqual(hex(impl.subtreeCV(data, 0, true)), hex(impl.subtreeCV(data, 0, false)))
        })

        it('depends on the chunk counter of the subtree', () => {
          const data = blake3Input(2048)
          assert.notEqual(hex(impl.subtreeCV(data, 0, false)), hex(impl.subtreeCV(data, 2, false)))
        })

        it('handles chunk counters above 2^32', () => {
          const data = blake3Input(4096)
          const counter = 2 ** 33 + 4
          const whole = impl.subtreeCV(data, counter, false)
          const left = impl.subtreeCV(data.subarray(0, 2048), counter, false)
          const right = impl.subtreeCV(data.subarray(2048), counter + 2, false)
          assert.equal(hex(impl.parentCV(left, right, false)), hex(whole))
          assert.equal(hex(whole), hex(blake3js.subtreeCV(data, counter, false)))
        })

        it('writes into a caller-supplied buffer at an offset', () => {
          const out = new Uint8Array(96)
          impl.subtreeCV(blake3Input(1023), 0, true, out, 32)
          assert.equal(hex(out.subarray(32, 64)), vectors.cases.find(c => c.input_len === 1023)?.hash.slice(0, 64))
          assert.ok(out.subarray(0, 32).every(b => b === 0))
        })
      })

      describe('groupCVs', () => {
        for (const groupLog of [0, 2, 4]) {
          it(`equals subtreeCV of each group at group size 2^${groupLog} chunks`, () => {
            const groupLen = CHUNK_LEN << groupLog
            const data = pseudoRandom(groupLen * 5, 7)
            const out = new Uint8Array(5 * 32)
            impl.groupCVs(data, 3 << groupLog, groupLog, out)
            for (let g = 0; g < 5; g++) {
              const expected = blake3js.subtreeCV(data.subarray(g * groupLen, (g + 1) * groupLen), (3 + g) << groupLog, false)
              assert.equal(hex(out.subarray(g * 32, (g + 1) * 32)), hex(expected))
            }
          })
        }
      })
    })
  }

  describe('backend selection', () => {
    it('runs WebAssembly SIMD on this machine', () => {
      assert.equal(wasmSupported(), true)
    })

    // This repository's install (npm ci, .ci/run) builds the addon: a build that failed quietly
    // would leave every figure of the benchmarks on the slower backend.
    it('has the native addon that npm install built, and it loads', () => {
      assert.ok(nativeAddonPath() !== undefined, 'build/Release/dstore_native.node is missing: run `npm install` (needs a C compiler)')
      assert.match(native?.name ?? '', /^native-simd(1|2|4|8|16)$/)
    })

    // Native only with a SIMD kernel (its portable C is slower than WebAssembly SIMD).
    const auto = (native?.simdDegree ?? 0) >= 4 ? native?.name : 'wasm-simd'

    it('selects the native backend (with SIMD) unless DSTORE_BLAKE3 forces wasm or the portable one', () => {
      const forced = process.env.DSTORE_BLAKE3
      assert.equal(blake3.name, forced === 'js' ? 'js' : forced === 'wasm' ? 'wasm-simd' : forced === 'native' ? native?.name : auto)
    })

    const indexUrl = new URL('../src/core/blake3/index.js', import.meta.url).href
    const selectedIn = (env: Record<string, string | undefined>): string => execFileSync(process.execPath,
      ['--input-type=module', '-e', `const m = await import(${JSON.stringify(indexUrl)}); process.stdout.write(m.blake3.name)`],
      { env: { ...process.env, ...env }, encoding: 'utf8' })

    it('honours DSTORE_BLAKE3=js, =wasm and =native in a fresh process', () => {
      assert.equal(selectedIn({ DSTORE_BLAKE3: 'js' }), 'js')
      assert.equal(selectedIn({ DSTORE_BLAKE3: 'wasm' }), 'wasm-simd')
      assert.equal(selectedIn({ DSTORE_BLAKE3: 'native' }), native?.name)
    })

    it('picks the native backend (with SIMD) in a fresh process without DSTORE_BLAKE3', () => {
      assert.equal(selectedIn({ DSTORE_BLAKE3: '' }), auto)
    })

    it('is loaded from the compiled module path', () => {
      assert.ok(fileURLToPath(indexUrl).endsWith('index.js'))
    })
  })

  for (const [label, w] of [['wasm-simd', wasm], ['native', native]] as const) describe(`${label} backend against the portable one`, function () {
    if (w === undefined) { it('is available', () => assert.fail(`${label} backend unavailable`)); return }
    const big = pseudoRandom(4 * LAYOUT.inputLen + 5 * CHUNK_LEN + 77, 99)
    const same = (a: Uint8Array, b: Uint8Array, msg: string): void => assert.equal(hex(a), hex(b), msg)

    it('is the backend being compared', () => {
      assert.ok(w !== undefined, `${label} backend unavailable`)
      assert.ok(w.name.startsWith(label), w.name)
    })

    it('agrees at every length around 4-chunk batch boundaries, root and non-root', () => {
      for (const n of CHUNK_COUNTS) {
        for (const delta of [-1023, -65, -64, -1, 0]) {
          const len = n * CHUNK_LEN + delta
          const data = big.subarray(0, len)
          same(w.subtreeCV(data, 0, true), blake3js.subtreeCV(data, 0, true), `root, ${len} bytes`)
          const counter = 2 ** 34 + 128
          same(w.subtreeCV(data, counter, false), blake3js.subtreeCV(data, counter, false), `non-root, ${len} bytes`)
        }
      }
    })

    it('agrees on inputs that straddle its 1 MiB input region', () => {
      const R = LAYOUT.inputLen
      for (const len of [R - 1, R, R + 1, R + CHUNK_LEN, 2 * R, 2 * R + 1, 3 * R + 5 * CHUNK_LEN + 77]) {
        const data = big.subarray(0, len)
        same(w.subtreeCV(data, 0, true), blake3js.subtreeCV(data, 0, true), `root, ${len} bytes`)
      }
      const data = big.subarray(0, 2 * R + 3)
      const counter = 2 ** 32 * 3 + 4 * (R / CHUNK_LEN)
      same(w.subtreeCV(data, counter, false), blake3js.subtreeCV(data, counter, false), 'non-root above 2^32')
    })

    it('hashes unaligned subarray views of a larger buffer', () => {
      for (const start of [1, 3, 5, 7, 1029]) {
        for (const len of [0, 1, 100, 1024, 4097, 70_001]) {
          const data = big.subarray(start, start + len)
          same(w.subtreeCV(data, 0, true), blake3js.subtreeCV(data, 0, true), `start ${start}, ${len} bytes`)
        }
      }
    })

    it('leaves no state behind: a short input after a long one', () => {
      w.subtreeCV(big.subarray(0, 200_000), 0, true)
      for (const len of [0, 1, 63, 65, 1000, 1500, 5000]) {
        const data = pseudoRandom(len, len + 5)
        same(w.subtreeCV(data, 0, true), blake3js.subtreeCV(data, 0, true), `${len} bytes`)
      }
    })

    it('carries the chunk counter into the high word inside a 4-lane batch', () => {
      const data = big.subarray(0, 8 * CHUNK_LEN)
      for (const counter of [2 ** 32 - 1, 2 ** 32 - 2, 2 ** 32 - 3, 2 ** 33 - 2]) {
        const a = new Uint8Array(8 * 32)
        const b = new Uint8Array(8 * 32)
        w.groupCVs(data, counter, 0, a)
        blake3js.groupCVs(data, counter, 0, b)
        same(a, b, `counter ${counter}`)
      }
    })

    it('computes group CVs across several calls and for groups larger than its region', () => {
      for (const [groupLog, count] of [[0, 1500], [1, 3], [3, 300], [10, 3], [11, 2]]) {
        const data = big.subarray(0, count * (CHUNK_LEN << groupLog))
        const a = new Uint8Array(count * 32 + 40)
        const b = new Uint8Array(count * 32 + 40)
        const counter = (2 ** 32 + 6) * 2 ** groupLog
        w.groupCVs(data, counter, groupLog, a, 40)
        blake3js.groupCVs(data, counter, groupLog, b, 40)
        same(a, b, `groupLog ${groupLog}`)
        assert.ok(a.subarray(0, 40).every(x => x === 0))
      }
    })

    it('merges parents like the portable one, into a buffer at an offset', () => {
      for (const isRoot of [false, true]) {
        const left = pseudoRandom(32, 1)
        const right = pseudoRandom(32, 2)
        const a = new Uint8Array(80)
        w.parentCV(left, right, isRoot, a, 48)
        same(a.subarray(48), blake3js.parentCV(left, right, isRoot), `root ${isRoot}`)
        assert.ok(a.subarray(0, 48).every(x => x === 0))
      }
    })

    it('rejects groupCVs input that is not whole groups', () => {
      assert.throws(() => w.groupCVs(big.subarray(0, 3000), 0, 1, new Uint8Array(64)), TypeError)
    })
  })

  describe('native backend argument checks', () => {
    // It reads and writes typed arrays in place: every bad argument must throw before any access.
    const n = native
    it('throws instead of reading or writing out of bounds', () => {
      assert.ok(n !== undefined, 'native backend unavailable')
      const data = pseudoRandom(4 * CHUNK_LEN, 3)
      assert.throws(() => n.subtreeCV(data, 0, false, new Uint8Array(31)), RangeError)
      assert.throws(() => n.subtreeCV(data, 0, false, new Uint8Array(64), 33), RangeError)
      assert.throws(() => n.subtreeCV(data, -1, false), RangeError)
      assert.throws(() => n.subtreeCV(data, 0.5, false), RangeError)
      assert.throws(() => n.subtreeCV(data, Number.NaN, false), RangeError)
      assert.throws(() => n.subtreeCV(data, 4, true), RangeError)
      assert.throws(() => n.subtreeCV(new Uint8Array(0), 0, false), RangeError)
      assert.throws(() => n.subtreeCV('abc' as unknown as Uint8Array, 0, true), TypeError)
      assert.throws(() => n.subtreeCV(new Float32Array(256) as unknown as Uint8Array, 0, true), TypeError)
      assert.throws(() => n.groupCVs(data, 0, 1, new Uint8Array(63)), RangeError)
      assert.throws(() => n.groupCVs(data, 0, 31, new Uint8Array(64)), RangeError)
      assert.throws(() => n.groupCVs(data, 0, 1, new Uint8Array(64), 1), RangeError)
      assert.throws(() => n.parentCV(new Uint8Array(32), new Uint8Array(31), false), TypeError)
      assert.throws(() => n.parentCV(new Uint8Array(32), new Uint8Array(32), false, new Uint8Array(40), 9), RangeError)
      assert.throws(() => n.subtreeCV(data, 0, 1 as unknown as boolean), TypeError)
      assert.throws(() => n.parentCV(new Uint8Array(32), new Uint8Array(32), 'yes' as unknown as boolean), TypeError)
      // And the same calls with room to spare succeed.
      n.groupCVs(data, 0, 1, new Uint8Array(65), 1)
      n.subtreeCV(data, 0, false, new Uint8Array(64), 32)
    })
  })

  describe('hash', () => {
    it('agrees with the portable implementation on random inputs of many sizes', () => {
      for (const size of [0, 1, 63, 64, 65, 1023, 1024, 1025, 16383, 16384, 16385, 100_000, 1 << 20]) {
        const data = pseudoRandom(size, size + 1)
        assert.equal(hex(hash(data)), hex(blake3js.subtreeCV(data, 0, true)), `size ${size}`)
      }
    })
  })
})
