/**
 * `Local.put` of values in hand and of streams, and the copies a put makes: against a real
 * Global on 127.0.0.1. The cache must hold the value as it was put (never the caller's array,
 * which the caller may change afterwards; its copy is made while the value is sent, and must be
 * whole before it is cached), with an outboard that is the value's own (it is served to peers),
 * and a value larger than a quarter of the cache is not cached at all.
 */
import { strict as assert } from 'node:assert'
import { cidOfBytes, type GlobalPeer } from '../src/index.js'
import { TreeHasher } from '../src/core/tree.js'
import { collect, pseudoRandom } from './helpers.js'
import { Cleanup, MiB, assertBytes } from './net.js'

/** The outboard the cache holds for `cid` now (undefined: none yet; it would be built on first use). */
function heldOutboard (cache: unknown, cid: string): Uint8Array | undefined {
  // Read without asking `outboard()`, which would build a missing one from the bytes.
  const c = cache as { lru: Map<string, { outboard?: Uint8Array }>, pinned: Map<string, { outboard?: Uint8Array }> }
  return (c.lru.get(cid) ?? c.pinned.get(cid))?.outboard
}

describe('Local.put: the copies of a put and its cached value', function () {
  this.timeout(120_000)
  const c = new Cleanup()
  let global: GlobalPeer
  before(async function () { global = await c.global(await c.dir('dstore-local-put-')) })
  after(async function () { await c.run() })

  // Past the inline limit (the copy made while the value is sent, in 1 MiB steps): a partial
  // last step, a whole number of steps, and a partial 16 KiB group at the end.
  for (const size of [3 * MiB + 7, 8 * MiB, 20 * MiB + 1]) {
    it(`a ${size}-byte value is stored and cached as given: changing the caller's array after put reaches neither, and the cached outboard is the value's`, async function () {
      const local = await c.local(global)
      const original = pseudoRandom(size, size)
      const mine = original.slice()
      const cid = await local.put(mine)
      assert.ok(cid.equals(cidOfBytes(original)), 'the CID is the value\'s')
      mine.fill(0xaa) // allowed once put has returned
      assertBytes(await collect(global.cat(cid)), original, 'Global\'s value')
      const held = local.cache.peek(cid)
      assert.ok(held !== undefined, 'the put value is cached')
      assertBytes(held.data, original, 'the cached value')
      assert.notEqual(held.data.buffer, mine.buffer, 'the cache does not alias the caller\'s array')
      const want = new TreeHasher({ outboard: true }).update(original).finalize().outboard as Uint8Array
      const outboard = heldOutboard(local.cache, cid.toString())
      assert.ok(outboard !== undefined, 'the outboard was handed to the cache with the value')
      assertBytes(outboard, want, 'the cached outboard')
      assertBytes(await local.get(cid), original, 'a get (a cache hit)')
    })
  }

  it('stop() just after a 64 MiB put of bytes began ends it with ClosedError, and nothing is stored', async function () {
    const local = await c.local(global)
    await local.ready()
    const data = pseudoRandom(64 * MiB, 79)
    const put = local.put(data)
    put.catch(() => {})
    await local.stop() // the put has hashed its value and asks Global (STAT): nothing is sent yet
    await assert.rejects(put, (err: Error) => { assert.equal(err.name, 'ClosedError', err.message); return true })
    assert.equal(await global.has(cidOfBytes(data)), false)
  })

  it('a put of a value Global holds (nothing sent) caches it whole: the copy made alongside is complete before it is cached', async function () {
    const data = pseudoRandom(8 * MiB - 1, 80)
    await global.put(data)
    const local = await c.local(global)
    await local.ready()
    const cid = await local.put(data)
    const held = local.cache.peek(cid)
    assert.ok(held !== undefined, 'the put value is cached')
    assertBytes(held.data, data, 'the cached value')
  })

  it('a value larger than a quarter of the cache is stored, not cached, in hand or streamed; one of a quarter is cached', async function () {
    const local = await c.local(global, { cacheSize: 16 * MiB })
    for (const [size, cached] of [[4 * MiB + 1, false], [4 * MiB, true], [5 * MiB + 3, false]] as const) {
      for (const how of ['in hand', 'streamed'] as const) {
        const data = pseudoRandom(size, 77 + size + (how === 'streamed' ? 1 : 0))
        const source = how === 'in hand' ? data : (async function * () { for (let o = 0; o < data.length; o += MiB) yield data.subarray(o, o + MiB) })()
        const cid = await local.put(source)
        assert.ok(cid.equals(cidOfBytes(data)))
        assert.equal(await local.cache.has(cid), cached, `${size} bytes ${how}: cached ${String(!cached)}`)
        assertBytes(await collect(global.cat(cid)), data, 'Global\'s value')
      }
    }
  })

  it('a streamed put from a reused buffer is cached with the bytes streamed (one copy of each part, sent and kept)', async function () {
    const local = await c.local(global)
    const data = pseudoRandom(3 * MiB + 5, 78)
    const buf = new Uint8Array(40_000)
    async function * reuse (): AsyncGenerator<Uint8Array> {
      for (let o = 0; o < data.length; o += buf.length) {
        const n = Math.min(buf.length, data.length - o)
        buf.set(data.subarray(o, o + n))
        yield buf.subarray(0, n)
      }
    }
    const cid = await local.put(reuse())
    assert.ok(cid.equals(cidOfBytes(data)))
    const held = local.cache.peek(cid)
    assert.ok(held !== undefined, 'the streamed value is cached')
    assertBytes(held.data, data, 'the cached value')
    assertBytes(await collect(global.cat(cid)), data, 'Global\'s value')
  })
})
