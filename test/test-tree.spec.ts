import { strict as assert } from 'node:assert'
import { blake3, hash } from '../src/core/blake3/index.js'
import { TreeHasher, groupCount, leftGroups, outboardLength, buildOutboard, decodeHeader, HEADER_LEN } from '../src/core/tree.js'
import { blake3Input, fixture, hex, pseudoRandom } from './helpers.js'

interface Blake3Vectors { cases: Array<{ input_len: number, hash: string }> }
const vectors = fixture<Blake3Vectors>('blake3-test-vectors.json')

describe('tree', () => {
  describe('layout', () => {
    it('counts at least one group, even for the empty value', () => {
      assert.equal(groupCount(0, 4), 1)
      assert.equal(groupCount(16384, 4), 1)
      assert.equal(groupCount(16385, 4), 2)
      assert.equal(groupCount(1025, 0), 2)
    })

    it('puts the largest power of two below k groups on the left', () => {
      assert.deepEqual([2, 3, 4, 5, 8, 9].map(leftGroups), [1, 2, 2, 4, 4, 8])
    })

    it('sizes the outboard as a header plus 64 bytes per parent', () => {
      assert.equal(outboardLength(0, 4), 8)
      assert.equal(outboardLength(16385, 4), 8 + 64)
      assert.equal(outboardLength(5 * 1024, 0), 8 + 4 * 64)
    })
  })

  describe('TreeHasher', () => {
    for (const c of vectors.cases) {
      it(`finds the official root for ${c.input_len} bytes whatever the piece sizes`, () => {
        const input = blake3Input(c.input_len)
        for (const groupLog of [0, 1, 4]) {
          for (const step of [1, 13, 1024, 4096, 1 << 20]) {
            if (step === 1 && c.input_len > 20000) continue
            const h = new TreeHasher({ groupLog })
            for (let o = 0; o < input.length; o += step) h.update(input.subarray(o, o + step))
            assert.equal(hex(h.finalize().root), c.hash.slice(0, 64), `groupLog ${groupLog} step ${step}`)
          }
        }
      })
    }

    it('builds an outboard whose root and header agree with the value', () => {
      for (const size of [0, 100, 16384, 16385, 50_000, 1 << 20, (1 << 20) + 1]) {
        const data = pseudoRandom(size, size)
        const h = new TreeHasher({ outboard: true })
        h.update(data)
        const r = h.finalize()
        assert.equal(hex(r.root), hex(hash(data)))
        assert.ok(r.outboard != null)
        assert.equal(r.outboard.length, outboardLength(size, 4))
        assert.equal(decodeHeader(r.outboard), BigInt(size))
      }
    })

    it('lays out parents in pre-order: the first parent is the root node', () => {
      const data = pseudoRandom(5 * 16384 + 7, 3)
      const h = new TreeHasher({ outboard: true })
      const r = h.update(data).finalize()
      assert.ok(r.outboard != null)
      // The root node's children: 4 groups on the left (64 KiB), the rest on the right.
      const left = new TreeHasher({ groupLog: 4 })
      left.update(data.subarray(0, 4 * 16384))
      const leftRoot = left.finalize().root
      assert.notEqual(hex(r.outboard.subarray(HEADER_LEN, HEADER_LEN + 32)), hex(leftRoot), 'a child CV is never a root hash')
      const rebuilt = buildOutboard(leavesOf(data), data.length, 4)
      assert.equal(hex(rebuilt.outboard), hex(r.outboard))
      assert.equal(hex(rebuilt.root ?? new Uint8Array()), hex(r.root))
    })

    it('refuses to be used after finalize', () => {
      const h = new TreeHasher()
      h.finalize()
      assert.throws(() => h.update(new Uint8Array(1)))
      assert.throws(() => h.finalize())
    })

    it('merges past 2^32 groups (a 4 TiB value at groupLog 0): the merge count is not 32-bit arithmetic', () => {
      // Put the hasher in the state it has after 2^32 - 1 groups (32 complete subtrees on the
      // stack, one per set bit), then add one group: all 32 must merge into one.
      const h = new TreeHasher({ groupLog: 0 }) as any
      h.groups = 2 ** 32 - 1
      h.depth = 32
      for (let i = 0; i < 32; i++) h.stack.set(hash(new Uint8Array([i])), i * 32)
      let expected: Uint8Array = h.stack.slice(31 * 32, 32 * 32)
      h.update(new Uint8Array(2048)) // one group added, the next held back
      expected = blake3.parentCV(expected, blake3.subtreeCV(new Uint8Array(1024), 2 ** 32 - 1, false), false)
      for (let i = 30; i >= 0; i--) expected = blake3.parentCV(hash(new Uint8Array([i])), expected, false)
      assert.equal(h.groups, 2 ** 32)
      assert.equal(h.depth, 1)
      assert.equal(hex(h.stack.subarray(0, 32)), hex(expected))
    })
  })
})

function leavesOf (data: Uint8Array): Uint8Array {
  const n = groupCount(data.length, 4)
  const out = new Uint8Array(n * 32)
  for (let g = 0; g < n; g++) {
    const part = data.subarray(g * 16384, (g + 1) * 16384)
    blake3.subtreeCV(part, g * 16, false, out, g * 32)
  }
  return out
}

