/**
 * End-to-end tests of the Global and Local peers: real libp2p nodes on 127.0.0.1, real temp
 * folders, nothing of dstore mocked. Hostile peers (a lying Global, a client sending garbage)
 * are plain libp2p nodes built with the same `createNode` and protocol encoders.
 */
import { strict as assert } from 'node:assert'
import { getEventListeners } from 'node:events'
import { Readable } from 'node:stream'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import {
  cidOfBytes, createFsStore, createGlobal, createLocal,
  type GlobalPeer, type LocalPeer, type CID
} from '../src/index.js'
import { encodeRangeSync, outboard as makeOutboard } from '../src/core/bao/index.js'
import type { DstoreNode } from '../src/peers/node.js'
import { BLOB_PROTOCOL, BLOB_WINDOW, INLINE_MAX, KIND, MAX_BATCH, MAX_FRAME, RESPONSE, RPC_PROTOCOL } from '../src/protocol/constants.js'
import { FrameReader, framePrefix, writeFrame, writeRaw } from '../src/protocol/framing.js'
import {
  MessageReader, U64_NONE, decodeDigests, decodeGet, encodeBlobGetResponse, encodeGet,
  encodeGetInline, encodeGetUseBlob, encodeStat, encodeStatResponse, reportBody
} from '../src/protocol/messages.js'
import { RpcChannel } from '../src/protocol/rpc.js'
import { RECHECKS_PER_MINUTE } from '../src/peers/recheck-budget.js'
import { collect, hex, pseudoRandom } from './helpers.js'
import { Cleanup, KiB, MiB, assertBytes, chunked, errorOf, nextFrame, portOf, rejectsWith, waitFor } from './net.js'

// ---- tests ----------------------------------------------------------------------------------

