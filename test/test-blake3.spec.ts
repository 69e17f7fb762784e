import { strict as assert } from 'node:assert'
import { blake3, hash, CHUNK_LEN } from '../src/core/blake3/index.js'
import { blake3js } from '../src/core/blake3/js.js'
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

const impls: Blake3[] = blake3.name === blake3js.name ? [blake3js] : [blake3, blake3js]

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

  describe('hash', () => {
    it('agrees with the portable implementation on random inputs of many sizes', () => {
      for (const size of [0, 1, 63, 64, 65, 1023, 1024, 1025, 16383, 16384, 16385, 100_000, 1 << 20]) {
        const data = pseudoRandom(size, size + 1)
        assert.equal(hex(hash(data)), hex(blake3js.subtreeCV(data, 0, true)), `size ${size}`)
      }
    })
  })
})
