/**
 * `Local.get(cid, { into })`: the value decoded into a buffer of the caller's (fetch-into.ts).
 * A real Global and Locals on 127.0.0.1. The failure that leaves zeros is in test-network (a
 * lying Global).
 */
import { strict as assert } from 'node:assert'
import { runInNewContext } from 'node:vm'
import { cidOfBytes, type GlobalPeer } from '../src/index.js'
import { pseudoRandom } from './helpers.js'
import { Cleanup, KiB, MiB, assertBytes, rejectsWith } from './net.js'

describe('Local.get into a buffer of the caller\'s', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  let global: GlobalPeer
  before(async function () { global = await c.global(await c.dir('dstore-into-')) })
  after(async function () { await c.run() })

  for (const size of [100, 20 * KiB, 3 * MiB + 5]) {
    it(`writes a ${size}-byte value at the start of the buffer, returns that view, leaves the rest, and caches nothing`, async function () {
      const l = await c.local(global)
      const value = pseudoRandom(size, size)
      const cid = await global.put(value)
      const into = new Uint8Array(size + 1000).fill(7)
      const got = await l.get(cid, { into })
      assert.equal(got.buffer, into.buffer, 'the view is of the caller\'s buffer')
      assert.equal(got.byteOffset, into.byteOffset)
      assertBytes(got, value)
      assert.equal(into.subarray(size).every(b => b === 7), true, 'the bytes past the value are untouched')
      assert.equal(l.stats().cacheEntries, 0, 'a value fetched into the caller\'s buffer is not cached')
      assert.equal(l.stats().misses, 1)
      // Reused for another value: overwritten, still verified.
      const other = pseudoRandom(size, size + 1)
      const again = await l.get(await global.put(other), { into })
      assertBytes(again, other)
      assert.equal(again.buffer, into.buffer)
    })
  }

  it('decodes into a view at an offset of a larger buffer, and takes an exact fit', async function () {
    const l = await c.local(global)
    const value = pseudoRandom(MiB, 31)
    const cid = await global.put(value)
    const backing = new Uint8Array(3 * MiB).fill(9)
    const into = backing.subarray(MiB, 2 * MiB)
    const got = await l.get(cid, { into })
    assert.equal(got.byteOffset, MiB)
    assertBytes(got, value)
    assert.equal(backing.subarray(0, MiB).every(b => b === 9) && backing.subarray(2 * MiB).every(b => b === 9), true, 'nothing outside the view is written')
  })

  it('copies a cached value into the buffer, so changing the buffer leaves the cache as it was', async function () {
    const l = await c.local(global)
    const value = pseudoRandom(200 * KiB, 32)
    const cid = await global.put(value)
    const shared = await l.get(cid) // cached
    const into = new Uint8Array(300 * KiB)
    const got = await l.get(cid, { into })
    assert.equal(got.buffer, into.buffer)
    assertBytes(got, value)
    assert.equal(l.stats().hits, 1)
    into.fill(0)
    assertBytes(await l.get(cid), value, 'the cached value')
    assert.equal(shared, l.cache.getBytes(cid))
  })

  // Answered inline on the rpc channel, and with the start inline and the rest on a blob stream.
  for (const size of [64 * KiB, 2 * MiB + 3]) {
    it(`refuses a ${size}-byte value larger than the buffer with TooLargeError, before writing any of it, in one wording fetched or cached`, async function () {
      const l = await c.local(global)
      const value = pseudoRandom(size, 33)
      const cid = await global.put(value)
      const into = new Uint8Array(size - 1).fill(3)
      const wording = `the value is ${size} bytes, more than the ${size - 1} of into`
      const fetched = await l.get(cid, { into }).catch((err: Error) => err)
      assert.ok(fetched instanceof Error && fetched.name === 'TooLargeError', `fetched: expected TooLargeError, got ${String(fetched)}`)
      assert.equal(fetched.message, wording)
      assert.equal((fetched.cause as Error | undefined)?.name, 'TooLargeError', 'the decoder\'s refusal is the cause')
      assert.equal(into.every(b => b === 3), true, 'nothing was written')
      await l.get(cid)
      const cached = await l.get(cid, { into }).catch((err: Error) => err)
      assert.ok(cached instanceof Error && cached.name === 'TooLargeError', `cached: expected TooLargeError, got ${String(cached)}`)
      assert.equal(cached.message, wording)
      assert.equal(into.every(b => b === 3), true, 'nothing was written from the cache either')
    })
  }

  it('decodes in place: verified bytes are in the buffer as they arrive, and the value is the view at the buffer\'s own offset', async function () {
    const l = await c.local(global)
    const size = 3 * MiB + 7
    const value = pseudoRandom(size, 37)
    const cid = await global.put(value)
    const backing = new Uint8Array(size + 2 * KiB).fill(8)
    const into = backing.subarray(KiB, KiB + size + 10)
    // Read during the get only to see where the decoder writes (a caller may not): a value
    // decoded elsewhere and copied over once complete would not be in `into` yet.
    const during: boolean[] = []
    const got = await l.get(cid, {
      into,
      onProgress: (e) => { if (e.bytes < size) during.push(Buffer.from(into.buffer, into.byteOffset, e.bytes).equals(value.subarray(0, e.bytes))) }
    })
    assert.ok(during.length > 0, 'progress before the end')
    assert.equal(during.every(ok => ok), true, 'each verified prefix was in into when reported')
    assert.equal(got.buffer, into.buffer)
    assert.equal(got.byteOffset, into.byteOffset)
    assertBytes(got, value)
  })

  it('rejects a get aborted mid-transfer with AbortError and leaves zeros over the value\'s length, the rest of the buffer as it was', async function () {
    const l = await c.local(global)
    const size = 8 * MiB + 5
    const value = pseudoRandom(size, 38)
    const cid = await global.put(value)
    const into = new Uint8Array(size + 1000).fill(0x5a)
    const ac = new AbortController()
    let seen = 0
    await rejectsWith(l.get(cid, {
      into,
      signal: ac.signal,
      onProgress: (e) => { seen = e.bytes; if (e.bytes >= MiB) ac.abort() }
    }), 'AbortError')
    assert.ok(seen >= MiB && seen < size, `aborted mid-transfer (at ${seen} bytes)`)
    // The decoder had the whole value's length of `into` as its target: all of it is zeroed.
    assert.equal(into.subarray(0, size).every(b => b === 0), true, 'every byte the get may have written is zero')
    assert.equal(into.subarray(size).every(b => b === 0x5a), true, 'the bytes past the value are untouched')
    assert.equal(l.stats().cacheEntries, 0)
    assertBytes(await l.get(cid, { into }), value, 'the buffer is free for the next get')
  })

  it('refuses, with ArgumentError, a get into bytes that another get in flight writes into, and runs gets into views that do not overlap at once', async function () {
    const l = await c.local(global)
    const a = pseudoRandom(2 * MiB, 39)
    const b = pseudoRandom(2 * MiB + 1, 40)
    const [ca, cb] = [await global.put(a), await global.put(b)]
    const backing = new Uint8Array(4 * MiB + 10).fill(6)
    // Side by side in one ArrayBuffer: both at once.
    const [ga, gb] = await Promise.all([l.get(ca, { into: backing.subarray(0, 2 * MiB) }), l.get(cb, { into: backing.subarray(2 * MiB) })])
    assertBytes(ga, a)
    assertBytes(gb, b)
    // One byte in common: refused at once, writing nothing; the first get is not disturbed.
    const first = l.get(ca, { into: backing.subarray(0, 2 * MiB) })
    await assert.rejects(l.get(cb, { into: backing.subarray(2 * MiB - 1) }), (err: Error) => {
      assert.equal(err.name, 'ArgumentError')
      assert.match(err.message, /another get into it is still writing/)
      return true
    })
    assertBytes(await first, a)
    assertBytes(backing.subarray(2 * MiB, 4 * MiB + 1), b, 'the refused get wrote nothing')
    // Released once the first settled: the same bytes can be written again.
    assertBytes(await l.get(cb, { into: backing.subarray(2 * MiB - 1) }), b)
    // A copy of a cached value holds its bytes until the get settles too.
    await l.get(ca)
    const hit = l.get(ca, { into: backing })
    await rejectsWith(l.get(ca, { into: backing.subarray(5, 10) }), 'ArgumentError')
    assertBytes(await hit, a)
    assertBytes(await l.get(ca, { into: backing.subarray(5) }), a)
  })

  it('caches a copy of a put Buffer, not a view of it: changing the Buffer afterwards changes no get, and a pooled Buffer is still accepted as into', async function () {
    const l = await c.local(global)
    const small = Buffer.from('a small value from the pool')
    const big = Buffer.alloc(300 * KiB, 5)
    const [cs, cb] = [await l.put(small), await l.put(big)]
    small.fill(0)
    big.fill(0)
    assert.equal(Buffer.from(await l.get(cs)).toString(), 'a small value from the pool')
    assert.equal((await l.get(cb)).every(b => b === 5), true)
    const pooled = Buffer.allocUnsafe(100)
    const got = await l.get(cs, { into: pooled })
    assert.equal(Buffer.from(got).toString(), 'a small value from the pool')
  })

  it('leaves the buffer as it was when Global does not have the value (NotFoundError)', async function () {
    const l = await c.local(global)
    const into = new Uint8Array(1000).fill(4)
    await rejectsWith(l.get(cidOfBytes(pseudoRandom(5000, 34)), { into }), 'NotFoundError')
    assert.equal(into.every(b => b === 4), true)
  })

  it('refuses, with ArgumentError, an array a get handed out read-only, a SharedArrayBuffer, and what is not a Uint8Array', async function () {
    const l = await c.local(global)
    const a = pseudoRandom(100 * KiB, 35)
    const b = pseudoRandom(100 * KiB, 36)
    const [ca, cb] = [await global.put(a), await global.put(b)]
    const shared = await l.get(ca)
    // Reusing the array of an earlier get would write over the cache's value.
    await rejectsWith(l.get(cb, { into: shared }), 'ArgumentError')
    await rejectsWith(l.get(cb, { into: shared.subarray(10) }), 'ArgumentError')
    assertBytes(await l.get(ca), a, 'the cached value is intact')
    // Still refused once evicted: other callers may hold it.
    await l.cache.delete(ca)
    await rejectsWith(l.get(cb, { into: shared }), 'ArgumentError')
    // A piece of a shared streamed transfer (cat with fill) is read-only too.
    const fresh = await c.local(global)
    const pieces: Uint8Array[] = []
    for await (const p of fresh.cat(cb, { fill: true })) pieces.push(p)
    await rejectsWith(fresh.get(ca, { into: pieces[0] }), 'ArgumentError')
    await rejectsWith(l.get(cb, { into: new Uint8Array(new SharedArrayBuffer(200 * KiB)) }), 'ArgumentError')
    // One from another realm (a vm context) too, which `instanceof SharedArrayBuffer` misses.
    await rejectsWith(l.get(cb, { into: new Uint8Array(runInNewContext('new SharedArrayBuffer(204800)') as SharedArrayBuffer) }), 'ArgumentError')
    await rejectsWith(l.get(cb, { into: new ArrayBuffer(200 * KiB) as unknown as Uint8Array }), 'ArgumentError')
    await rejectsWith(l.get(cb, { into: [1, 2, 3] as unknown as Uint8Array }), 'ArgumentError')
    // A buffer of the caller's own still works on this Local.
    assertBytes(await l.get(cb, { into: new Uint8Array(100 * KiB) }), b)
  })
})