describe('network (Global and Local peers over libp2p)', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  let repo: string
  let global: GlobalPeer
  let a: LocalPeer
  let b: LocalPeer

  before(async () => {
    repo = await c.dir()
    global = await c.global(repo)
    a = await c.local(global)
    b = await c.local(global)
    await Promise.all([a.ready(), b.ready()])
  })

  after(async () => { await c.run() })

  describe('put and get', () => {
    const sizes = [0, 1, 1023, 16383, 16384, 16385, INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1, MiB + 7, 5 * MiB + 3, 64 * MiB]
    for (const [i, size] of sizes.entries()) {
      it(`round-trips ${size} bytes put as bytes on one Local and fetched by another`, async function () {
        if (size >= 64 * MiB) this.timeout(60_000)
        const data = pseudoRandom(size, 100 + i)
        const cid = await a.put(data)
        assert.ok(cid.equals(cidOfBytes(data)))
        assert.equal(await b.cache.has(cid), false)
        const got = await b.get(cid)
        assertBytes(got, data)
        assert.ok(await global.has(cid))
      })
    }

    for (const [i, size] of [0, 16385, INLINE_MAX + 1, MiB + 7, 5 * MiB + 3].entries()) {
      it(`round-trips ${size} bytes put as an async iterable`, async () => {
        const data = pseudoRandom(size, 200 + i)
        const cid = await a.put(chunked(data, 10_000))
        assert.ok(cid.equals(cidOfBytes(data)))
        assertBytes(await b.get(cid), data)
      })

      it(`round-trips ${size} bytes put as a Node Readable`, async () => {
        const data = pseudoRandom(size, 300 + i)
        const pieces: Buffer[] = []
        for (let o = 0; o < data.length; o += 65_536) pieces.push(Buffer.from(data.subarray(o, o + 65_536)))
        const cid = await a.put(Readable.from(pieces))
        assert.ok(cid.equals(cidOfBytes(data)))
        assertBytes(await b.get(cid), data)
      })
    }

    it('rejects a put whose source fails with that error, stores nothing, and keeps working', async () => {
      const data = pseudoRandom(3 * MiB, 390)
      class SourceFailed extends Error { override name = 'SourceFailed' }
      async function * failing (): AsyncGenerator<Uint8Array> {
        yield data.subarray(0, 2 * MiB)
        throw new SourceFailed('disk on fire')
      }
      await rejectsWith(a.put(failing()), 'SourceFailed')
      assert.equal(await global.has(cidOfBytes(data)), false)
      assert.equal(await global.has(cidOfBytes(data.subarray(0, 2 * MiB))), false, 'the prefix was not stored as a value')
      assertBytes(await b.get(await a.put(data)), data)
    })

    it('puts a value streamed from a reused buffer correctly', async () => {
      const data = pseudoRandom(MiB + 11, 399)
      const buf = new Uint8Array(50_000)
      async function * reuse (): AsyncGenerator<Uint8Array> {
        for (let o = 0; o < data.length; o += buf.length) {
          const n = Math.min(buf.length, data.length - o)
          buf.set(data.subarray(o, o + n))
          yield buf.subarray(0, n)
        }
      }
      const cid = await a.put(reuse())
      assert.ok(cid.equals(cidOfBytes(data)))
      assertBytes(await b.get(cid), data)
    })
  })

  describe('cat', () => {
    const size = MiB + 7
    const data = pseudoRandom(size, 400)
    let cid: CID
    let fresh: LocalPeer

    before(async () => {
      cid = await a.put(data) // cached on a
      fresh = await c.local(global)
    })

    const ranges: Array<[string, number, number | undefined]> = [
      ['the start', 0, 100],
      ['the middle across group boundaries', 16_000, 40_000],
      ['a large range streamed on a blob stream', 100, 600_000],
      ['the end', size - 10, 10],
      ['zero bytes', 12_345, 0],
      ['zero bytes at the end', size, 0],
      ['to the end', 300_001, undefined],
      ['a length past the end (clipped)', size - 5, 1000]
    ]
    for (const [what, offset, length] of ranges) {
      it(`returns ${what} of a value a Local has not cached`, async () => {
        const got = await collect(fresh.cat(cid, { offset, length }))
        assertBytes(got, data.subarray(offset, length === undefined ? undefined : offset + length))
        assert.equal(await fresh.cache.has(cid), false, 'a range is not cached')
      })

      it(`returns ${what} of a cached value`, async () => {
        assert.ok(await a.cache.has(cid))
        const got = await collect(a.cat(cid, { offset, length }))
        assertBytes(got, data.subarray(offset, length === undefined ? undefined : offset + length))
      })
    }

    it('rejects a range past the end with OutOfRangeError, cached or not', async () => {
      await rejectsWith(collect(fresh.cat(cid, { offset: size + 1 })), 'OutOfRangeError')
      await rejectsWith(collect(a.cat(cid, { offset: size + 1 })), 'OutOfRangeError')
    })

    for (const [what, offset, length] of [['a negative offset', -1, 10], ['a fractional offset', 1.5, 10], ['a negative length', 0, -1], ['a fractional length', 0, 2.5]] as Array<[string, number, number]>) {
      it(`rejects ${what} with OutOfRangeError, cached or not`, async () => {
        await rejectsWith(collect(fresh.cat(cid, { offset, length })), 'OutOfRangeError')
        await rejectsWith(collect(a.cat(cid, { offset, length })), 'OutOfRangeError')
      })
    }
  })

  describe('cache', () => {
    it('hands every caller the cached array itself, not a copy (read-only contract): cold, concurrent and warm gets return one array', async () => {
      const data = pseudoRandom(300_000, 1002)
      const cid = await a.put(data)
      const [first, concurrent] = await Promise.all([b.get(cid), b.get(cid)])
      assertBytes(first, data)
      assert.equal(concurrent, first, 'a get joining the transfer gets the same array')
      const warm = await b.get(cid)
      assert.equal(warm, first, 'a warm get returns the array the cold one did')
      assert.equal(await b.get(cid), warm, 'and so does the next')
      // The documented way to modify a value: a private copy, which leaves the cache as it was.
      const mine = warm.slice()
      mine.fill(0)
      assertBytes(await b.get(cid), data)
    })

    it('answers a warm get from the cache without any network request', async () => {
      const data = pseudoRandom(300 * KiB, 500)
      const cid = await a.put(data)
      assertBytes(await b.get(cid), data)
      const before = b.stats()
      const globalBefore = global.stats()
      assertBytes(await b.get(cid), data)
      const after = b.stats()
      assert.equal(after.hits, before.hits + 1)
      assert.equal(after.misses, before.misses)
      assert.equal(after.bytesIn, before.bytesIn)
      assert.equal(after.bytesOut, before.bytesOut)
      assert.equal(global.stats().bytesOut, globalBefore.bytesOut)
    })

    it('returns the cached array itself after a put, with the put\'s bytes (not the caller\'s array, which it may reuse)', async () => {
      const data = pseudoRandom(1000, 501)
      const cid = await a.put(data)
      const got = await a.get(cid)
      assert.notEqual(got, data, 'the cache keeps its own copy of a put')
      assert.equal(await a.get(cid), got, 'gets share the cached array')
      data.fill(0) // the putter reusing its buffer changes nothing cached
      assertBytes(await a.get(cid), pseudoRandom(1000, 501))
    })

    it('evicts the least recently used value under a small budget and fetches it again from Global', async () => {
      const small = await c.local(global, { cacheSize: MiB })
      const values = [0, 1, 2].map(i => pseudoRandom(400 * KiB, 510 + i))
      const cids = await Promise.all(values.map(async v => await global.put(v)))
      assertBytes(await small.get(cids[0]), values[0])
      assertBytes(await small.get(cids[1]), values[1])
      const s1 = small.stats()
      assert.equal(s1.evictions, 0)
      assertBytes(await small.get(cids[2]), values[2])
      const s2 = small.stats()
      assert.ok(s2.evictions > s1.evictions, 'evictions grows')
      assert.ok(s2.cacheBytes <= MiB)
      assert.equal(await small.cache.has(cids[0]), false, 'the oldest value was evicted')
      assert.ok(await small.cache.has(cids[2]))
      assertBytes(await small.get(cids[0]), values[0])
      const s3 = small.stats()
      assert.equal(s3.misses, s2.misses + 1)
      assert.ok(s3.bytesIn > s2.bytesIn + 400 * KiB - 1)
    })

    it('returns a value larger than the cache budget without caching it', async () => {
      const data = pseudoRandom(2 * MiB, 530)
      const cid = await global.put(data)
      const small = await c.local(global, { cacheSize: MiB })
      assertBytes(await small.get(cid), data)
      assert.equal(await small.cache.has(cid), false)
      assert.equal(small.stats().cacheBytes, 0)
      // A put larger than the budget works too.
      const data2 = pseudoRandom(2 * MiB, 531)
      assert.ok((await small.put(data2)).equals(cidOfBytes(data2)))
      assert.ok(await global.has(cidOfBytes(data2)))
    })

    it('fetches a value once for concurrent gets of it', async () => {
      const data = pseudoRandom(2 * MiB, 520)
      const cid = await global.put(data)
      const l = await c.local(global)
      const got = await Promise.all([l.get(cid), l.get(cid), l.get(cid)])
      for (const g of got) assertBytes(g, data)
      assert.ok(l.stats().bytesIn < 3 * MiB, 'fetched once')
    })
  })

  describe('delete', () => {
    it('removes the value from every connected Local before it resolves', async () => {
      const locals = [a, b, await c.local(global)]
      await locals[2].ready()
      const data = pseudoRandom(100 * KiB, 600)
      const cid = await global.put(data)
      for (const l of locals) assertBytes(await l.get(cid), data)
      for (const l of locals) assert.ok(await l.cache.has(cid))
      const before = locals.map(l => l.stats().invalidations)
      assert.equal(await locals[0].delete(cid), true)
      for (const [i, l] of locals.entries()) {
        assert.equal(await l.cache.has(cid), false, `Local ${i} still holds it`)
        assert.equal(l.stats().invalidations, before[i] + 1)
      }
      assert.equal(await global.has(cid), false)
      for (const l of locals) await rejectsWith(l.get(cid), 'NotFoundError')
      assert.equal(await locals[1].delete(cid), false, 'a second delete finds nothing')
    })

    it('does not let a get that races with a delete leave the deleted value cached', async () => {
      const data = pseudoRandom(16 * MiB, 602)
      const cid = await global.put(data)
      const l = await c.local(global)
      let deleting: Promise<boolean> | undefined
      const get = l.get(cid, { onProgress: (e) => { if (deleting == null && e.bytes >= MiB) deleting = a.delete(cid) } })
      const outcome = await get.then(v => v, (err: Error) => err)
      assert.ok(deleting != null)
      assert.equal(await deleting, true)
      if (outcome instanceof Error) assert.equal(outcome.name, 'NotFoundError')
      else assertBytes(outcome, data)
      assert.equal(await l.cache.has(cid), false)
      await rejectsWith(l.get(cid), 'NotFoundError')
    })

    it('removes the value from every Local when Global deletes it itself', async () => {
      const data = pseudoRandom(5000, 601)
      const cid = await global.put(data)
      assertBytes(await a.get(cid), data)
      assertBytes(await b.get(cid), data)
      assert.equal(await global.delete(cid), true)
      assert.equal(await a.cache.has(cid), false)
      assert.equal(await b.cache.has(cid), false)
    })
  })

  describe('errors', () => {
    it('rejects a get of a value Global does not have with NotFoundError', async () => {
      await rejectsWith(a.get(cidOfBytes(pseudoRandom(77, 700))), 'NotFoundError')
      await rejectsWith(a.stat(cidOfBytes(pseudoRandom(77, 700))), 'NotFoundError')
      assert.equal(await a.has(cidOfBytes(pseudoRandom(77, 700))), false)
    })

    it('rejects a malformed key with InvalidCIDError', async () => {
      await rejectsWith(a.get('not-a-cid'), 'InvalidCIDError')
      await rejectsWith(collect(a.cat('not-a-cid')), 'InvalidCIDError')
      await rejectsWith(a.delete('not-a-cid'), 'InvalidCIDError')
    })

    it('pages through LIST and batches STAT beyond MAX_BATCH entries', async function () {
      this.timeout(30_000)
      const g = await c.global(await c.dir())
      const l = await c.local(g)
      const cids: CID[] = []
      for (let i = 0; i < MAX_BATCH + 200; i += 500) {
        cids.push(...await Promise.all(Array.from({ length: Math.min(500, MAX_BATCH + 200 - i) }, async (_, j) => {
          const v = new Uint8Array(8)
          new DataView(v.buffer).setUint32(0, i + j)
          return await g.put(v)
        })))
      }
      const listed = new Set<string>()
      for await (const e of l.list()) {
        assert.equal(listed.has(e.cid.toString()), false, 'listed twice')
        listed.add(e.cid.toString())
        assert.equal(e.size, 8)
      }
      assert.equal(listed.size, cids.length)
      const absent = Array.from({ length: 10 }, (_, i) => cidOfBytes(pseudoRandom(9, 710 + i)))
      const missing = await l.missing([...cids, ...absent])
      assert.deepEqual(missing.map(m => m.toString()), absent.map(m => m.toString()))
    })

    it('rejects calls on a stopped Local with ClosedError, also calls waiting for a connection', async () => {
      const dead = await c.global(await c.dir())
      const addrs = dead.multiaddrs
      await dead.stop()
      const l = await createLocal({ global: addrs, connectTimeout: 20_000 })
      const waiting = l.get(cidOfBytes(pseudoRandom(10, 720)))
      waiting.catch(() => {})
      await new Promise(resolve => setTimeout(resolve, 200))
      const started = Date.now()
      await l.stop()
      await rejectsWith(waiting, 'ClosedError')
      assert.ok(Date.now() - started < 5000)
      await rejectsWith(l.get(cidOfBytes(pseudoRandom(10, 720))), 'ClosedError')
    })

    it('rejects ready() with GlobalUnreachableError when nothing listens at the address', async () => {
      const dead = await c.global(await c.dir())
      const addrs = dead.multiaddrs
      await dead.stop()
      const l = await c.local(addrs, { connectTimeout: 500 })
      await rejectsWith(l.ready(), 'GlobalUnreachableError')
      assert.equal(l.stats().connected, false)
    })

    it('answers has, stat, missing and list from Global', async () => {
      const data = pseudoRandom(3000, 701)
      const cid = await global.put(data)
      const absent = cidOfBytes(pseudoRandom(3000, 702))
      assert.equal(await b.has(cid), true)
      assert.deepEqual(await b.stat(cid), { cid, size: 3000, cached: false })
      const missing = await b.missing([cid, absent])
      assert.equal(missing.length, 1)
      assert.ok(missing[0].equals(absent))
      const listed: string[] = []
      for await (const e of b.list()) listed.push(e.cid.toString())
      assert.ok(listed.includes(cid.toString()))
      assert.equal(listed.length, new Set(listed).size)
    })
  })

  describe('put dedupe', () => {
    it('sends no data when Global already holds the value', async () => {
      for (const size of [1000, 2 * MiB]) {
        const data = pseudoRandom(size, 800 + size)
        await a.put(data)
        const gBefore = global.stats().bytesIn
        const bBefore = b.stats().bytesOut
        const events: string[] = []
        const cid = await b.put(data, { onProgress: e => events.push(e.type) })
        assert.ok(cid.equals(cidOfBytes(data)))
        assert.equal(global.stats().bytesIn, gBefore)
        assert.equal(b.stats().bytesOut, bBefore)
        assert.deepEqual(events, ['blob:put:deduplicated'])
      }
    })
  })

  describe('abort', () => {
    let bigCid: CID
    const big = pseudoRandom(16 * MiB, 900)

    before(async () => { bigCid = await global.put(big) })

    it('rejects a get and a put with an already-aborted signal with AbortError', async () => {
      const l = await c.local(global)
      const signal = AbortSignal.abort()
      await rejectsWith(l.get(bigCid, { signal }), 'AbortError')
      await rejectsWith(l.put(pseudoRandom(1000, 901), { signal }), 'AbortError')
      await rejectsWith(l.put(pseudoRandom(2 * MiB, 902), { signal }), 'AbortError')
      await rejectsWith(collect(l.cat(bigCid, { signal, offset: 5 })), 'AbortError')
      assert.equal(await l.cache.has(bigCid), false)
      assert.equal(await global.has(cidOfBytes(pseudoRandom(2 * MiB, 902))), false)
    })

    it('rejects a get aborted mid-transfer with AbortError, caches nothing, and keeps working', async () => {
      const l = await c.local(global)
      const ac = new AbortController()
      let seen = 0
      await rejectsWith(l.get(bigCid, {
        signal: ac.signal,
        onProgress: (e) => { seen = e.bytes; if (e.bytes >= MiB) ac.abort() }
      }), 'AbortError')
      assert.ok(seen > 0 && seen < big.length)
      assert.equal(await l.cache.has(bigCid), false)
      assertBytes(await l.get(bigCid), big)
    })

    it('rejects a put aborted mid-transfer with AbortError, and Global stores nothing', async () => {
      const l = await c.local(global)
      const data = pseudoRandom(8 * MiB, 903)
      const ac = new AbortController()
      await rejectsWith(l.put(data, {
        signal: ac.signal,
        onProgress: (e) => { if (e.type === 'blob:put:sent' && e.bytes >= MiB) ac.abort() }
      }), 'AbortError')
      const ac2 = new AbortController()
      await rejectsWith(l.put(chunked(data, 100_000), {
        signal: ac2.signal,
        onProgress: (e) => { if (e.bytes >= MiB) ac2.abort() }
      }), 'AbortError')
      await waitFor(async () => !(await global.has(cidOfBytes(data))), 2000, 'no partial value')
      assert.equal(await global.has(cidOfBytes(data)), false)
      const cid = await l.put(data)
      assertBytes(await b.get(cid), data)
    })

    it('leaves no abort listener behind on a long-lived signal once each get, get into, cat and put settles', async () => {
      // One signal for every call, as the CLI's and the bench roles' are: a listener left per call
      // would add up (MaxListenersExceededWarning past 10, and each one kept reachable).
      const l = await c.local(global)
      const data = pseudoRandom(MiB + 3, 904) // past INLINE_MAX: a blob stream each time
      const cid = await global.put(data)
      const { signal } = new AbortController()
      const into = new Uint8Array(data.length)
      let puts = 0
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['get (a miss)', async () => { await l.cache.delete(cid); await l.get(cid, { signal }) }],
        ['get (a hit)', async () => await l.get(cid, { signal })],
        ['get into (a hit)', async () => await l.get(cid, { signal, into })],
        ['get into (fetched)', async () => { await l.cache.delete(cid); await l.get(cid, { signal, into }) }],
        ['cat', async () => { for await (const _ of l.cat(cid, { signal })) {} }],
        ['cat with fill', async () => { for await (const _ of l.cat(cid, { signal, fill: true })) {} }],
        // A new value each time, past INLINE_MAX: sent on a blob stream, which libp2p's close waited on with the signal.
        ['put', async () => { await l.put(pseudoRandom(MiB + 3, 10_000 + puts++), { signal }) }]
      ]
      for (const [, call] of calls) await call()
      // Nothing stays: onAbort's one listener per signal goes with the last wait on it (src/core/abort.ts).
      const baseline = getEventListeners(signal, 'abort').length
      assert.equal(baseline, 0, `${baseline} listeners after one round`)
      for (let i = 0; i < 50; i++) {
        for (const [what, call] of calls) {
          await call()
          assert.equal(getEventListeners(signal, 'abort').length, baseline, `listeners after ${what}, round ${i}`)
        }
      }
      // Abandoned early, a transfer leaves the blob stream it was opening for the rest, which is
      // released (with its listener) once open: gone shortly after, not piling up.
      for (let i = 0; i < 20; i++) {
        for await (const _ of l.cat(cid, { signal })) break
        await l.cache.delete(cid)
        await rejectsWith(l.get(cid, { signal, into: new Uint8Array(10) }), 'TooLargeError')
      }
      await waitFor(() => getEventListeners(signal, 'abort').length === baseline, 2000, 'the listeners of abandoned transfers to go')
    })
    it('holds at most one abort listener on a signal shared by 48 gets, gets into and cats in flight at once (no MaxListenersExceededWarning)', async () => {
      const l = await c.local(global)
      const values = Array.from({ length: 16 }, (_, i) => pseudoRandom(MiB + 5 + i, 905 + i))
      const cids = await Promise.all(values.map(async v => await global.put(v)))
      const { signal } = new AbortController()
      let peak = 0
      let running = true
      const sampling = (async () => {
        while (running) {
          peak = Math.max(peak, getEventListeners(signal, 'abort').length)
          await new Promise(resolve => setImmediate(resolve))
        }
      })()
      const warnings: Error[] = []
      const onWarning = (w: Error): void => { if (w.name === 'MaxListenersExceededWarning') warnings.push(w) }
      process.on('warning', onWarning)
      try {
        await Promise.all(cids.flatMap((cid, i) => [
          (async () => { assertBytes(await collect(l.cat(cid, { signal })), values[i], 'cat') })(),
          (async () => { const into = new Uint8Array(values[i].length); await l.get(cid, { signal, into }); assertBytes(into, values[i], 'get into') })(),
          (async () => { assertBytes(await l.get(cid, { signal }), values[i], 'get') })()
        ]))
      } finally {
        running = false
        await sampling
        process.off('warning', onWarning)
      }
      assert.ok(peak <= 1, `${peak} abort listeners on the shared signal at once`)
      assert.deepEqual(warnings.map(w => w.message), [])
    })
  })

  describe('concurrent gets and aborts', () => {
    it('does not fail a get because a concurrent get of the same value was aborted', async () => {
      const data = pseudoRandom(8 * MiB, 950)
      const cid = await global.put(data)
      const l = await c.local(global)
      const ac = new AbortController()
      const first = l.get(cid, { signal: ac.signal, onProgress: (e) => { if (e.bytes >= MiB) ac.abort() } })
      const second = l.get(cid)
      await rejectsWith(first, 'AbortError')
      assertBytes(await second, data)
      assert.ok(await l.cache.has(cid))
    })

    it('rejects an aborted get with AbortError even while another get of the same value runs', async () => {
      const data = pseudoRandom(8 * MiB, 951)
      const cid = await global.put(data)
      const l = await c.local(global)
      const first = l.get(cid)
      const ac = new AbortController()
      const second = l.get(cid, { signal: ac.signal })
      ac.abort()
      await rejectsWith(second, 'AbortError')
      assertBytes(await first, data)
      await rejectsWith(l.get(cidOfBytes(pseudoRandom(10, 952)), { signal: AbortSignal.abort() }), 'AbortError')
    })
  })

  describe('progress', () => {
    it('reports increasing bytes ending at the total for a large put and get', async () => {
      const data = pseudoRandom(5 * MiB + 1, 1000)
      const check = (events: Array<{ bytes: number, total?: number }>): void => {
        assert.ok(events.length > 1)
        for (let i = 1; i < events.length; i++) assert.ok(events[i].bytes > events[i - 1].bytes, 'increasing')
        assert.equal(events[events.length - 1].bytes, data.length)
        for (const e of events) assert.equal(e.total, data.length)
      }
      const putEvents: Array<{ bytes: number, total?: number }> = []
      const cid = await a.put(data, { onProgress: e => putEvents.push(e) })
      check(putEvents)
      const getEvents: Array<{ bytes: number, total?: number }> = []
      assertBytes(await b.get(cid, { onProgress: e => getEvents.push(e) }), data)
      check(getEvents)
    })
  })

  describe('flow control', () => {
    it('keeps Global at most one credit window ahead of a slow consumer of cat', async () => {
      const data = pseudoRandom(40 * MiB, 1001)
      const cid = await a.put(data)
      // Let the rpc and put traffic settle, then watch Global's outgoing byte count during the cat.
      const before = global.stats().bytesOut
      let consumed = 0
      let maxLead = 0
      let nextPause = 0
      for await (const part of b.cat(cid)) {
        consumed += part.length
        if (consumed > 10 * MiB) break
        if (consumed < nextPause) continue
        // A slow consumer (50 ms per MiB): without flow control Global sends the whole 40 MiB meanwhile.
        nextPause = consumed + MiB
        await new Promise(resolve => setTimeout(resolve, 50))
        maxLead = Math.max(maxLead, global.stats().bytesOut - before - consumed)
      }
      // One window (8 MiB), plus what the encoder and the decoder each hold in flight (1 MiB batches).
      assert.ok(maxLead <= BLOB_WINDOW + 3 * MiB, `Global ran ${(maxLead / MiB).toFixed(1)} MiB ahead of the consumer`)
      assert.ok(global.stats().bytesOut - before < 30 * MiB, 'Global did not send the whole value to a consumer that stopped early')
    })
  })

  describe('abandoned and stale transfers', () => {
    it('closes the blob stream when the consumer of cat stops early', async () => {
      const data = pseudoRandom(20 * MiB, 1301)
      const cid = await a.put(data)
      const blobStreams = (): number => b.node.getConnections()
        .flatMap(conn => conn.streams).filter(s => s.protocol === BLOB_PROTOCOL && s.status === 'open').length
      for await (const part of b.cat(cid)) { assert.ok(part.length > 0); break }
      // Not left open until Global's 30 s watchdog gives up on it.
      await waitFor(() => blobStreams() === 0, 3_000, 'the abandoned blob stream to close')
    })

    it('does not cache a fetch whose rpc channel broke meanwhile (an EVICT may have been missed)', async () => {
      const data = pseudoRandom(24 * MiB, 1302)
      const cid = await a.put(data)
      const l = await c.local(global)
      await l.ready()
      let cut = false
      const value = await l.get(cid, {
        // Once the blob stream is under way (the start of the value comes inline with the answer).
        onProgress: (e) => {
          if (cut || e.bytes < 4 * MiB) return
          cut = true
          // Global drops the value without reaching this Local (as when its channel is reset
          // after an unconfirmed eviction); the blob transfer itself goes on.
          for (const link of (global as any).links) {
            if (link.connection.remotePeer.toString() === l.peerId) link.channel.abort(new Error('test: channel reset'))
          }
          void global.store.delete(cid)
        }
      })
      assertBytes(value, data)
      assert.equal(await l.cache.has(cid), false, 'a value fetched across a broken channel was cached')
      await waitFor(() => l.connected, 10_000, 'reconnection')
      await rejectsWith(l.get(cid), 'NotFoundError')
    })
  })

  describe('a Local that stops granting credit', () => {
    it('makes Global end the GET instead of waiting forever for credit', async () => {
      const data = pseudoRandom(12 * MiB, 1303)
      const cid = await a.put(data)
      const client = await c.node()
      const stream = await client.dialProtocol(multiaddr(global.multiaddrs[0]), BLOB_PROTOCOL)
      await writeFrame(stream, encodeGet(0, { digest: cid.multihash.digest, offset: 0, length: U64_NONE, inline: false }))
      // Our side is closed without any CREDIT: Global can never send past the first window.
      await stream.close()
      let received = 0
      let ended = false
      void (async () => {
        try { for await (const piece of stream) received += piece.byteLength } catch {}
        ended = true
      })()
      await waitFor(() => ended, 5_000, 'Global to end a GET that can get no more credit')
      assert.ok(received < data.length, 'Global sent past the credit window')
    })
  })

  describe('identity files', () => {
    it('writes global.key and local.key with mode 0600 and global.addr with the multiaddrs', async () => {
      assert.equal((await stat(join(repo, 'global.key'))).mode & 0o777, 0o600)
      const lrepo = await c.dir()
      const l = await c.local(global, { repo: lrepo })
      assert.equal((await stat(join(lrepo, 'local.key'))).mode & 0o777, 0o600)
      const l2 = await c.local(global, { repo: lrepo })
      assert.equal(l2.peerId, l.peerId, 'a Local with a repo keeps its identity')
      const lines = (await readFile(global.addrFile, 'utf8')).split('\n').filter(s => s !== '')
      assert.deepEqual(lines, global.multiaddrs)
      assert.ok(lines.every(s => s.endsWith(`/p2p/${global.peerId}`)))
    })
  })

  describe('a corrupt disk on Global', () => {
    for (const size of [200 * KiB, 3 * MiB]) {
      it(`makes a Local's get of a ${size}-byte value fail with VerificationError and caches nothing`, async () => {
        const data = pseudoRandom(size, 1100 + size)
        const cid = await global.put(data)
        const digest = hex(cid.multihash.digest)
        const file = join(repo, 'store', 'blobs', digest.slice(0, 2), digest)
        const bytes = await readFile(file)
        assert.equal(bytes.length, size)
        bytes[Math.floor(size / 2)] ^= 0x01
        await writeFile(file, bytes)
        const l = await c.local(global)
        await rejectsWith(l.get(cid), 'VerificationError')
        assert.equal(await l.cache.has(cid), false)
        assert.equal(l.stats().cacheEntries, 0)
        // The rest of the value still verifies: a range before the bad group is served.
        assertBytes(await collect(l.cat(cid, { offset: 0, length: 1000 })), data.subarray(0, 1000))
        await global.delete(cid)
      })
    }
  })

  describe('a Local that finds a value corrupt (REPORT)', () => {
    it('makes Global re-check its copy, also for a value answered inline on the rpc channel', async () => {
      const size = 200 * KiB // answered inline: no blob stream is reset, so only the REPORT tells Global
      const data = pseudoRandom(size, 1150)
      const cid = await global.put(data)
      const digest = hex(cid.multihash.digest)
      const file = join(repo, 'store', 'blobs', digest.slice(0, 2), digest)
      const bytes = await readFile(file)
      bytes[150 * KiB] ^= 0x04
      await writeFile(file, bytes)
      const before = global.stats().rechecksFailed
      const l = await c.local(global)
      await rejectsWith(l.get(cid), 'VerificationError')
      await waitFor(() => global.stats().rechecksFailed > before, 5_000, 'Global to re-check the reported value and find it corrupt')
      await global.delete(cid)
    })

    it('re-checks at most RECHECKS_PER_MINUTE reports a minute from one peer; another peer is still heard', async () => {
      const data = pseudoRandom(2 * MiB, 1151)
      const cid = await global.put(data)
      const channelOf = async (): Promise<RpcChannel> => {
        const node = await c.node()
        const stream = await node.dialProtocol(multiaddr(global.multiaddrs[0]), RPC_PROTOCOL)
        return new RpcChannel(stream, async () => { throw new Error('no requests expected') })
      }
      const report = (ch: RpcChannel, i: number): Promise<unknown> =>
        ch.request(KIND.REPORT, reportBody({ digest: cid.multihash.digest, offset: (i % 32) * 64 * KiB, length: 64 * KiB }))
      const hostile = await channelOf()
      const before = global.stats().rechecks
      // Distinct ranges, paced so the bounded queue never drops one: only the budget limits.
      for (let i = 0; i < 3 * RECHECKS_PER_MINUTE; i++) {
        await report(hostile, i)
        await waitFor(() => global.stats().rechecksPending === 0, 5_000, 'the re-check queue to drain')
      }
      assert.equal(global.stats().rechecks - before, RECHECKS_PER_MINUTE, 'one peer causes at most its budget of re-checks')
      const other = await channelOf()
      await report(other, 0)
      await waitFor(() => global.stats().rechecks - before === RECHECKS_PER_MINUTE + 1, 5_000, 'another peer\'s report to be re-checked')
      await global.delete(cid)
    })
  })

  describe('malformed requests to Global', () => {
    let client: DstoreNode

    before(async () => { client = await c.node() })

    async function rpc (): Promise<{ stream: Stream, reader: FrameReader }> {
      const stream = await client.dialProtocol(multiaddr(global.multiaddrs[0]), RPC_PROTOCOL)
      return { stream, reader: new FrameReader(stream, MAX_FRAME) }
    }

    it('answers a body that is shorter than its count with ERR_PROTOCOL and keeps the channel', async () => {
      const { stream, reader } = await rpc()
      await writeFrame(stream, Uint8Array.of(KIND.STAT, 0, 0, 0, 7, 0, 5, 1, 2, 3))
      assert.deepEqual(errorOf(await reader.next()), { id: 7, code: 'ERR_PROTOCOL' })
      await writeFrame(stream, encodeStat(8, [new Uint8Array(32)]))
      const ok = new MessageReader((await reader.next())!)
      assert.equal(ok.kind, KIND.STAT | RESPONSE)
      assert.equal(ok.id, 8)
      await stream.close()
    })

    it('answers trailing bytes, an unknown kind and an out-of-range u64 with ERR_PROTOCOL', async () => {
      const { stream, reader } = await rpc()
      await writeFrame(stream, Uint8Array.of(...encodeStat(9, [new Uint8Array(32)]), 0xee))
      assert.deepEqual(errorOf(await reader.next()), { id: 9, code: 'ERR_PROTOCOL' })
      await writeFrame(stream, Uint8Array.of(0x33, 0, 0, 0, 10))
      assert.deepEqual(errorOf(await reader.next()), { id: 10, code: 'ERR_PROTOCOL' })
      const get = encodeGet(11, { digest: new Uint8Array(32), offset: 0, length: 0, inline: true })
      get[5 + 32] = 0x7f // offset above 2^53
      await writeFrame(stream, get)
      assert.deepEqual(errorOf(await reader.next()), { id: 11, code: 'ERR_PROTOCOL' })
      // An answer-kind frame nobody asked for is ignored.
      await writeFrame(stream, Uint8Array.of(KIND.STAT | RESPONSE, 0, 0, 0, 99))
      await writeFrame(stream, encodeStat(12, []))
      const ok = new MessageReader((await reader.next())!)
      assert.equal(ok.kind, KIND.STAT | RESPONSE)
      assert.equal(ok.id, 12)
      await stream.close()
    })

    it('answers a frame shorter than the header with ERR_PROTOCOL (id 0) and resets the stream', async () => {
      const { stream, reader } = await rpc()
      await writeFrame(stream, Uint8Array.of(KIND.STAT, 0, 0))
      assert.deepEqual(errorOf(await nextFrame(reader)), { id: 0, code: 'ERR_PROTOCOL' })
      assert.equal(await nextFrame(reader), undefined)
    })

    it('answers a frame length above MAX_FRAME with ERR_PROTOCOL (id 0) and resets the stream', async () => {
      const { stream, reader } = await rpc()
      stream.send(framePrefix(MAX_FRAME + 1))
      assert.deepEqual(errorOf(await nextFrame(reader)), { id: 0, code: 'ERR_PROTOCOL' })
      assert.equal(await nextFrame(reader), undefined)
    })

    it('answers a garbage or truncated blob stream head with ERR_PROTOCOL', async () => {
      for (const head of [Uint8Array.of(0x42, 0, 0, 0, 0, 1, 2), Uint8Array.of(KIND.GET, 0, 0, 0, 0, 1, 2), Uint8Array.of(1, 2)]) {
        const stream = await client.dialProtocol(multiaddr(global.multiaddrs[0]), BLOB_PROTOCOL)
        const reader = new FrameReader(stream, MAX_FRAME)
        await writeFrame(stream, head)
        await stream.close()
        const frame = await nextFrame(reader)
        // A frame shorter than the header cannot even be parsed as a message: a reset is fine too.
        if (frame !== undefined || head.length >= 5) assert.deepEqual(errorOf(frame), { id: 0, code: 'ERR_PROTOCOL' })
      }
    })

    it('answers a blob GET of a value it does not have with ERR_NOT_FOUND', async () => {
      const stream = await client.dialProtocol(multiaddr(global.multiaddrs[0]), BLOB_PROTOCOL)
      const reader = new FrameReader(stream, MAX_FRAME)
      await writeFrame(stream, encodeGet(0, { digest: new Uint8Array(32).fill(3), offset: 0, length: U64_NONE, inline: false }))
      await stream.close()
      assert.equal(errorOf(await nextFrame(reader)).code, 'ERR_NOT_FOUND')
    })

    it('keeps serving well-behaved Locals during and after the garbage', async () => {
      const junk = (async () => {
        for (let i = 0; i < 20; i++) {
          const { stream, reader } = await rpc()
          await writeFrame(stream, Uint8Array.of(KIND.GET, 0, 0, 0, 1, 9))
          await nextFrame(reader)
          stream.send(framePrefix(MAX_FRAME + 1))
          await nextFrame(reader)
        }
      })()
      const data = pseudoRandom(2 * MiB + 3, 1200)
      const cid = await a.put(data)
      assertBytes(await b.get(cid), data)
      await junk
      const small = pseudoRandom(100, 1201)
      assertBytes(await b.get(await a.put(small)), small)
    })
  })
})

