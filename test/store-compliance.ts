/**
 * The blob store compliance suite: every `BlobStore` implementation runs it.
 *
 *   runBlobStoreCompliance('memory store', async () => ({ store, cleanup }))
 *
 * Each test gets a fresh, empty store from the factory and closes it (and calls `cleanup`)
 * afterwards. Errors are checked by `name`, never by message text.
 */
import { strict as assert } from 'node:assert'
import { CID } from 'multiformats/cid'
import { base58btc } from 'multiformats/bases/base58'
import { cidOfBytes } from '../src/core/cid.js'
import { TreeHasher } from '../src/core/tree.js'
import type { BlobStat, BlobStore, ProgressEvent, VerifiableBlobStore } from '../src/core/store/interface.js'
import { collect, pseudoRandom } from './helpers.js'

export interface ComplianceFixture {
  store: BlobStore
  /** Removes whatever the store left behind (called after `close`). */
  cleanup?: () => Promise<void>
}

export interface ComplianceOptions {
  /** The store also implements `outboard` and `open`. */
  verifiable?: boolean
}

/** Value sizes every read/write test goes through: empty, tiny, one group, just above, several groups. */
export const SIZES = [0, 1, 1024, 16 * 1024, 16 * 1024 + 1, 200_000]

/** A CID of the right kind that no test stores. */
export const ABSENT = cidOfBytes(new TextEncoder().encode('never stored by the compliance suite'))

/** Strings that are not dstore keys. */
export const BAD_CIDS = [
  'not-a-cid',
  '',
  'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', // CIDv0 (sha2-256)
  'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' // CIDv1 raw sha2-256
]

export async function expectReject (promise: Promise<unknown>, name: string): Promise<Error> {
  try {
    await promise
  } catch (err) {
    assert.equal((err as Error).name, name, `expected ${name}, got ${(err as Error).name}: ${(err as Error).message}`)
    return err as Error
  }
  assert.fail(`expected ${name}, but it resolved`)
}

/** Every entry `list` yields. */
export async function listAll (store: BlobStore): Promise<BlobStat[]> {
  const out: BlobStat[] = []
  for await (const stat of store.list()) out.push(stat)
  return out
}

/** Chops `bytes` into pieces of varying sizes (1, 7, 4096, ...), as an async iterable. */
export async function * chopped (bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  const sizes = [1, 7, 4096, 65_537, 3]
  let off = 0
  for (let i = 0; off < bytes.length; i++) {
    const n = Math.min(sizes[i % sizes.length], bytes.length - off)
    yield bytes.slice(off, off + n)
    off += n
  }
}

/** Yields `head`, then never yields again (until `return`). */
async function * stalled (head: Uint8Array): AsyncGenerator<Uint8Array> {
  yield head
  await new Promise(() => {})
}

