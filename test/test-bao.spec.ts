import { strict as assert } from 'node:assert'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { hash } from '../src/core/blake3/index.js'
import { HEADER_LEN, PARENT_LEN, TreeHasher, groupLength } from '../src/core/tree.js'
import type { BlobReader } from '../src/core/store/interface.js'
import {
  decodeRange, decodeWhole, encode, encodeRange, encodeRangeSync, encodedRangeLength, outboard as makeOutboard,
  planRange, streamItems, parentCount, StreamVerificationError, type ByteRange, type DecodeOptions
} from '../src/core/bao/index.js'
import { baoInput, collect, fixture, hex, pseudoRandom } from './helpers.js'

interface Corruptible { corruptions: number[] }
interface BaoVectors {
  hash: Array<{ input_len: number, bao_hash: string }>
  encode: Array<{ input_len: number, output_len: number, bao_hash: string, encoded_blake3: string } & Corruptible>
  outboard: Array<{ input_len: number, output_len: number, bao_hash: string, encoded_blake3: string, outboard_corruptions: number[], input_corruptions: number[] }>
  slice: Array<{ input_len: number, bao_hash: string, slices: Array<{ start: number, len: number, output_len: number, output_blake3: string } & Corruptible> }>
}
const vectors = fixture<BaoVectors>('bao-test-vectors.json')

/** A full garbage collection, without needing node's --expose-gc on the command line. */
const gc: () => void = (() => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

const KiB = 1024
const MiB = 1024 * KiB
const G4 = groupLength(4)

/** Feeds `bytes` in pieces whose sizes cycle through `sizes` (or are random when given a seed). */
function * pieces (bytes: Uint8Array, sizes: number[] | { seed: number, max: number }): Generator<Uint8Array> {
  let off = 0
  let i = 0
  let x = Array.isArray(sizes) ? 1 : sizes.seed
  while (off < bytes.length) {
    let n: number
    if (Array.isArray(sizes)) {
      n = sizes[i++ % sizes.length]
    } else {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5
      n = 1 + ((x >>> 0) % sizes.max)
    }
    yield bytes.subarray(off, off + n)
    off += n
  }
}

async function * asAsync (it: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const p of it) yield p
}

/** What a decode produced: the bytes yielded before it ended, and the error if it failed. */
interface Outcome { bytes: Uint8Array, pieces: number, error?: any, size?: number }

async function decodeAll (stream: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, root: Uint8Array, range: ByteRange,
  groupLog: number, options?: DecodeOptions): Promise<Outcome> {
  const parts: Uint8Array[] = []
  const decoded = decodeRange(stream, root, range, groupLog, options)
  let error: any
  try {
    for await (const p of decoded) parts.push(p)
  } catch (err) {
    error = err
  }
  return { bytes: await collect(parts), pieces: parts.length, error, size: decoded.size }
}

/** The bytes a range selects, as bao clips it. */
function expectedBytes (data: Uint8Array, range: ByteRange): Uint8Array {
  if (range.offset >= data.length) return new Uint8Array(0)
  return data.subarray(range.offset, Math.min(data.length, range.offset + range.length))
}

function setHeader (bytes: Uint8Array, size: number): void {
  new DataView(bytes.buffer, bytes.byteOffset, HEADER_LEN).setBigUint64(0, BigInt(size), true)
}

function flip (bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice()
  copy[at] ^= 1
  return copy
}

/**
 * Decodes a corrupted stream, asserts that it fails with a verification error (or, for a
 * corrupted header, TooLargeError), and that every byte yielded before was a true one.
 */
async function assertRejected (stream: Uint8Array, root: Uint8Array, range: ByteRange, groupLog: number,
  truth: Uint8Array, label: string, headerCorrupt = false): Promise<Outcome> {
  const r = await decodeAll([stream], root, range, groupLog)
  assert.ok(r.error != null, `${label}: decoding succeeded`)
  const allowed = headerCorrupt ? ['VerificationError', 'TooLargeError'] : ['VerificationError']
  assert.ok(allowed.includes(r.error.name), `${label}: threw ${String(r.error.name)}: ${String(r.error.message)}`)
  const want = expectedBytes(truth, range)
  assert.ok(r.bytes.length <= want.length, `${label}: yielded more than requested`)
  assert.equal(hex(r.bytes), hex(want.subarray(0, r.bytes.length)), `${label}: yielded a corrupt byte`)
  return r
}

/** Offset in the combined encoding of each outboard byte and each data byte (for outboard corruptions). */
function combinedOffsets (size: number, groupLog: number): { parent: (outboardOffset: number) => number, data: (dataOffset: number) => number } {
  const plan = planRange(size, { offset: 0, length: Infinity }, groupLog)
  const parentAt = new Map<number, number>()
  const groupAt = new Map<number, number>()
  let pos = HEADER_LEN
  for (const item of streamItems(plan)) {
    if (item.kind === 'parent') { parentAt.set(item.index, pos); pos += PARENT_LEN } else { groupAt.set(item.index, pos); pos += item.length }
  }
  const gl = groupLength(groupLog)
  return {
    parent: (o) => o < HEADER_LEN ? o : (parentAt.get(Math.floor((o - HEADER_LEN) / PARENT_LEN)) as number) + ((o - HEADER_LEN) % PARENT_LEN),
    data: (d) => (groupAt.get(Math.floor(d / gl)) as number) + (d % gl)
  }
}