describe('network: Global limits', function () {
  this.timeout(30_000)
  const c = new Cleanup()
  let global: GlobalPeer

  before(async () => {
    global = await createGlobal({ repo: await c.dir(), sync: false, evictTimeout: 300, maxBlobSize: MiB })
    c.add(async () => { await global.stop() })
  })

  after(async () => { await c.run() })

  it('refuses values above maxBlobSize with TooLargeError, inline or streamed', async () => {
    const l = await c.local(global)
    const big = pseudoRandom(MiB + 1, 1700)
    await rejectsWith(l.put(big), 'TooLargeError')
    await rejectsWith(l.put(chunked(big, 100_000)), 'TooLargeError')
    const inline = await createGlobal({ repo: await c.dir(), sync: false, maxBlobSize: 1000 })
    c.add(async () => { await inline.stop() })
    const l2 = await c.local(inline)
    await rejectsWith(l2.put(pseudoRandom(1001, 1701)), 'TooLargeError')
    assert.ok((await l2.put(pseudoRandom(1000, 1702))).equals(cidOfBytes(pseudoRandom(1000, 1702))))
    assertBytes(await l.get(await l.put(pseudoRandom(MiB, 1703))), pseudoRandom(MiB, 1703))
  })

  it('resolves a delete after evictTimeout when a Local never confirms the eviction, and resets that Local', async () => {
    const l = await c.local(global)
    const data = pseudoRandom(1000, 1710)
    const cid = await l.put(data)
    const honest = global.stats().locals
    // A peer that opens an rpc channel and never answers Global's requests.
    const mute = await c.node()
    const stream = await mute.dialProtocol(multiaddr(global.multiaddrs[0]), RPC_PROTOCOL)
    const reader = new FrameReader(stream, MAX_FRAME)
    await writeFrame(stream, encodeStat(1, []))
    assert.equal(new MessageReader((await reader.next())!).kind, KIND.STAT | RESPONSE)
    const evicts: number[] = []
    const reading = (async () => { for (;;) { const f = await nextFrame(reader); if (f == null) return; evicts.push(new MessageReader(f).kind) } })()
    await waitFor(() => global.stats().locals === honest + 1, 5000, 'the mute channel')
    const before = global.stats()
    const started = Date.now()
    assert.equal(await l.delete(cid), true)
    assert.ok(Date.now() - started >= 250)
    const after = global.stats()
    assert.equal(after.evictionsTimedOut, before.evictionsTimedOut + 1)
    assert.equal(after.evictionsConfirmed, before.evictionsConfirmed + honest)
    assert.equal(await l.cache.has(cid), false)
    await reading
    assert.deepEqual(evicts.filter(k => k !== KIND.ERROR), [KIND.EVICT])
    await waitFor(() => global.stats().locals === honest, 5000, 'the mute channel to be dropped')
  })
})