export function runBlobStoreCompliance (name: string, factory: () => Promise<ComplianceFixture>, options: ComplianceOptions = {}): void {
  describe(`${name} (compliance)`, function () {
    let fixture: ComplianceFixture
    let store: BlobStore

    beforeEach(async () => {
      fixture = await factory()
      store = fixture.store
    })

    afterEach(async () => {
      await store.close()
      await fixture.cleanup?.()
    })

    describe('put', () => {
      for (const size of SIZES) {
        it(`stores a ${size}-byte value under the CID of its bytes`, async () => {
          const value = pseudoRandom(size, size + 1)
          const cid = await store.put(value)
          assert.ok(cid.equals(cidOfBytes(value)))
          assert.deepEqual(await collect(store.cat(cid)), value)
        })
      }

      it('gives the same CID however the value is chunked (bytes, iterable, async iterable)', async () => {
        const value = pseudoRandom(100_000, 3)
        const a = await store.put(value)
        const b = await store.put([value.slice(0, 10), value.slice(10)])
        const c = await store.put(chopped(value))
        assert.ok(a.equals(b) && a.equals(c))
        assert.deepEqual(await collect(store.cat(a)), value)
      })

      it('is a no-op returning the same CID when the value is already stored', async () => {
        const value = pseudoRandom(5000, 4)
        const a = await store.put(value)
        const b = await store.put(value)
        assert.ok(a.equals(b))
        assert.equal((await listAll(store)).length, 1)
      })

      it('keeps its own copy: changing the input afterwards does not change the stored value', async () => {
        const value = pseudoRandom(3000, 5)
        const copy = value.slice()
        const cid = await store.put(value)
        value.fill(0)
        assert.deepEqual(await collect(store.cat(cid)), copy)
      })

      it('accepts a matching expected CID, as object or string', async () => {
        const value = pseudoRandom(2000, 6)
        const cid = cidOfBytes(value)
        assert.ok((await store.put(value, { expected: cid })).equals(cid))
        assert.ok((await store.put(value, { expected: cid.toString() })).equals(cid))
      })

      for (const size of [10, 200_000]) {
        it(`rejects a ${size}-byte value whose hash is not the expected CID with VerificationError, storing nothing`, async () => {
          const value = pseudoRandom(size, 7)
          await expectReject(store.put(chopped(value), { expected: ABSENT }), 'VerificationError')
          assert.equal(await store.has(cidOfBytes(value)), false)
          assert.equal((await listAll(store)).length, 0)
        })
      }

      it('rejects a value shorter or longer than the given size with VerificationError, storing nothing', async () => {
        const value = pseudoRandom(100_000, 8)
        await expectReject(store.put(value, { size: 99_999 }), 'VerificationError')
        await expectReject(store.put(chopped(value), { size: 100_001 }), 'VerificationError')
        assert.equal(await store.has(cidOfBytes(value)), false)
      })

      it('rejects an invalid expected CID with InvalidCIDError', async () => {
        await expectReject(store.put(new Uint8Array(1), { expected: 'not-a-cid' }), 'InvalidCIDError')
      })

      it('rejects with AbortError when the signal is already aborted', async () => {
        const value = pseudoRandom(100, 9)
        await expectReject(store.put(value, { signal: AbortSignal.abort() }), 'AbortError')
        assert.equal(await store.has(cidOfBytes(value)), false)
      })

      it('rejects with AbortError when aborted while the source is stalled, storing nothing', async () => {
        const controller = new AbortController()
        const head = pseudoRandom(300_000, 10)
        const put = store.put(stalled(head), { signal: controller.signal })
        setTimeout(() => { controller.abort() }, 20)
        await expectReject(put, 'AbortError')
        assert.equal((await listAll(store)).length, 0)
      })

      it('passes on the error of a failing source, storing nothing', async () => {
        async function * failing (): AsyncGenerator<Uint8Array> {
          yield pseudoRandom(200_000, 11)
          throw new RangeError('source broke')
        }
        await expectReject(store.put(failing()), 'RangeError')
        assert.equal((await listAll(store)).length, 0)
      })

      it('rejects a source yielding something other than bytes with TypeError, storing nothing', async () => {
        await expectReject(store.put([new Uint8Array(3), 'text' as unknown as Uint8Array]), 'TypeError')
        await expectReject(store.put([new Uint8Array(3), 'text' as unknown as Uint8Array], { signal: new AbortController().signal }), 'TypeError')
        assert.equal((await listAll(store)).length, 0)
      })

      it('reports blob:put:write progress up to the full size', async () => {
        const events: ProgressEvent[] = []
        const value = pseudoRandom(200_000, 12)
        await store.put(chopped(value), { onProgress: e => events.push(e) })
        assert.ok(events.length > 0)
        assert.ok(events.every(e => e.type === 'blob:put:write'))
        assert.equal(events[events.length - 1].bytes, value.length)
        for (let i = 1; i < events.length; i++) assert.ok(events[i].bytes >= events[i - 1].bytes)
      })

      it('stores a value once when the same value is put concurrently', async () => {
        const value = pseudoRandom(150_000, 13)
        const cids = await Promise.all([store.put(value), store.put(chopped(value)), store.put(value)])
        assert.ok(cids.every(c => c.equals(cids[0])))
        assert.equal((await listAll(store)).length, 1)
        assert.deepEqual(await collect(store.cat(cids[0])), value)
      })

      it('stores different values concurrently', async () => {
        const values = Array.from({ length: 20 }, (_, i) => pseudoRandom(i * 5000, 100 + i))
        const cids = await Promise.all(values.map(async v => await store.put(v)))
        for (let i = 0; i < values.length; i++) assert.deepEqual(await collect(store.cat(cids[i])), values[i])
      })
    })

    describe('get', () => {
      it('accepts the CID as object, base32 string or another base', async () => {
        const value = pseudoRandom(1000, 20)
        const cid = await store.put(value)
        assert.deepEqual(await collect(store.cat(cid)), value)
        assert.deepEqual(await collect(store.cat(cid.toString())), value)
        assert.deepEqual(await collect(store.cat(cid.toString(base58btc))), value)
      })

      for (const size of [1000, 200_000]) {
        it(`returns byte ranges of a ${size}-byte value`, async () => {
          const value = pseudoRandom(size, 21)
          const cid = await store.put(value)
          const cases: Array<[number, number | undefined]> = [[0, 1], [1, 10], [size - 1, 1], [size, 0], [0, size], [17, undefined], [size / 2, size / 4]]
          for (const [offset, length] of cases) {
            const got = await collect(store.cat(cid, { offset, length }))
            assert.deepEqual(got, value.subarray(offset, length === undefined ? size : offset + length), `range ${offset}+${String(length)}`)
          }
        })
      }

      it('streams a large value in several bounded pieces', async () => {
        const value = pseudoRandom(3 * 1024 * 1024 + 5, 22)
        const cid = await store.put(value)
        const pieces: Uint8Array[] = []
        for await (const p of store.cat(cid)) pieces.push(p)
        assert.ok(pieces.length >= 3)
        assert.ok(pieces.every(p => p.length <= 1024 * 1024))
      })

      it('rejects a range outside the value with OutOfRangeError', async () => {
        const cid = await store.put(pseudoRandom(100, 23))
        await expectReject(collect(store.cat(cid, { offset: 101 })), 'OutOfRangeError')
        await expectReject(collect(store.cat(cid, { offset: 50, length: 51 })), 'OutOfRangeError')
        await expectReject(collect(store.cat(cid, { offset: -1 })), 'OutOfRangeError')
        await expectReject(collect(store.cat(cid, { length: -1 })), 'OutOfRangeError')
        await expectReject(collect(store.cat(cid, { offset: 1.5 })), 'OutOfRangeError')
      })

      it('reports blob:get:read progress up to the range length', async () => {
        const value = pseudoRandom(200_000, 24)
        const cid = await store.put(value)
        const events: ProgressEvent[] = []
        await collect(store.cat(cid, { offset: 100, onProgress: e => events.push(e) }))
        assert.ok(events.length > 0)
        assert.ok(events.every(e => e.type === 'blob:get:read'))
        assert.equal(events[events.length - 1].bytes, value.length - 100)
      })

      it('rejects with AbortError when the signal is aborted', async () => {
        const cid = await store.put(pseudoRandom(100, 25))
        await expectReject(collect(store.cat(cid, { signal: AbortSignal.abort() })), 'AbortError')
      })
    })

    describe('has', () => {
      it('is true for a stored value and false for another', async () => {
        const cid = await store.put(pseudoRandom(10, 30))
        assert.equal(await store.has(cid), true)
        assert.equal(await store.has(cid.toString()), true)
        assert.equal(await store.has(ABSENT), false)
      })
    })

    describe('stat', () => {
      it('gives the CID and size of a stored value', async () => {
        const value = pseudoRandom(200_000, 31)
        const cid = await store.put(value)
        const stat = await store.stat(cid.toString())
        assert.ok(stat.cid.equals(cid))
        assert.equal(stat.size, value.length)
        assert.equal(typeof stat.pinned, 'boolean')
      })
    })

    describe('delete', () => {
      it('removes a value: true the first time, false the next, and get then fails with NotFoundError', async () => {
        for (const size of [100, 200_000]) {
          const cid = await store.put(pseudoRandom(size, 40))
          assert.equal(await store.delete(cid), true)
          assert.equal(await store.delete(cid), false)
          assert.equal(await store.has(cid), false)
          await expectReject(collect(store.cat(cid)), 'NotFoundError')
          await expectReject(store.stat(cid), 'NotFoundError')
        }
        assert.equal((await listAll(store)).length, 0)
      })

      it('allows the value to be put again', async () => {
        const value = pseudoRandom(200_000, 41)
        const cid = await store.put(value)
        await store.delete(cid)
        await store.put(value)
        assert.deepEqual(await collect(store.cat(cid)), value)
      })
    })

    describe('list', () => {
      it('lists nothing in an empty store', async () => {
        assert.equal((await listAll(store)).length, 0)
      })

      it('lists every stored value once, with its size', async () => {
        const values = Array.from({ length: 300 }, (_, i) => pseudoRandom(i * 37, 500 + i))
        values.push(pseudoRandom(200_000, 42))
        const expected = new Map<string, number>()
        for (const v of values) expected.set((await store.put(v)).toString(), v.length)
        const seen = new Map<string, number>()
        for await (const stat of store.list()) {
          assert.ok(!seen.has(stat.cid.toString()), 'listed twice')
          seen.set(stat.cid.toString(), stat.size)
        }
        assert.deepEqual(seen, expected)
      })

      it('rejects with AbortError when the signal is aborted', async () => {
        await store.put(pseudoRandom(10, 43))
        await expectReject((async () => { for await (const _ of store.list({ signal: AbortSignal.abort() })) {} })(), 'AbortError')
      })
    })

    describe('every method taking a CID', () => {
      it('rejects a missing CID with NotFoundError (stat, get, and outboard/open when verifiable)', async () => {
        await expectReject(store.stat(ABSENT), 'NotFoundError')
        await expectReject(collect(store.cat(ABSENT)), 'NotFoundError')
        await expectReject(collect(store.cat(ABSENT, { offset: 0, length: 0 })), 'NotFoundError')
        assert.equal(await store.has(ABSENT), false)
        assert.equal(await store.delete(ABSENT), false)
        if (options.verifiable === true) {
          const v = store as VerifiableBlobStore
          await expectReject(v.outboard(ABSENT), 'NotFoundError')
          await expectReject(v.open(ABSENT), 'NotFoundError')
        }
      })

      for (const bad of BAD_CIDS) {
        it(`rejects ${JSON.stringify(bad)} with InvalidCIDError`, async () => {
          await expectReject(store.has(bad), 'InvalidCIDError')
          await expectReject(store.stat(bad), 'InvalidCIDError')
          await expectReject(collect(store.cat(bad)), 'InvalidCIDError')
          await expectReject(store.delete(bad), 'InvalidCIDError')
          if (options.verifiable === true) {
            const v = store as VerifiableBlobStore
            await expectReject(v.outboard(bad), 'InvalidCIDError')
            await expectReject(v.open(bad), 'InvalidCIDError')
          }
        })
      }

      it('rejects a CID object of another hash with InvalidCIDError', async () => {
        const v0 = CID.parse('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG')
        await expectReject(store.has(v0 as any), 'InvalidCIDError')
        await expectReject(collect(store.cat(v0 as any)), 'InvalidCIDError')
      })
    })

    if (options.verifiable === true) {
      describe('outboard', () => {
        for (const size of SIZES) {
          it(`is the tree hasher's outboard for a ${size}-byte value`, async () => {
            const v = store as VerifiableBlobStore
            const value = pseudoRandom(size, 50)
            const cid = await v.put(chopped(value))
            const expected = new TreeHasher({ outboard: true }).update(value).finalize().outboard
            assert.deepEqual(await v.outboard(cid), expected)
          })
        }
      })

      describe('open', () => {
        it('reads any range of the value', async () => {
          const v = store as VerifiableBlobStore
          for (const size of [1000, 200_000]) {
            const value = pseudoRandom(size, 51)
            const reader = await v.open(await v.put(value))
            assert.equal(reader.size, size)
            assert.deepEqual(await reader.read(0, size), value)
            assert.deepEqual(await reader.read(size - 10, 10), value.subarray(size - 10))
            assert.deepEqual(await reader.read(size, 0), new Uint8Array(0))
            await expectReject(reader.read(size - 1, 2), 'OutOfRangeError')
            await expectReject(reader.read(-1, 1), 'OutOfRangeError')
            await reader.close()
          }
        })

        it('lets a reader opened before a delete finish reading', async () => {
          const v = store as VerifiableBlobStore
          for (const size of [1000, 200_000]) {
            const value = pseudoRandom(size, 52)
            const cid = await v.put(value)
            const reader = await v.open(cid)
            assert.equal(await v.delete(cid), true)
            assert.deepEqual(await reader.read(0, size), value)
            await reader.close()
          }
        })
      })
    }

    describe('get during delete', () => {
      it('lets a get that has started finish after the value is deleted', async () => {
        const value = pseudoRandom(3 * 1024 * 1024, 53)
        const cid = await store.put(value)
        const iterator = store.cat(cid)[Symbol.asyncIterator]()
        const first = await iterator.next()
        assert.equal(await store.delete(cid), true)
        const parts = [first.value as Uint8Array]
        for (;;) {
          const r = await iterator.next()
          if (r.done === true) break
          parts.push(r.value)
        }
        assert.deepEqual(await collect(parts), value)
      })
    })

    describe('close', () => {
      it('makes every later call fail with ClosedError', async () => {
        const cid = await store.put(pseudoRandom(10, 60))
        await store.close()
        await store.close() // twice is fine
        await expectReject(store.has(cid), 'ClosedError')
        await expectReject(store.stat(cid), 'ClosedError')
        await expectReject(store.put(new Uint8Array(1)), 'ClosedError')
        await expectReject(collect(store.cat(cid)), 'ClosedError')
        await expectReject(store.delete(cid), 'ClosedError')
        await expectReject(listAll(store), 'ClosedError')
        if (options.verifiable === true) {
          const v = store as VerifiableBlobStore
          await expectReject(v.outboard(cid), 'ClosedError')
          await expectReject(v.open(cid), 'ClosedError')
        }
      })
    })
  })
}
