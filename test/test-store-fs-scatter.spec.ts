/**
 * The encoder's scatter path (src/core/bao/scatter.ts): with the fs store's reader, the value's
 * data is read by `readv` straight into the output pieces. Every piece must be byte-identical
 * to the in-memory encoding, for any range and piece size, and a short file must fail the
 * stream, never yield a piece with bytes it did not read.
 */
import { strict as assert } from 'node:assert'
import { truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { cidOfBytes } from '../src/core/cid.js'
import { encodeRange, encodeRangeSync } from '../src/core/bao/index.js'
import { createFsStore } from '../src/core/store/fs.js'
import { DEFAULT_GROUP_LOG } from '../src/core/tree.js'
import { collect, hex, pseudoRandom, tempDir } from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB

describe('fs store reader: scatter-read encoding', () => {
  it('gives the same bytes as the in-memory encoder, for ranges, piece sizes and more targets than IOV_MAX', async () => {
    const dir = await tempDir('dstore-scatter-')
    const store = await createFsStore({ path: dir.path, inlineThreshold: 0 })
    try {
      const value = pseudoRandom(9 * MiB + 12_345, 3)
      const cid = await store.put(value)
      const outboard = await store.outboard(cid)
      const reader = await store.open(cid)
      assert.equal(typeof reader.readv, 'function', 'the file reader scatter-reads')
      try {
        const ranges = [
          { offset: 0, length: Infinity },
          { offset: 1, length: 1 },
          { offset: 16 * KiB - 1, length: 2 },
          { offset: 3 * MiB + 7, length: 4 * MiB + 100 },
          { offset: value.length - 1, length: 10 },
          { offset: value.length, length: 0 }
        ]
        // 65 bytes: parents (64 bytes) straddle pieces; 1 MiB + 3: groups straddle pieces.
        for (const batchBytes of [65, 100_000, MiB + 3, 4 * MiB]) {
          for (const range of ranges) {
            if (batchBytes === 65 && range.length === Infinity) continue // slow, covered by the others
            const label = `batchBytes ${batchBytes}, range ${range.offset}+${range.length}`
            const want = encodeRangeSync(value, outboard, range, DEFAULT_GROUP_LOG)
            for (const readAhead of [true, false]) {
              const pieces: Uint8Array[] = []
              for await (const p of encodeRange(reader, outboard, range, DEFAULT_GROUP_LOG, { batchBytes, readAhead })) pieces.push(p)
              assert.ok(pieces.every((p, i) => i === pieces.length - 1 || p.length === batchBytes), `${label}: whole pieces`)
              assert.equal(new Set(pieces.map(p => p.buffer)).size, pieces.length, `${label}: every piece is its own buffer`)
              assert.equal(hex(await collect(pieces)), hex(want), `${label}, readAhead ${String(readAhead)}`)
            }
          }
        }
      } finally {
        await reader.close()
      }
      // One piece of 40 MiB has about 1,300 targets (parents split the data), more than IOV_MAX
      // (1,024): the readv comes back short and must go on where it stopped.
      const big = pseudoRandom(40 * MiB, 4)
      const bigCid = await store.put(big)
      const bigOutboard = await store.outboard(bigCid)
      const br = await store.open(bigCid)
      try {
        const whole = { offset: 0, length: Infinity }
        const got = await collect(encodeRange(br, bigOutboard, whole, DEFAULT_GROUP_LOG, { batchBytes: 48 * MiB }))
        assert.equal(hex(got), hex(encodeRangeSync(big, bigOutboard, whole, DEFAULT_GROUP_LOG)))
      } finally {
        await br.close()
      }
    } finally {
      await store.close()
      await dir.cleanup()
    }
  })

  it('fails with StorageError on a data file shorter than its index entry, after only whole, correct pieces', async () => {
    const dir = await tempDir('dstore-scatter-')
    const store = await createFsStore({ path: dir.path, inlineThreshold: 0 })
    try {
      const value = pseudoRandom(6 * MiB, 5)
      const cid = await store.put(value)
      const outboard = await store.outboard(cid)
      const reader = await store.open(cid)
      try {
        const h = hex(cidOfBytes(value).multihash.digest)
        await truncate(join(dir.path, 'blobs', h.slice(0, 2), h), 3 * MiB + 5)
        const want = encodeRangeSync(value, outboard, { offset: 0, length: Infinity }, DEFAULT_GROUP_LOG)
        const got: Uint8Array[] = []
        await assert.rejects(async () => {
          for await (const p of encodeRange(reader, outboard, { offset: 0, length: Infinity }, DEFAULT_GROUP_LOG)) got.push(p)
        }, { name: 'StorageError' })
        const bytes = await collect(got)
        assert.ok(bytes.length > 0 && bytes.length < 3 * MiB + 5, `${bytes.length} bytes yielded`)
        assert.equal(hex(bytes), hex(want.subarray(0, bytes.length)), 'every byte yielded was read from the file')
      } finally {
        await reader.close()
      }
    } finally {
      await store.close()
      await dir.cleanup()
    }
  })
})