describe('network: Global restarts', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  let repo: string
  let global: GlobalPeer
  let listen: string[]

  before(async () => {
    repo = await c.dir()
    const first = await createGlobal({ repo, sync: false })
    listen = [`/ip4/127.0.0.1/tcp/${portOf(first)}`]
    await first.stop()
    global = await createGlobal({ repo, listen, sync: false })
  })

  after(async () => {
    await global?.stop()
    await c.run()
  })

  async function restart (): Promise<void> {
    const peerId = global.peerId
    global = await createGlobal({ repo, listen, sync: false })
    assert.equal(global.peerId, peerId, 'the PeerId survives a restart')
  }

  it('lets calls made during an outage wait, succeed once Global is back, and keeps the data', async () => {
    const l = await c.local(global, { connectTimeout: 8000 })
    const kept = pseudoRandom(MiB + 1, 1300)
    const keptCid = await l.put(kept)
    const later = pseudoRandom(200 * KiB, 1301)
    const laterCid = await global.put(later) // never fetched by l before the outage
    await global.stop()
    await waitFor(() => !l.connected, 5000, 'the Local to notice')
    const during = l.get(laterCid)
    const missing = l.missing([keptCid, laterCid])
    await new Promise(resolve => setTimeout(resolve, 500))
    await restart()
    assertBytes(await during, later)
    assert.deepEqual(await missing, [])
    const other = await c.local(global)
    assertBytes(await other.get(keptCid), kept)
  })

  it('retries a get whose transfer broke because Global restarted', async () => {
    const data = pseudoRandom(32 * MiB, 1350)
    const cid = await global.put(data)
    const l = await c.local(global, { connectTimeout: 8000 })
    let stopping: Promise<void> | undefined
    const get = l.get(cid, { onProgress: (e) => { if (stopping == null && e.bytes >= MiB) stopping = global.stop() } })
    await waitFor(() => stopping != null, 10_000, 'the transfer to start')
    await stopping
    await restart()
    assertBytes(await get, data)
    assert.ok(await l.cache.has(cid))
  })

  it('drops a cached value deleted while the Local was disconnected, once it reconnects', async () => {
    const l = await c.local(global, { connectTimeout: 8000 })
    const data = pseudoRandom(300 * KiB, 1400)
    const cid = await global.put(data)
    assertBytes(await l.get(cid), data)
    assert.ok(await l.cache.has(cid))
    const invalidations = l.stats().invalidations
    await global.stop()
    const store = await createFsStore({ path: join(repo, 'store') })
    assert.equal(await store.delete(cid), true)
    await store.close()
    await restart()
    await waitFor(() => l.connected, 10_000, 'the Local to reconnect')
    await waitFor(async () => !(await l.cache.has(cid)), 5000, 'reconciliation')
    assert.equal(l.stats().invalidations, invalidations + 1)
    await rejectsWith(l.get(cid), 'NotFoundError')
  })

  it('rejects a call with GlobalUnreachableError when Global stays down past connectTimeout', async () => {
    const l = await c.local(global, { connectTimeout: 1000 })
    await l.ready()
    const cid = await l.put(pseudoRandom(1000, 1500))
    await global.stop()
    await waitFor(() => !l.connected, 5000, 'the Local to notice')
    const started = Date.now()
    await rejectsWith(l.missing([cid]), 'GlobalUnreachableError')
    assert.ok(Date.now() - started >= 900)
    await rejectsWith(l.get(cidOfBytes(pseudoRandom(10, 1501))), 'GlobalUnreachableError')
    assertBytes(await l.get(cid), pseudoRandom(1000, 1500), 'the cache still answers')
    await restart()
    await l.ready()
    assert.deepEqual(await l.missing([cid]), [])
  })
})

