import { strict as assert } from 'node:assert'
import type { CID } from 'multiformats/cid'
import { base58btc } from 'multiformats/bases/base58'
import { cidOfBytes } from '../src/core/cid.js'
import { createMemoryStore, MemoryBlobStore } from '../src/core/store/memory.js'
import { TreeHasher } from '../src/core/tree.js'
import { collect, pseudoRandom } from './helpers.js'
import { ABSENT, expectReject, listAll, runBlobStoreCompliance } from './store-compliance.js'

runBlobStoreCompliance('memory store', async () => ({ store: createMemoryStore({ maxBytes: 64 * 1024 * 1024 }) }), { verifiable: true })

/** A value of `size` bytes distinct for each `seed`. */
function value (size: number, seed: number): Uint8Array {
  return pseudoRandom(size, seed)
}

describe('memory store', () => {
  let store: MemoryBlobStore
  afterEach(async () => { await store?.close() })

  describe('put', () => {
    it('evicts least recently used values by bytes to make room', async () => {
      const evicted: string[] = []
      store = createMemoryStore({ maxBytes: 1000, onEvict: cid => evicted.push(cid.toString()) })
      const a = await store.put(value(400, 1))
      const b = await store.put(value(400, 2))
      const c = await store.put(value(400, 3)) // 1200 > 1000: evicts a
      assert.deepEqual(evicted, [a.toString()])
      assert.equal(await store.has(a), false)
      assert.equal(await store.has(b), true)
      assert.equal(await store.has(c), true)
      const d = await store.put(value(900, 4)) // must evict b and c
      assert.deepEqual(evicted, [a, b, c].map(String))
      assert.deepEqual((await listAll(store)).map(s => s.cid.toString()), [d.toString()])
      assert.equal(store.stats().bytes, 900)
    })

    it('evicts several small values for one large one, oldest first', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const small = []
      for (let i = 0; i < 10; i++) small.push(await store.put(value(100, 10 + i)))
      await store.put(value(350, 99))
      for (let i = 0; i < 4; i++) assert.equal(await store.has(small[i]), false, `small ${i} evicted`)
      for (let i = 4; i < 10; i++) assert.equal(await store.has(small[i]), true, `small ${i} kept`)
      assert.equal(store.stats().evictions, 4)
      assert.equal(store.stats().bytes, 950)
    })

    it('rejects a value larger than the budget with TooLargeError, storing and evicting nothing', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const a = await store.put(value(600, 1))
      await expectReject(store.put(value(1001, 2)), 'TooLargeError')
      await expectReject(store.put([value(500, 3), value(501, 4)]), 'TooLargeError')
      await expectReject(store.put(value(10, 5), { size: 1001 }), 'TooLargeError')
      assert.equal(await store.has(a), true)
      assert.deepEqual({ ...store.stats(), hits: 0, misses: 0 }, { hits: 0, misses: 0, evictions: 0, bytes: 600, pinnedBytes: 0, entries: 1, maxBytes: 1000 })
      await store.put(value(1000, 6)) // exactly the budget fits
      assert.equal(store.stats().bytes, 1000)
    })

    it('pins with pin: true, and pinning an already held value through put', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const v = value(100, 1)
      const cid = await store.put(v)
      assert.equal((await store.stat(cid)).pinned, false)
      await store.put(v, { pin: true })
      assert.equal((await store.stat(cid)).pinned, true)
      assert.equal(store.stats().pinnedBytes, 100)
    })
  })

  describe('get', () => {
    it('counts as a use: a read value outlives older unread ones', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const a = await store.put(value(300, 1))
      const b = await store.put(value(300, 2))
      const c = await store.put(value(300, 3))
      await collect(store.cat(a)) // order now b, c, a
      await store.put(value(300, 4)) // evicts b
      assert.equal(await store.has(a), true)
      assert.equal(await store.has(b), false)
      assert.equal(await store.has(c), true)
    })

    it('counts hits and misses', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const a = await store.put(value(10, 1))
      await collect(store.cat(a))
      store.getBytes(a)
      await expectReject(collect(store.cat(ABSENT)), 'NotFoundError')
      assert.equal(store.getBytes(ABSENT), undefined)
      const s = store.stats()
      assert.equal(s.hits, 2)
      assert.equal(s.misses, 2)
      assert.equal(s.entries, 1)
    })
  })

  describe('has and stat', () => {
    it('do not reorder: a value only checked is still evicted first', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const a = await store.put(value(300, 1))
      const b = await store.put(value(300, 2))
      await store.has(a)
      await store.stat(a)
      await store.outboard(a)
      await store.put(value(500, 3)) // evicts a, the least recently put
      assert.equal(await store.has(a), false)
      assert.equal(await store.has(b), true)
      assert.equal(store.stats().hits, 0)
    })
  })

  describe('getBytes', () => {
    it('returns the whole value synchronously for a CID object, its base32 string or another base', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const v = value(100, 1)
      const cid = await store.put(v)
      assert.deepEqual(store.getBytes(cid), v)
      assert.deepEqual(store.getBytes(cid.toString()), v)
      assert.deepEqual(store.getBytes(cid.toString(base58btc)), v)
      assert.equal(store.getBytes(ABSENT.toString()), undefined)
    })

    it('throws InvalidCIDError for a string that is not a dstore key', () => {
      store = createMemoryStore({ maxBytes: 1000 })
      assert.throws(() => store.getBytes('not-a-cid'), { name: 'InvalidCIDError' })
    })

    it('counts as a use', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const a = await store.put(value(400, 1))
      const b = await store.put(value(400, 2))
      store.getBytes(a.toString())
      await store.put(value(400, 3))
      assert.equal(await store.has(a), true)
      assert.equal(await store.has(b), false)
    })

    it('throws ClosedError after close', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      await store.close()
      assert.throws(() => store.getBytes(ABSENT), { name: 'ClosedError' })
    })

    it('takes well under 10 µs for a warm small value (sanity check, not the benchmark)', async () => {
      store = createMemoryStore({ maxBytes: 1 << 20 })
      const cids: string[] = []
      for (let i = 0; i < 100; i++) cids.push((await store.put(value(1024, i + 1))).toString())
      const n = 100_000
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < n; i++) store.getBytes(cids[i % 100])
      const perOp = Number(process.hrtime.bigint() - t0) / n / 1000
      assert.ok(perOp < 10, `${perOp} µs per getBytes`)
    })
  })

  describe('adoptVerified', () => {
    it('keeps the given array without copying, and builds the same outboard a put would, on demand', async () => {
      const store = createMemoryStore({ maxBytes: 1 << 20 })
      const value = pseudoRandom(100_000, 77)
      const cid = cidOfBytes(value)
      store.adoptVerified(cid, value)
      assert.equal(store.getBytes(cid), value, 'the store holds the adopted array itself')
      const expected = new TreeHasher({ outboard: true }).update(value).finalize().outboard
      assert.deepEqual(await store.outboard(cid), expected)
      assert.equal(store.stats().bytes, value.length)
      await store.close()
    })

    it('refuses a value larger than the budget, storing and evicting nothing', async () => {
      const store = createMemoryStore({ maxBytes: 1000 })
      const small = pseudoRandom(600, 1)
      store.adoptVerified(cidOfBytes(small), small)
      const big = pseudoRandom(1001, 2)
      assert.throws(() => { store.adoptVerified(cidOfBytes(big), big) }, { name: 'TooLargeError' })
      assert.equal(store.stats().entries, 1)
      assert.equal(store.stats().evictions, 0)
      await store.close()
    })

    it('evicts least recently used values to make room, like put', async () => {
      const store = createMemoryStore({ maxBytes: 1000 })
      const a = pseudoRandom(600, 1)
      const b = pseudoRandom(600, 2)
      store.adoptVerified(cidOfBytes(a), a)
      store.adoptVerified(cidOfBytes(b), b)
      assert.equal(await store.has(cidOfBytes(a)), false)
      assert.equal(await store.has(cidOfBytes(b)), true)
      assert.equal(store.stats().evictions, 1)
      await store.close()
    })
  })

  describe('peek', () => {
    it('returns the value and its outboard without counting a use or reordering', async () => {
      const evicted: string[] = []
      store = createMemoryStore({ maxBytes: 100_000, onEvict: cid => evicted.push(cid.toString()) })
      const data = value(40_000, 5)
      const a = await store.put(data)
      const b = await store.put(value(40_000, 6))
      const before = store.stats()
      const seen = store.peek(a)
      assert.ok(seen !== undefined)
      assert.deepEqual(seen.data, data)
      assert.deepEqual(seen.outboard(), new TreeHasher({ outboard: true }).update(data).finalize().outboard)
      assert.equal(store.peek(cidOfBytes(value(10, 99))), undefined, 'absent')
      const after = store.stats()
      assert.equal(after.hits, before.hits)
      assert.equal(after.misses, before.misses)
      await store.put(value(40_000, 8)) // evicts the least recently used: a, as peek did not use it
      assert.deepEqual(evicted, [a.toString()])
      assert.equal(await store.has(b), true)
    })

    it('builds the outboard of an adopted value only when asked', async () => {
      store = createMemoryStore({ maxBytes: 100_000 })
      const data = value(50_000, 9)
      const cid = cidOfBytes(data)
      store.adoptVerified(cid, data)
      const seen = store.peek(cid)
      assert.ok(seen !== undefined)
      assert.deepEqual(seen.outboard(), await store.outboard(cid))
    })
  })

  describe('pin and unpin', () => {
    it('keeps pinned values through eviction pressure', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      const pinned = await store.put(value(300, 1), { pin: true })
      const other = await store.put(value(300, 2))
      await store.pin(other)
      for (let i = 0; i < 50; i++) await store.put(value(200, 100 + i))
      assert.equal(await store.has(pinned), true)
      assert.equal(await store.has(other), true)
      const s = store.stats()
      assert.equal(s.pinnedBytes, 600)
      assert.ok(s.bytes <= 1000)
      assert.equal(s.evictions, 48)
    })

    it('counts pinned bytes toward the budget: a value that fits only by evicting a pin is TooLargeError', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      await store.put(value(700, 1), { pin: true })
      const loose = await store.put(value(200, 2))
      await expectReject(store.put(value(301, 3)), 'TooLargeError')
      await expectReject(store.put(value(301, 4), { pin: true }), 'TooLargeError')
      assert.equal(await store.has(loose), true, 'nothing evicted by a refused put')
      await store.put(value(300, 5)) // fits by evicting the unpinned one
      assert.equal(await store.has(loose), false)
    })

    it('makes an unpinned value evictable again, as the most recently used', async () => {
      const evicted: CID[] = []
      store = createMemoryStore({ maxBytes: 1000 })
      store.onEvict = cid => evicted.push(cid)
      const a = await store.put(value(300, 1), { pin: true })
      const b = await store.put(value(300, 2))
      await store.unpin(a) // order: b, a
      assert.equal((await store.stat(a)).pinned, false)
      await store.put(value(500, 3))
      assert.deepEqual(evicted.map(String), [b.toString()])
      await store.put(value(500, 4))
      assert.deepEqual(evicted.map(String), [b, a].map(String))
    })

    it('rejects a missing CID with NotFoundError', async () => {
      store = createMemoryStore({ maxBytes: 1000 })
      await expectReject(store.pin(ABSENT), 'NotFoundError')
      await expectReject(store.unpin(ABSENT), 'NotFoundError')
    })
  })

  describe('delete', () => {
    it('removes pinned values too and frees their bytes, without calling onEvict', async () => {
      let calls = 0
      store = createMemoryStore({ maxBytes: 1000, onEvict: () => { calls++ } })
      const cid = await store.put(value(500, 1), { pin: true })
      assert.equal(await store.delete(cid), true)
      assert.deepEqual({ ...store.stats() }, { hits: 0, misses: 0, evictions: 0, bytes: 0, pinnedBytes: 0, entries: 0, maxBytes: 1000 })
      assert.equal(calls, 0)
    })
  })

  describe('createMemoryStore', () => {
    it('rejects a negative budget with OutOfRangeError', () => {
      assert.throws(() => createMemoryStore({ maxBytes: -1 }), { name: 'OutOfRangeError' })
    })

    it('stores the empty value even with a zero budget', async () => {
      store = createMemoryStore({ maxBytes: 0 })
      const cid = await store.put(new Uint8Array(0))
      assert.ok(cid.equals(cidOfBytes(new Uint8Array(0))))
      await expectReject(store.put(new Uint8Array(1)), 'TooLargeError')
    })
  })
})