describe('bao', () => {
  describe('bao test vectors (groupLog 0)', () => {
    describe('hash', () => {
      for (const c of vectors.hash) {
        it(`finds bao's hash, which is the BLAKE3 root, for ${c.input_len} bytes`, () => {
          const input = baoInput(c.input_len)
          assert.equal(hex(hash(input)), c.bao_hash)
          assert.equal(hex(encode(input, 0).root), c.bao_hash)
          assert.equal(hex(encode(input, 4).root), c.bao_hash)
        })
      }
    })

    describe('encode', () => {
      for (const c of vectors.encode) {
        it(`produces bao's combined encoding of ${c.input_len} bytes, decodes it, and rejects every listed corruption`, async () => {
          const input = baoInput(c.input_len)
          const { encoded, root, outboard } = encode(input, 0)
          assert.equal(encoded.length, c.output_len)
          assert.equal(hex(hash(encoded)), c.encoded_blake3)
          const whole = { offset: 0, length: Infinity }
          assert.equal(hex(await collect(encodeRange(input, outboard, whole, 0, { batchBytes: 1000 }))), hex(encoded))
          const ok = await decodeAll(pieces(encoded, [7, 64, 1]), root, whole, 0)
          assert.equal(ok.error, undefined)
          assert.equal(hex(ok.bytes), hex(input))
          assert.equal(ok.size, c.input_len)
          for (const at of c.corruptions) {
            await assertRejected(flip(encoded, at), root, whole, 0, input, `corruption at ${at}`, at < HEADER_LEN)
          }
        })
      }
    })

    describe('outboard', () => {
      for (const c of vectors.outboard) {
        it(`produces bao's outboard of ${c.input_len} bytes, and rejects every listed outboard and input corruption`, async () => {
          const input = baoInput(c.input_len)
          const { outboard, root } = makeOutboard(input, 0)
          assert.equal(outboard.length, c.output_len)
          assert.equal(hex(hash(outboard)), c.encoded_blake3)
          const whole = { offset: 0, length: Infinity }
          const encoded = encodeRangeSync(input, outboard, whole, 0)
          const map = combinedOffsets(c.input_len, 0)
          for (const at of c.outboard_corruptions) {
            await assertRejected(flip(encoded, map.parent(at)), root, whole, 0, input, `outboard corruption at ${at}`, at < HEADER_LEN)
          }
          for (const at of c.input_corruptions) {
            await assertRejected(flip(encoded, map.data(at)), root, whole, 0, input, `input corruption at ${at}`)
          }
        })
      }
    })

    describe('slice', () => {
      for (const c of vectors.slice) {
        it(`produces bao's slices of ${c.input_len} bytes, decodes them, and rejects every listed corruption`, async () => {
          const input = baoInput(c.input_len)
          const { outboard, root } = makeOutboard(input, 0)
          for (const s of c.slices) {
            const range = { offset: s.start, length: s.len }
            const label = `slice ${s.start}+${s.len}`
            const slice = encodeRangeSync(input, outboard, range, 0)
            assert.equal(slice.length, s.output_len, label)
            assert.equal(encodedRangeLength(c.input_len, range, 0), s.output_len, label)
            assert.equal(hex(hash(slice)), s.output_blake3, label)
            assert.equal(hex(await collect(encodeRange(input, outboard, range, 0, { batchBytes: 100 }))), hex(slice), label)
            const ok = await decodeAll(pieces(slice, [3, 1000]), root, range, 0)
            assert.equal(ok.error, undefined, label)
            assert.equal(hex(ok.bytes), hex(expectedBytes(input, range)), label)
            for (const at of s.corruptions) {
              await assertRejected(flip(slice, at), root, range, 0, input, `${label} corruption at ${at}`, at < HEADER_LEN)
            }
          }
        })
      }
    })
  })

  describe('range mapping (groupLog 4)', () => {
    describe('planRange', () => {
      it('selects the groups overlapping the range, and the final group for a start past the end', () => {
        const size = 5 * G4 - 100 // 5 groups, the last one partial
        const p = (offset: number, length: number): number[] => { const r = planRange(size, { offset, length }, 4); return [r.firstGroup, r.lastGroup, r.emitStart, r.emitEnd] }
        assert.deepEqual(p(0, 1), [0, 0, 0, 1])
        assert.deepEqual(p(G4 - 1, 2), [0, 1, G4 - 1, G4 + 1])
        assert.deepEqual(p(G4, 0), [1, 1, G4, G4])
        assert.deepEqual(p(size, 10), [4, 4, size, size])
        assert.deepEqual(p(size + 5 * G4, 0), [4, 4, size, size])
        assert.deepEqual(p(3 * G4, Infinity), [3, 4, 3 * G4, size])
        assert.deepEqual(planRange(0, { offset: 7, length: 7 }, 4).lastGroup, 0)
      })

      it('rejects negative, fractional and unsafe offsets and lengths with OutOfRangeError', () => {
        for (const range of [{ offset: -1, length: 1 }, { offset: 0.5, length: 1 }, { offset: 0, length: -1 }, { offset: 2 ** 60, length: 1 }, { offset: 0, length: NaN }]) {
          assert.throws(() => planRange(10, range, 4), { name: 'OutOfRangeError' })
        }
      })
    })

    describe('streamItems', () => {
      it('lists the path to each selected group in pre-order with outboard indices (5-group example)', () => {
        const plan = planRange(5 * G4, { offset: 2 * G4 + 5, length: 10 }, 4)
        const items = [...streamItems(plan)].map(i => i.kind === 'parent' ? `P${i.index}[${i.lo},${i.hi})` : `G${i.index}`)
        // Root [0,5) splits 4|1; [0,4) splits 2|2; [2,4) splits 1|1. Pre-order indices: [0,5)=0, [0,4)=1, [0,2)=2, [2,4)=3.
        assert.deepEqual(items, ['P0[0,5)', 'P1[0,4)', 'P3[2,4)', 'G2'])
        assert.equal(parentCount(plan), 3)
        const whole = [...streamItems(planRange(5 * G4, { offset: 0, length: Infinity }, 4))].map(i => i.kind === 'parent' ? `P${i.index}` : `G${i.index}`)
        assert.deepEqual(whole, ['P0', 'P1', 'P2', 'G0', 'G1', 'P3', 'G2', 'G3', 'G4'])
      })
    })
  })

  describe('encodeRange / decodeRange (groupLog 4)', () => {
    const sizes = [0, 1, 16383, 16384, 16385, 100_000, MiB + 1, 5 * MiB + 7]
    const cache = new Map<number, { data: Uint8Array, root: Uint8Array, outboard: Uint8Array }>()
    const value = (size: number): { data: Uint8Array, root: Uint8Array, outboard: Uint8Array } => {
      let v = cache.get(size)
      if (v == null) {
        const data = pseudoRandom(size, size + 1)
        const r = makeOutboard(data, 4)
        v = { data, root: r.root, outboard: r.outboard }
        cache.set(size, v)
      }
      return v
    }
    const rangesFor = (size: number): ByteRange[] => {
      const list: ByteRange[] = [
        { offset: 0, length: Infinity }, { offset: 0, length: size }, { offset: 0, length: 0 }, { offset: 0, length: 1 },
        { offset: size, length: 0 }, { offset: size, length: 10 }, { offset: size + 3 * G4, length: 1 },
        { offset: Math.max(0, size - 1), length: 1 }, { offset: Math.floor(size / 2), length: Math.floor(size / 5) }
      ]
      for (const b of [G4, 2 * G4, 4 * G4, 5 * G4, 64 * G4]) {
        if (b < size) list.push({ offset: b - 1, length: 2 }, { offset: b, length: G4 }, { offset: b - 10, length: 3 * G4 + 20 }, { offset: b + 1, length: Infinity })
      }
      return list
    }

    describe('round trip', () => {
      for (const size of sizes) {
        it(`returns exactly the requested bytes of a ${size}-byte value for many ranges, whatever the piece sizes`, async () => {
          const { data, root, outboard } = value(size)
          let n = 0
          for (const range of rangesFor(size)) {
            const label = `${size} bytes, range ${range.offset}+${range.length}`
            const encoded = await collect(encodeRange(data, outboard, range, 4, { batchBytes: 64 * KiB }))
            assert.equal(encoded.length, encodedRangeLength(size, range, 4), label)
            assert.equal(hex(hash(encoded)), hex(hash(encodeRangeSync(data, outboard, range, 4))), label)
            const split = n++ % 3 === 0 ? [encoded] : pieces(encoded, { seed: n, max: n % 3 === 1 ? 200 : 70_000 })
            const r = await decodeAll(asAsync(split), root, range, 4, { batchBytes: (n % 4 + 1) * 40 * KiB })
            assert.equal(r.error, undefined, `${label}: ${String(r.error?.message)}`)
            assert.ok(hex(r.bytes) === hex(expectedBytes(data, range)), `${label}: wrong bytes`)
            const reachesEnd = range.offset + Math.max(range.length, 1) >= Math.floor((size - 1) / G4) * G4 + 1 || size === 0
            assert.equal(r.size, reachesEnd ? size : undefined, `${label}: size`)
          }
        })
      }

      it('accepts a stream delivered one byte at a time', async () => {
        const { data, root, outboard } = value(16385)
        for (const range of [{ offset: 0, length: Infinity }, { offset: 16000, length: 1000 }]) {
          const encoded = encodeRangeSync(data, outboard, range, 4)
          const r = await decodeAll(pieces(encoded, [1]), root, range, 4)
          assert.equal(r.error, undefined)
          assert.equal(hex(r.bytes), hex(expectedBytes(data, range)))
        }
      })

      it('yields large pieces: whole batches, not one piece per group', async () => {
        const { data, root, outboard } = value(5 * MiB + 7)
        const whole = { offset: 0, length: Infinity }
        let count = 0
        for await (const p of encodeRange(data, outboard, whole, 4)) { count++; assert.ok(p.length <= MiB) }
        assert.ok(count <= 7, `encoder yielded ${count} pieces`)
        const r = await decodeAll([encodeRangeSync(data, outboard, whole, 4)], root, whole, 4)
        assert.ok(r.pieces <= 7, `decoder yielded ${r.pieces} pieces`)
      })

      it('decodes into a target of the value\'s size: the verified pieces tile it; a target of another size is ignored', async () => {
        const { data, root, outboard } = value(3 * MiB + 5)
        const whole = { offset: 0, length: Infinity }
        const encoded = encodeRangeSync(data, outboard, whole, 4)
        const target = new Uint8Array(data.length)
        let at = 0
        for await (const p of decodeRange(pieces(encoded, [70_000]), root, whole, 4, { target })) {
          assert.equal(p.buffer, target.buffer)
          assert.equal(p.byteOffset, at)
          at += p.length
        }
        assert.equal(at, data.length)
        assert.equal(hex(target), hex(data))
        // A range: pieces are views of the target at their offsets in the value.
        const range = { offset: 100_000, length: 1_000_000 }
        const t2 = new Uint8Array(data.length)
        const got: Uint8Array[] = []
        for await (const p of decodeRange([encodeRangeSync(data, outboard, range, 4)], root, range, 4, { target: t2 })) {
          assert.equal(p.buffer, t2.buffer)
          got.push(p)
        }
        assert.equal(got[0].byteOffset, range.offset)
        assert.equal(hex(await collect(got)), hex(data.subarray(range.offset, range.offset + range.length)))
        // Wrong size: decoded as usual, into buffers of its own.
        const wrong = new Uint8Array(data.length + 1)
        for await (const p of decodeRange([encoded], root, whole, 4, { target: wrong })) assert.notEqual(p.buffer, wrong.buffer)
        // A corrupt group: nothing past the last good group is yielded, as without a target.
        const bad = encoded.slice()
        bad[bad.length - 100] ^= 1
        const r = await decodeAll([bad], root, whole, 4, { target: new Uint8Array(data.length) })
        assert.ok(r.error != null)
        assert.ok(r.bytes.length < data.length)
        assert.equal(hex(r.bytes), hex(data.subarray(0, r.bytes.length)))
      })

      it('reads the value through a BlobReader in bounded pieces', async () => {
        const { data, outboard } = value(5 * MiB + 7)
        const reads: number[] = []
        const reader: BlobReader = { size: data.length, read: async (o, l) => { reads.push(l); return data.slice(o, o + l) }, close: async () => {} }
        const range = { offset: 100, length: 3 * MiB }
        const got = await collect(encodeRange(reader, outboard, range, 4, { batchBytes: 256 * KiB }))
        assert.equal(hex(got), hex(encodeRangeSync(data, outboard, range, 4)))
        assert.ok(Math.max(...reads) <= 256 * KiB)
        // A reader that reuses one buffer works without read-ahead.
        const shared = new Uint8Array(256 * KiB)
        const reusing: BlobReader = { size: data.length, read: async (o, l) => { shared.set(data.subarray(o, o + l)); return shared.subarray(0, l) }, close: async () => {} }
        const got2 = await collect(encodeRange(reusing, outboard, range, 4, { batchBytes: 256 * KiB, readAhead: false }))
        assert.equal(hex(got2), hex(got))
        // A reader that fills the buffer it is given, as the filesystem store's does, slowly (so
        // the read ahead is in flight while a piece is copied): two buffers, used in turn.
        for (const readAhead of [true, false]) {
          const given = new Set<Uint8Array>()
          const filling: BlobReader = {
            size: data.length,
            read: async (o, l, into) => {
              assert.ok(into != null && into.length >= l)
              given.add(into)
              await new Promise(resolve => setTimeout(resolve, 1))
              into.set(data.subarray(o, o + l))
              return into.subarray(0, l)
            },
            close: async () => {}
          }
          const got3 = await collect(encodeRange(filling, outboard, range, 4, { batchBytes: 256 * KiB, readAhead }))
          assert.equal(hex(got3), hex(got), `readAhead ${String(readAhead)}`)
          assert.equal(given.size, 2, 'two buffers, reused')
        }
      })

      it('reports the size through onSize once the final group is verified', async () => {
        const { data, root, outboard } = value(100_000)
        const seen: number[] = []
        const range = { offset: 99_000, length: 5000 }
        const r = await decodeAll([encodeRangeSync(data, outboard, range, 4)], root, range, 4, { onSize: s => seen.push(s) })
        assert.deepEqual(seen, [100_000])
        assert.equal(r.size, 100_000)
      })
    })

    describe('corruption', () => {
      it('catches a corrupted data byte within its group, yielding nothing past the last good group', async () => {
        const size = MiB + 1
        const { data, root, outboard } = value(size)
        const whole = { offset: 0, length: Infinity }
        const encoded = encodeRangeSync(data, outboard, whole, 4)
        const map = combinedOffsets(size, 4)
        for (const dataAt of [0, 5, G4 - 1, G4, 3 * G4 + 77, 40 * G4 + 1, size - 1]) {
          for (const batchBytes of [G4, MiB]) {
            const r = await assertRejected(flip(encoded, map.data(dataAt)), root, whole, 4, data, `data byte ${dataAt}`)
            assert.equal(r.bytes.length, Math.floor(dataAt / G4) * G4, `data byte ${dataAt}: yielded ${r.bytes.length} bytes`)
            assert.ok(r.error instanceof StreamVerificationError && r.error.reason === 'mismatch')
            // Delivered in small pieces too, the decoder yields every good group before the bad one.
            const small = await decodeAll(pieces(flip(encoded, map.data(dataAt)), [4096]), root, whole, 4, { batchBytes })
            assert.equal(small.error?.name, 'VerificationError')
            assert.equal(small.bytes.length, Math.floor(dataAt / G4) * G4)
          }
        }
      })

      it('delivers every verified group before a bad one, even when they arrived in the same batch', async () => {
        const size = MiB + 1
        const { data, root, outboard } = value(size)
        const whole = { offset: 0, length: Infinity }
        const encoded = encodeRangeSync(data, outboard, whole, 4)
        const map = combinedOffsets(size, 4)
        // The whole stream in one piece, so the bad group shares a batch with good ones.
        for (const dataAt of [5 * G4 + 3, 40 * G4, size - 1]) {
          const r = await decodeAll([flip(encoded, map.data(dataAt))], root, whole, 4, { batchBytes: MiB })
          assert.equal(r.error?.name, 'VerificationError', `data byte ${dataAt}`)
          assert.equal(r.bytes.length, Math.floor(dataAt / G4) * G4, `data byte ${dataAt}: good groups withheld`)
          assert.equal(hex(r.bytes), hex(data.subarray(0, r.bytes.length)))
        }
        // A bad parent node after good groups: those groups are delivered first.
        // In a 65-group value, parent 33 (pre-order) covers groups 32..63 and follows groups 0..31.
        const r = await decodeAll([flip(encoded, map.parent(HEADER_LEN + 33 * PARENT_LEN + 5))], root, whole, 4, { batchBytes: MiB })
        assert.equal(r.error?.name, 'VerificationError')
        const parentPos = map.parent(HEADER_LEN + 33 * PARENT_LEN)
        const groupsBefore = [...Array(65).keys()].filter(g => map.data(g * G4) < parentPos).length
        assert.equal(groupsBefore, 32)
        assert.equal(r.bytes.length, groupsBefore * G4, 'groups before the bad parent withheld')
        assert.equal(hex(r.bytes), hex(data.subarray(0, r.bytes.length)))
      })

      it('catches a corrupted parent node before yielding the groups below it', async () => {
        const size = 100_000
        const { data, root, outboard } = value(size)
        const whole = { offset: 0, length: Infinity }
        const encoded = encodeRangeSync(data, outboard, whole, 4)
        const map = combinedOffsets(size, 4)
        for (let p = 0; p < parentCount(planRange(size, whole, 4)); p++) {
          for (const k of [0, 31, 32, 63]) {
            await assertRejected(flip(encoded, map.parent(HEADER_LEN + p * PARENT_LEN + k)), root, whole, 4, data, `parent ${p} byte ${k}`)
          }
        }
        // A range's stream, too: flip each of its parent nodes.
        const range = { offset: 50_000, length: 20_000 }
        const slice = encodeRangeSync(data, outboard, range, 4)
        for (let at = HEADER_LEN; at < HEADER_LEN + PARENT_LEN * parentCount(planRange(size, range, 4)); at += 16) {
          await assertRejected(flip(slice, at), root, range, 4, data, `range parent byte ${at}`)
        }
      })

      it('rejects a lying length header', async () => {
        for (const size of [0, 1, 16384, 16385, 100_000]) {
          const { data, root, outboard } = value(size)
          for (const range of [{ offset: 0, length: Infinity }, { offset: size, length: 0 }, { offset: Math.max(0, size - 10), length: 10 }]) {
            const encoded = encodeRangeSync(data, outboard, range, 4)
            for (const lie of [size + 1, size - 1, size + G4, size * 2 + 1, Math.floor(size / 2), 2 ** 40]) {
              if (lie < 0 || lie === size) continue
              const bad = encoded.slice()
              setHeader(bad, lie)
              await assertRejected(bad, root, range, 4, data, `${size} bytes claimed as ${lie}`)
            }
          }
        }
      })

      it('never exposes a lying size, even for ranges that do not reach the end', async () => {
        const size = 10 * G4
        const { data, root, outboard } = value(size)
        const range = { offset: G4, length: 100 }
        const bad = encodeRangeSync(data, outboard, range, 4)
        setHeader(bad, 11 * G4) // same path to group 1: the data still verifies
        const r = await decodeAll([bad], root, range, 4)
        assert.equal(r.error, undefined)
        assert.equal(hex(r.bytes), hex(expectedBytes(data, range)))
        assert.equal(r.size, undefined)
      })

      it('rejects an absurd or over-limit length with TooLargeError', async () => {
        const { data, root, outboard } = value(100_000)
        const encoded = encodeRangeSync(data, outboard, { offset: 0, length: Infinity }, 4)
        const huge = encoded.slice()
        new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true)
        const r1 = await decodeAll([huge], root, { offset: 0, length: 10 }, 4)
        assert.equal(r1.error?.name, 'TooLargeError')
        const r2 = await decodeAll([encoded], root, { offset: 0, length: Infinity }, 4, { maxSize: 99_999 })
        assert.equal(r2.error?.name, 'TooLargeError')
        assert.equal(r2.bytes.length, 0)
      })

      it('rejects a truncated stream at every cut point, having yielded only true bytes', async () => {
        const size = 3 * G4 + 5
        const { data, root, outboard } = value(size)
        const whole = { offset: 0, length: Infinity }
        const encoded = encodeRangeSync(data, outboard, whole, 4)
        const cuts = [0, 1, 7, 8, 9, 71, 72, 100, 1000, 1000 + G4]
        for (let c = 200; c < encoded.length; c += 997) cuts.push(c)
        cuts.push(encoded.length - 1)
        for (const cut of cuts) {
          const r = await assertRejected(encoded.subarray(0, cut), root, whole, 4, data, `cut at ${cut}`)
          assert.equal(r.error.reason, 'truncated', `cut at ${cut}`)
        }
      })

      it('rejects trailing bytes after the end of the stream', async () => {
        const { data, root, outboard } = value(100_000)
        for (const range of [{ offset: 0, length: Infinity }, { offset: 10, length: 10 }]) {
          const encoded = encodeRangeSync(data, outboard, range, 4)
          for (const extra of [[encoded, new Uint8Array(1)], [new Uint8Array([...encoded, 0])], [encoded, new Uint8Array(0), new Uint8Array(3)]]) {
            const r = await decodeAll(extra, root, range, 4)
            assert.equal(r.error?.name, 'VerificationError')
            assert.equal(r.error.reason, 'trailing')
          }
        }
      })

      it('rejects a stream checked against the wrong root before yielding anything', async () => {
        const { data, outboard } = value(100_000)
        const encoded = encodeRangeSync(data, outboard, { offset: 0, length: Infinity }, 4)
        const r = await decodeAll([encoded], hash(new Uint8Array(1)), { offset: 0, length: Infinity }, 4)
        assert.equal(r.error?.name, 'VerificationError')
        assert.equal(r.bytes.length, 0)
      })

      it('refuses an outboard that does not belong to the value with StorageError', async () => {
        const { data, outboard } = value(100_000)
        await assert.rejects(collect(encodeRange(data.subarray(1), outboard, { offset: 0, length: 1 }, 4)), { name: 'StorageError' })
        assert.throws(() => encodeRangeSync(data, outboard, { offset: 0, length: 1 }, 0), { name: 'StorageError' })
      })
    })

    describe('options', () => {
      it('rejects invalid maxSize and batchBytes with OutOfRangeError instead of crashing or hanging', async () => {
        const { data, root, outboard } = value(100_000)
        const encoded = encodeRangeSync(data, outboard, { offset: 0, length: Infinity }, 4)
        const whole = { offset: 0, length: Infinity }
        for (const options of [{ maxSize: NaN }, { maxSize: 1.5 }, { maxSize: -1 }, { batchBytes: NaN }, { batchBytes: Infinity }, { batchBytes: 0 }, { batchBytes: -5 }]) {
          assert.throws(() => decodeRange([encoded], root, whole, 4, options), { name: 'OutOfRangeError' }, JSON.stringify(options))
        }
        for (const batchBytes of [NaN, Infinity, 0, 2.5]) {
          await assert.rejects(collect(encodeRange(data, outboard, whole, 4, { batchBytes })), { name: 'OutOfRangeError' }, String(batchBytes))
        }
      })

      it('accepts a batchBytes far beyond the value, allocating for the selected groups only', async () => {
        const { data, root, outboard } = value(100_000)
        const whole = { offset: 0, length: Infinity }
        const encoded = encodeRangeSync(data, outboard, whole, 4)
        for (const batchBytes of [2 ** 40, Number.MAX_SAFE_INTEGER]) {
          const before = process.memoryUsage().arrayBuffers
          let growth = 0
          const parts: Uint8Array[] = []
          for await (const p of decodeRange([encoded], root, whole, 4, { batchBytes })) {
            growth = Math.max(growth, process.memoryUsage().arrayBuffers - before)
            parts.push(p)
          }
          assert.equal(hex(await collect(parts)), hex(data), String(batchBytes))
          assert.ok(growth < 16 * MiB, `batchBytes ${batchBytes}: arrayBuffers grew by ${(growth / MiB).toFixed(0)} MiB`)
        }
      })
    })

    describe('abort', () => {
      it('stops decoding with AbortError and closes the source', async () => {
        const { data, root, outboard } = value(MiB + 1)
        const encoded = encodeRangeSync(data, outboard, { offset: 0, length: Infinity }, 4)
        const controller = new AbortController()
        let closed = false
        async function * source (): AsyncGenerator<Uint8Array> {
          try { for (const p of pieces(encoded, [64 * KiB])) yield p } finally { closed = true }
        }
        const r = await (async () => {
          let n = 0
          try {
            for await (const p of decodeRange(source(), root, { offset: 0, length: Infinity }, 4, { signal: controller.signal })) {
              n += p.length
              controller.abort()
            }
          } catch (err: any) { return { err, n } }
          return { err: undefined, n }
        })()
        assert.equal(r.err?.name, 'AbortError')
        assert.ok(closed)
      })

      it('stops with AbortError when aborted while the source is stalled, without waiting for it', async () => {
        const { data, root, outboard } = value(MiB + 1)
        const encoded = encodeRangeSync(data, outboard, { offset: 0, length: Infinity }, 4)
        let returned = false
        // A sender that sends a little, then goes silent and never ends the stream.
        const stalled: AsyncIterable<Uint8Array> = {
          [Symbol.asyncIterator]: () => {
            let sent = false
            return {
              next: async () => {
                if (!sent) { sent = true; return { done: false, value: encoded.subarray(0, 100 * KiB) } }
                return await new Promise<IteratorResult<Uint8Array>>(() => {})
              },
              return: async () => { returned = true; return { done: true, value: undefined } }
            }
          }
        }
        const controller = new AbortController()
        setTimeout(() => { controller.abort() }, 50)
        const started = Date.now()
        const r = await decodeAll(stalled, root, { offset: 0, length: Infinity }, 4, { signal: controller.signal })
        assert.equal(r.error?.name, 'AbortError')
        assert.ok(Date.now() - started < 1000)
        assert.equal(hex(r.bytes), hex(data.subarray(0, r.bytes.length)))
        assert.ok(returned, 'the source was not asked to stop')
      })

      it('stops at once when aborted while an async generator source is stalled (whose return() waits for its pending next())', async () => {
        const { data, root, outboard } = value(MiB + 1)
        const encoded = encodeRangeSync(data, outboard, { offset: 0, length: Infinity }, 4)
        async function * stalled (): AsyncGenerator<Uint8Array> {
          yield encoded.subarray(0, 100 * KiB)
          await new Promise(() => {})
        }
        const controller = new AbortController()
        setTimeout(() => { controller.abort() }, 50)
        let timer: NodeJS.Timeout | undefined
        const hung = new Promise<'hung'>(resolve => { timer = setTimeout(() => { resolve('hung') }, 2000) })
        const r = await Promise.race([decodeAll(stalled(), root, { offset: 0, length: Infinity }, 4, { signal: controller.signal }), hung])
        clearTimeout(timer)
        assert.notEqual(r, 'hung', 'the decoder waited for the stalled source')
        if (r === 'hung') return
        assert.equal(r.error?.name, 'AbortError')
        assert.equal(hex(r.bytes), hex(data.subarray(0, r.bytes.length)))
      })
    })
  })

  describe('decodeRange piece boundaries and edges', () => {
    /** Stream offsets where a node starts or ends: 0, after the header, after each parent and group. */
    const boundaries = (size: number, range: ByteRange, groupLog: number): number[] => {
      const out = [0, HEADER_LEN]
      let pos = HEADER_LEN
      for (const item of streamItems(planRange(size, range, groupLog))) {
        pos += item.kind === 'parent' ? PARENT_LEN : item.length
        out.push(pos)
      }
      return out
    }
    const rangesOf = (size: number, groupLen: number): ByteRange[] => [
      { offset: 0, length: Infinity }, // whole
      { offset: 0, length: 1 }, { offset: 0, length: 0 }, // start
      { offset: Math.floor(size / 2), length: 10 }, { offset: groupLen - 1, length: 2 }, // middle, across a group boundary
      { offset: Math.max(0, size - 1), length: 1 }, { offset: Math.max(0, size - 3), length: Infinity }, // end
      { offset: size, length: 0 }, { offset: size + 5000, length: 3 } // past the end
    ]
    interface Case { size: number, groupLog: number, data: Uint8Array, root: Uint8Array, outboard: Uint8Array }
    const cases: Case[] = []
    for (const [size, groupLog] of [[0, 0], [1, 0], [1024, 0], [1025, 0], [3 * 1024 + 5, 0], [8 * 1024, 0], [16385, 4], [3 * G4 + 5, 4]]) {
      const data = pseudoRandom(size, size + 7)
      const { root, outboard } = makeOutboard(data, groupLog)
      cases.push({ size, groupLog, data, root, outboard })
    }

    /** Decodes `split` and checks the bytes, the size, and (with a target) that every piece is a view of it at its offset. */
    async function check (c: Case, range: ByteRange, split: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, label: string, withTarget: boolean): Promise<void> {
      const target = withTarget ? new Uint8Array(c.size) : undefined
      const sizes: number[] = []
      const parts: Uint8Array[] = []
      const decoded = decodeRange(split, c.root, range, c.groupLog, { target, onSize: s => sizes.push(s) })
      let at = Math.min(range.offset, c.size)
      for await (const p of decoded) {
        if (target !== undefined) {
          assert.equal(p.buffer, target.buffer, `${label}: not a view of the target`)
          assert.equal(p.byteOffset, at, `${label}: view at the wrong offset`)
        }
        at += p.length
        parts.push(p)
      }
      assert.equal(hex(await collect(parts)), hex(expectedBytes(c.data, range)), `${label}: wrong bytes`)
      const final = planRange(c.size, range, c.groupLog).includesFinalGroup
      assert.equal(decoded.size, final ? c.size : undefined, `${label}: size`)
      assert.deepEqual(sizes, final ? [c.size] : [], `${label}: onSize`)
    }

    it('decodes a stream cut into two pieces at every offset, for ranges at the start, middle and end', async () => {
      let n = 0
      for (const c of cases.filter(c => c.groupLog === 0)) {
        for (const range of rangesOf(c.size, 1024)) {
          const encoded = encodeRangeSync(c.data, c.outboard, range, c.groupLog)
          for (let cut = 0; cut <= encoded.length; cut++) {
            await check(c, range, [encoded.subarray(0, cut), encoded.subarray(cut)], `${c.size} bytes, range ${range.offset}+${range.length}, cut at ${cut}`, n++ % 2 === 0)
          }
        }
      }
    })

    it('decodes a stream cut at every node boundary and one byte either side, with empty pieces in between', async () => {
      for (const c of cases) {
        for (const range of rangesOf(c.size, groupLength(c.groupLog))) {
          const encoded = encodeRangeSync(c.data, c.outboard, range, c.groupLog)
          const cuts = [...new Set(boundaries(c.size, range, c.groupLog).flatMap(b => [b - 1, b, b + 1]))].filter(b => b >= 0 && b <= encoded.length).sort((a, b) => a - b)
          assert.equal(cuts[cuts.length - 1], encoded.length)
          const label = `${c.size} bytes at groupLog ${c.groupLog}, range ${range.offset}+${range.length}`
          // Every node boundary cut at once, an empty piece between every two pieces.
          const split: Uint8Array[] = [new Uint8Array(0)]
          for (let i = 0; i + 1 < cuts.length; i++) split.push(encoded.subarray(cuts[i], cuts[i + 1]), new Uint8Array(0))
          await check(c, range, split, `${label}: all cuts`, false)
          await check(c, range, asAsync(split), `${label}: all cuts, async, into a target`, true)
          // Pairs of boundary cuts: three pieces, the middle one a node, part of one, or several.
          for (let i = 0; i < cuts.length; i++) {
            for (let j = i; j < cuts.length; j++) {
              await check(c, range, [encoded.subarray(0, cuts[i]), encoded.subarray(cuts[i], cuts[j]), encoded.subarray(cuts[j])], `${label}: cuts ${cuts[i]}, ${cuts[j]}`, (i + j) % 2 === 0)
            }
          }
        }
      }
    })

    it('decodes a stream delivered one byte at a time, with an empty piece after each byte', async () => {
      for (const c of cases.filter(c => c.size <= 3 * 1024 + 5)) {
        for (const range of rangesOf(c.size, groupLength(c.groupLog))) {
          const encoded = encodeRangeSync(c.data, c.outboard, range, c.groupLog)
          const bytes = [...pieces(encoded, [1])]
          const label = `${c.size} bytes at groupLog ${c.groupLog}, range ${range.offset}+${range.length}`
          await check(c, range, asAsync(bytes), `${label}: 1-byte pieces`, true)
          await check(c, range, bytes.flatMap(b => [b, new Uint8Array(0)]), `${label}: 1-byte and empty pieces`, false)
        }
      }
    })

    it('decodes the empty value for any range: nothing yielded, size 0 authenticated, into an empty target too', async () => {
      const c = cases[0]
      assert.equal(c.size, 0)
      for (const groupLog of [0, 4]) {
        const { root, outboard } = makeOutboard(c.data, groupLog)
        const e = { ...c, groupLog, root, outboard }
        for (const range of [...rangesOf(0, 1024), { offset: 7, length: 7 }, { offset: 2 ** 40, length: Infinity }]) {
          const encoded = encodeRangeSync(c.data, outboard, range, groupLog)
          assert.equal(encoded.length, HEADER_LEN, 'the empty value\'s stream is its header')
          const label = `groupLog ${groupLog}, range ${range.offset}+${range.length}`
          await check(e, range, [encoded], label, true)
          await check(e, range, [new Uint8Array(0), ...pieces(encoded, [1]), new Uint8Array(0)], `${label}: 1-byte pieces`, false)
          // The empty group is still verified: a stream for the empty value checked against another root fails.
          const r = await decodeAll([encoded], hash(new Uint8Array(1)), range, groupLog)
          assert.equal(r.error?.reason, 'mismatch', label)
          assert.equal(r.size, undefined)
        }
      }
    })

    it('rejects a stream cut at every offset as truncated, having yielded every group completed before the cut', async () => {
      for (const c of cases.filter(c => c.size > 0 && c.size <= 8 * 1024)) {
        for (const range of [{ offset: 0, length: Infinity }, { offset: 1000, length: 2100 }]) {
          const encoded = encodeRangeSync(c.data, c.outboard, range, c.groupLog)
          const plan = planRange(c.size, range, c.groupLog)
          // Value offset reached by the groups complete at each stream offset.
          const reached = new Array<number>(encoded.length + 1).fill(plan.firstGroup * plan.groupLen)
          let pos = HEADER_LEN
          for (const item of streamItems(plan)) {
            pos += item.kind === 'parent' ? PARENT_LEN : item.length
            if (item.kind === 'group') for (let k = pos; k <= encoded.length; k++) reached[k] = item.start + item.length
          }
          for (let cut = 0; cut < encoded.length; cut++) {
            const label = `${c.size} bytes, range ${range.offset}+${range.length}, cut at ${cut}`
            const want = Math.max(0, Math.min(reached[cut], plan.emitEnd) - plan.emitStart)
            for (const split of [[encoded.subarray(0, cut)], pieces(encoded.subarray(0, cut), [700])]) {
              const r = await decodeAll(split, c.root, range, c.groupLog)
              assert.equal(r.error?.reason, 'truncated', label)
              assert.equal(hex(r.bytes), hex(expectedBytes(c.data, range).subarray(0, want)), `${label}: verified groups withheld or wrong`)
            }
          }
        }
      }
    })

    it('rejects a byte after the end as trailing, in its own piece or after empty pieces, having yielded the whole range', async () => {
      const c = cases[4]
      for (const range of rangesOf(c.size, 1024)) {
        const encoded = encodeRangeSync(c.data, c.outboard, range, c.groupLog)
        for (const split of [[encoded, new Uint8Array(0), new Uint8Array(0), new Uint8Array([0])], [...pieces(encoded, [1]), new Uint8Array([0])]]) {
          const r = await decodeAll(split, c.root, range, c.groupLog)
          assert.equal(r.error?.reason, 'trailing')
          assert.equal(hex(r.bytes), hex(expectedBytes(c.data, range)))
        }
      }
    })

    it('rejects a source piece that is not a Uint8Array with TypeError, and stops the source', async () => {
      const c = cases[4]
      const whole = { offset: 0, length: Infinity }
      const encoded = encodeRangeSync(c.data, c.outboard, whole, c.groupLog)
      let stopped = false
      async function * source (): AsyncGenerator<Uint8Array> {
        try {
          yield encoded.subarray(0, 2000)
          yield 'text' as unknown as Uint8Array
          yield encoded.subarray(2000)
        } finally { stopped = true }
      }
      const r = await decodeAll(source(), c.root, whole, c.groupLog)
      assert.equal(r.error?.name, 'TypeError')
      assert.ok(stopped)
      assert.equal(hex(r.bytes), hex(c.data.subarray(0, r.bytes.length)))
    })

    it('stops the source, and waits for it to stop, when the caller stops early', async () => {
      const c = cases[5]
      const whole = { offset: 0, length: Infinity }
      const encoded = encodeRangeSync(c.data, c.outboard, whole, c.groupLog)
      let stopped = false
      async function * source (): AsyncGenerator<Uint8Array> {
        try {
          for (const p of pieces(encoded, [1500])) yield p
        } finally {
          await new Promise(resolve => setTimeout(resolve, 10))
          stopped = true
        }
      }
      for await (const p of decodeRange(source(), c.root, whole, c.groupLog)) {
        assert.ok(p.length > 0)
        break
      }
      assert.ok(stopped, 'the source had not finished stopping')
    })

    it('can be iterated only once', async () => {
      const c = cases[2]
      const whole = { offset: 0, length: Infinity }
      const decoded = decodeRange([encodeRangeSync(c.data, c.outboard, whole, 0)], c.root, whole, 0)
      assert.equal(hex(await collect(decoded)), hex(c.data))
      assert.throws(() => decoded[Symbol.asyncIterator](), /only once/)
    })
  })

  describe('bounded memory', () => {
    it('decodes a 256 MiB value streamed from a generator with small memory growth', async function () {
      this.timeout(120_000)
      const size = 256 * MiB
      // Deterministic bytes synthesised on demand: word i is a hash of i.
      const fill = (offset: number, length: number): Uint8Array => {
        const first = Math.floor(offset / 4)
        const words = new Uint32Array(Math.ceil((offset + length) / 4) - first)
        for (let i = 0; i < words.length; i++) {
          let x = (first + i + 1) * 0x9e3779b1
          x ^= x >>> 15; x = Math.imul(x, 0x85ebca6b); x ^= x >>> 13
          words[i] = x
        }
        const bytes = new Uint8Array(words.buffer)
        return bytes.subarray(offset - first * 4, offset - first * 4 + length)
      }
      const reader: BlobReader = { size, read: async (o, l) => fill(o, l), close: async () => {} }
      // Hash it once (as a store would on put) to get the root and outboard.
      const hasher = new TreeHasher({ groupLog: 4, outboard: true })
      for (let o = 0; o < size; o += MiB) hasher.update(fill(o, Math.min(MiB, size - o)))
      const { root, outboard } = hasher.finalize()
      assert.ok(outboard != null)
      gc()
      const before = process.memoryUsage()
      let peakRss = 0
      let peakBuffers = 0
      let total = 0
      let sample: Uint8Array = new Uint8Array(0)
      const range = { offset: 0, length: Infinity }
      let nextGC = 0
      for await (const p of decodeRange(encodeRange(reader, outboard, range, 4), root, range, 4)) {
        if (total <= 100 * MiB + 5 && total + p.length > 100 * MiB + 5) sample = p.slice(100 * MiB - total, 100 * MiB - total + 5)
        total += p.length
        // Every 16 MiB, collect garbage and measure what the stream holds on to.
        if (total >= nextGC) {
          gc()
          nextGC += 16 * MiB
          const m = process.memoryUsage()
          peakRss = Math.max(peakRss, m.rss)
          peakBuffers = Math.max(peakBuffers, m.arrayBuffers)
        }
      }
      assert.equal(total, size)
      assert.equal(hex(sample), hex(fill(100 * MiB, 5)))
      const growth = Math.max(peakRss - before.rss, 0)
      const bufferGrowth = Math.max(peakBuffers - before.arrayBuffers, 0)
      if (process.env.BAO_MEMORY_REPORT != null) console.log(`rss +${(growth / MiB).toFixed(1)} MiB, arrayBuffers +${(bufferGrowth / MiB).toFixed(1)} MiB`)
      assert.ok(bufferGrowth < 64 * MiB, `arrayBuffers grew by ${(bufferGrowth / MiB).toFixed(1)} MiB`)
      assert.ok(growth < 64 * MiB, `rss grew by ${(growth / MiB).toFixed(1)} MiB`)
    })
  })

  describe('decodeWhole (a whole stream in hand, verified synchronously)', () => {
    it('returns what decodeRange yields, for ranges inside, across and past the end, and throws as it does', async () => {
      const data = pseudoRandom(70_000, 7)
      const { root, outboard } = makeOutboard(data)
      const ranges: ByteRange[] = [{ offset: 0, length: Infinity }, { offset: 100, length: 20_000 }, { offset: 69_999, length: 10 }, { offset: 80_000, length: 5 }, { offset: 16_384, length: 0 }]
      for (const range of ranges) {
        const encoded = encodeRangeSync(data, outboard, range)
        const whole = decodeWhole(encoded, root, range)
        const pulled = await collect(decodeRange([encoded], root, range))
        assert.deepEqual(new Uint8Array(Buffer.concat(whole)), new Uint8Array(pulled), JSON.stringify(range))
        // A flipped data byte (past the header and the first parent) fails it, as it fails decodeRange.
        if (encoded.length > HEADER_LEN + PARENT_LEN + 1) {
          const bad = encoded.slice()
          bad[bad.length - 1] ^= 1
          assert.throws(() => decodeWhole(bad, root, range), StreamVerificationError)
        }
        assert.throws(() => decodeWhole(encoded.subarray(0, encoded.length - 1), root, range), (err: Error) => err instanceof StreamVerificationError && err.reason === 'truncated')
      }
      assert.throws(() => decodeWhole(encodeRangeSync(data, outboard, ranges[0]), root, ranges[0], undefined, { maxSize: 1000 }), (err: Error) => err.name === 'TooLargeError')
    })
  })
})