describe('network: a lying Global', function () {
  this.timeout(30_000)
  const c = new Cleanup()
  let liar: DstoreNode
  /** What the liar serves for any key it is asked for. */
  let decoy: Uint8Array
  /** Values the liar knows, by hex digest: large ones are served with one byte flipped. */
  const known = new Map<string, Uint8Array>()

  before(async () => {
    liar = await c.node(['/ip4/127.0.0.1/tcp/0'])
    decoy = pseudoRandom(50 * KiB, 1600)
    const decoyOb = makeOutboard(decoy).outboard
    await liar.handle(RPC_PROTOCOL, (stream: Stream) => {
      // eslint-disable-next-line no-new
      new RpcChannel(stream, async (msg) => {
        if (msg.kind === KIND.STAT) {
          const digests = decodeDigests(msg)
          return encodeStatResponse(msg.id, digests.map(d => known.get(hex(d))?.length ?? decoy.length))
        }
        if (msg.kind === KIND.GET) {
          const req = decodeGet(msg)
          const real = known.get(hex(req.digest))
          if (real != null) return encodeGetUseBlob(msg.id, real.length)
          // The verified stream of different data, under the key that was asked for.
          const length = req.length === U64_NONE ? decoy.length - req.offset : req.length
          return encodeGetInline(msg.id, decoy.length, encodeRangeSync(decoy, decoyOb, { offset: req.offset, length }))
        }
        throw new Error('the liar only serves STAT and GET')
      })
    })
    await liar.handle(BLOB_PROTOCOL, (stream: Stream) => {
      void (async () => {
        const reader = new FrameReader(stream, MAX_FRAME)
        const req = decodeGet(new MessageReader((await reader.next())!))
        const real = known.get(hex(req.digest))!
        const encoded = encodeRangeSync(real, makeOutboard(real).outboard, { offset: 0, length: real.length })
        encoded[encoded.length - 1000] ^= 0x80 // a corrupted byte near the end
        await writeFrame(stream, encodeBlobGetResponse(real.length))
        for (let o = 0; o < encoded.length; o += 64 * KiB) await writeRaw(stream, encoded.subarray(o, o + 64 * KiB))
        await stream.close()
      })().catch(err => { stream.abort(err) })
    })
  })

  after(async () => { await c.run() })

  const addrs = (): string[] => liar.getMultiaddrs().map(ma => ma.toString())

  it('makes a get fail with VerificationError when it serves the verified stream of different data', async () => {
    const l = await c.local(addrs())
    const wanted = pseudoRandom(50 * KiB, 1601)
    await rejectsWith(l.get(cidOfBytes(wanted)), 'VerificationError')
    await rejectsWith(collect(l.cat(cidOfBytes(wanted), { offset: 20_000, length: 100 })), 'VerificationError')
    assert.equal(await l.cache.has(cidOfBytes(wanted)), false)
    assert.equal(l.stats().cacheEntries, 0)
  })

  it('makes a get fail with VerificationError when it corrupts a byte of a large value', async () => {
    const l = await c.local(addrs())
    const wanted = pseudoRandom(2 * MiB, 1602)
    const cid = cidOfBytes(wanted)
    known.set(hex(cid.multihash.digest), wanted)
    await rejectsWith(l.get(cid), 'VerificationError')
    assert.equal(await l.cache.has(cid), false)
    assert.equal(l.stats().cacheEntries, 0)
  })

  it('makes a get into a buffer fail with VerificationError, and leaves zeros wherever the get wrote, not the bytes it could not verify', async () => {
    const l = await c.local(addrs())
    const wanted = pseudoRandom(2 * MiB, 1603)
    const cid = cidOfBytes(wanted)
    known.set(hex(cid.multihash.digest), wanted)
    const into = new Uint8Array(2 * MiB + 100).fill(0xa5)
    await rejectsWith(l.get(cid, { into }), 'VerificationError')
    // The value's groups were written (all verified but the corrupted one's) before the failure.
    assert.equal(into.subarray(0, 2 * MiB).every(b => b === 0), true, 'the bytes the get wrote were zeroed')
    assert.equal(into.subarray(2 * MiB).every(b => b === 0xa5), true, 'the bytes past the value are untouched')
    assert.equal(l.stats().cacheEntries, 0)
  })
})

describe('network: reconciliation that fails', function () {
  this.timeout(30_000)
  const c = new Cleanup()
  after(async () => { await c.run() })

  it('does not keep serving cached values it could not reconcile: it reconnects and reconciles again', async () => {
    const fake = await c.node(['/ip4/127.0.0.1/tcp/0'])
    let failStats = 0
    let channels = 0
    let current: RpcChannel | undefined
    await fake.handle(RPC_PROTOCOL, (stream: Stream) => {
      channels++
      current = new RpcChannel(stream, async (msg) => {
        if (msg.kind !== KIND.STAT) throw new Error('the fake Global only answers STAT')
        const digests = decodeDigests(msg)
        if (failStats > 0 && digests.length > 0) { failStats--; throw new Error('STAT failed') }
        // It has nothing: every cached value was deleted.
        return encodeStatResponse(msg.id, digests.map(() => undefined))
      })
    })
    const l = await c.local(fake.getMultiaddrs().map(ma => ma.toString()))
    await l.ready()
    const value = pseudoRandom(10 * KiB, 1700)
    const cid = cidOfBytes(value)
    l.cache.adoptVerified(cid, value)
    // The channel breaks; the reconciliation after reconnecting fails once.
    failStats = 1
    const before = channels
    current!.abort(new Error('test: channel reset'))
    await waitFor(() => channels > before && failStats === 0, 10_000, 'a reconnection that fails to reconcile')
    await waitFor(async () => !(await l.cache.has(cid)), 5_000, 'the unreconciled cached value to be dropped')
  })
})
