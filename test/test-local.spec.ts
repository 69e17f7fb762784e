/**
 * A Local's connection and put behaviour at the API level, against real Globals on 127.0.0.1:
 * a Global address whose `/p2p/` id names another peer fails at once, and a put that names its
 * key (`expected`, a file's `cidOfFile`) sends nothing Global already holds — so a peer that may
 * read but not write can put a value Global has.
 */
import { strict as assert } from 'node:assert'
import { createReadStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { cidOfBytes, cidOfFile, createGlobal, repoPeerId, type GlobalPeer, type LocalPeer } from '../src/index.js'
import { collect, pseudoRandom } from './helpers.js'
import { freePort } from './proc.js'
import { Cleanup, MiB, assertBytes, rejectsWith, waitFor } from './net.js'

describe('Local', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  after(async function () { await c.run() })

  describe('connect', function () {
    for (const encryption of ['tls', 'noise'] as const) {
      it(`fails at once, naming both PeerIds, when Global's address has another peer's /p2p/ id (${encryption})`, async function () {
        const global = await c.global(await c.dir('dstore-local-wrong-'))
        const other = await repoPeerId(await c.dir('dstore-local-other-'))
        const addr = multiaddr(global.multiaddrs[0]).decapsulateCode(421).encapsulate(`/p2p/${other}`)
        const local = await c.local([addr.toString()], { connectTimeout: 15_000, encryption: [encryption] })
        for (const [what, call] of [['ready', async () => { await local.ready() }], ['get', async () => await local.get(cidOfBytes(new Uint8Array(1)))]] as const) {
          const t0 = Date.now()
          await assert.rejects(call(), (err: Error & { code?: string }) => {
            assert.equal(err.name, 'GlobalUnreachableError', `${what}: ${err.message}`)
            assert.ok(err.message.includes(other), `${what} names the expected id: ${err.message}`)
            assert.ok(err.message.includes(global.peerId), `${what} names the actual id: ${err.message}`)
            return true
          })
          const ms = Date.now() - t0
          assert.ok(ms < 3000, `${what} failed after ${ms} ms, not the 15 s connectTimeout`)
        }
        // The right id still works on the same Global.
        const right = await c.local(global, { encryption: [encryption] })
        await right.ready()
      })
    }
  })

  describe('coherence of streamed puts', function () {
    /** A 2 MiB stream (past the inline limit) that runs `during` after its first MiB. */
    async function * slow (data: Uint8Array, during: () => Promise<unknown>): AsyncGenerator<Uint8Array> {
      yield data.subarray(0, MiB)
      await during()
      yield data.subarray(MiB)
    }

    for (const [what, named, cached] of [
      ['does not cache a streamed put during which Global evicted any value (its key is known only at its end)', false, false],
      ['caches a streamed put naming its CID (expected) when only another value was evicted meanwhile', true, true]
    ] as const) {
      it(what, async function () {
        const global = await c.global(await c.dir('dstore-local-coh-'))
        const l = await c.local(global)
        const other = await c.local(global)
        await Promise.all([l.ready(), other.ready()])
        const unrelated = await global.put(pseudoRandom(1000, 31))
        const data = pseudoRandom(2 * MiB, named ? 32 : 33)
        let deleted = false
        const cid = await l.put(slow(data, async () => { deleted = await other.delete(unrelated) }), named ? { expected: cidOfBytes(data) } : {})
        assert.ok(deleted, 'the other value was deleted (and evicted everywhere) during the put')
        assert.equal(await l.cache.has(cid), cached)
        // Without an eviction meanwhile, a streamed put is cached.
        const quiet = pseudoRandom(2 * MiB, named ? 34 : 35)
        assert.ok(await l.cache.has(await l.put(slow(quiet, async () => {}))))
      })
    }
  })

  describe('put with expected', function () {
    let writerRepo: string
    let readerRepo: string
    let global: GlobalPeer
    let writer: LocalPeer
    let reader: LocalPeer
    let file: string
    const data = pseudoRandom(5 * MiB, 21)

    before(async function () {
      writerRepo = await c.dir('dstore-local-writer-')
      readerRepo = await c.dir('dstore-local-reader-')
      const writerId = await repoPeerId(writerRepo)
      global = await createGlobal({ repo: await c.dir('dstore-local-global-'), sync: false, allowWriters: [writerId] })
      c.add(async () => { await global.stop() })
      writer = await c.local(global, { repo: writerRepo })
      reader = await c.local(global, { repo: readerRepo })
      await Promise.all([writer.ready(), reader.ready()])
      file = join(await c.dir('dstore-local-file-'), 'five-mib')
      await writeFile(file, data)
    })

    it('a second put of a 5 MiB file sends no value bytes, does not read the file, and closes it', async function () {
      const expected = await cidOfFile(file)
      const first = await writer.put(createReadStream(file), { expected })
      assert.ok(first.equals(expected))
      const before = global.stats().bytesIn
      const events: string[] = []
      const stream = createReadStream(file)
      const again = await writer.put(stream, { expected, onProgress: (e) => { events.push(e.type) } })
      assert.ok(again.equals(expected))
      assert.equal(global.stats().bytesIn - before, 0, 'no value bytes reached Global')
      assert.equal(stream.bytesRead, 0, 'the file was not read')
      assert.ok(stream.destroyed, 'the file stream was closed')
      assert.deepEqual(events, ['blob:put:deduplicated'])
    })

    it("a read-only peer's put of a value Global holds succeeds (and without expected it is refused, as it must send)", async function () {
      const expected = await cidOfFile(file)
      await writer.put(data)
      const cid = await reader.put(createReadStream(file), { expected })
      assert.ok(cid.equals(expected))
      await rejectsWith(reader.put(createReadStream(file)), 'PermissionDeniedError')
      // Bytes in hand are hashed first, so they need no expected.
      assert.ok((await reader.put(data)).equals(expected))
    })

    it('a streamed put Global refuses part-way closes its source (the file stream, a generator\'s finally)', async function () {
      const stream = createReadStream(file)
      await rejectsWith(reader.put(stream), 'PermissionDeniedError')
      assert.ok(stream.bytesRead > 0, 'the put did start reading the file')
      await waitFor(() => stream.destroyed, 2000, 'the file stream to be closed')
      let closed = false
      async function * gen (): AsyncGenerator<Uint8Array> {
        try { for (let i = 0; i < 5; i++) yield data.subarray(i * MiB, (i + 1) * MiB) } finally { closed = true }
      }
      await rejectsWith(reader.put(gen()), 'PermissionDeniedError')
      await waitFor(() => closed, 2000, "the generator's finally to run")
    })

    it('a put of a file stream that fails before anything is sent (Global unreachable) closes the file, with and without expected', async function () {
      const port = await freePort()
      const gone = await c.local([`/ip4/127.0.0.1/tcp/${port}/p2p/${global.peerId}`], { connectTimeout: 300 })
      const expected = await cidOfFile(file)
      for (const [what, options] of [['with expected', { expected }], ['without', {}]] as const) {
        const stream = createReadStream(file)
        await rejectsWith(gone.put(stream, options), 'GlobalUnreachableError')
        await waitFor(() => stream.destroyed, 2000, `the file stream to be closed (${what})`)
      }
    })

    it("a read-only peer's put of a value Global lacks is still refused, and a source that is not the expected value is a VerificationError that stores nothing", async function () {
      const fresh = pseudoRandom(2 * MiB, 22)
      await rejectsWith(reader.put([fresh], { expected: cidOfBytes(fresh) }), 'PermissionDeniedError')
      const other = pseudoRandom(2 * MiB, 23)
      await rejectsWith(writer.put([other], { expected: cidOfBytes(fresh) }), 'VerificationError')
      await rejectsWith(writer.put(other.subarray(0, 100), { expected: cidOfBytes(fresh) }), 'VerificationError')
      assert.equal(await global.has(cidOfBytes(fresh)), false)
      assert.equal(await global.has(cidOfBytes(other)), false)
      // A put of the right value with expected stores it.
      const cid = await writer.put([fresh], { expected: cidOfBytes(fresh) })
      assertBytes(await collect(global.cat(cid)), fresh)
    })
  })
  describe('cat with fill (what the HTTP daemon serves a miss with)', function () {
    it('streams a whole value before it has all arrived, caches it once complete, and the next read is a hit', async function () {
      const global = await c.global(await c.dir('dstore-local-fill-'))
      const value = pseudoRandom(32 * MiB, 71)
      const cid = await global.put(value)
      const local = await c.local(global, { cacheSize: 64 * MiB })
      await local.ready()
      const pieces: Buffer[] = []
      let inAtFirst = -1
      const misses0 = local.stats().misses
      for await (const piece of local.cat(cid, { fill: true })) {
        if (inAtFirst < 0) inAtFirst = local.stats().bytesIn
        pieces.push(Buffer.from(piece))
      }
      assertBytes(Buffer.concat(pieces), value)
      assert.ok(inAtFirst < value.length / 2, `the first piece came after ${inAtFirst} of ${value.length} bytes had arrived`)
      const before = local.stats()
      assert.equal(before.misses, misses0 + 1, 'a filling read is counted as a miss, as a get is')
      assert.equal(before.cacheEntries, 1, 'cached once complete')
      assertBytes(await collect(local.cat(cid)), value)
      assert.equal(local.stats().hits, before.hits + 1, 'the second read is a cache hit')
      assert.equal(local.stats().bytesIn, before.bytesIn, 'and fetches nothing')
    })

    it('streams views of the cached value, not copies: the pieces tile the array a get then returns', async function () {
      const global = await c.global(await c.dir('dstore-local-fill-views-'))
      const value = pseudoRandom(8 * MiB, 75)
      const cid = await global.put(value)
      const local = await c.local(global, { cacheSize: 64 * MiB })
      await local.ready()
      const pieces: Uint8Array[] = []
      for await (const piece of local.cat(cid, { fill: true })) pieces.push(piece)
      const cached = await local.get(cid)
      assertBytes(cached, value)
      let at = 0
      for (const piece of pieces) {
        assert.equal(piece.buffer, cached.buffer, 'a piece is a view of the cached value')
        assert.equal(piece.byteOffset, cached.byteOffset + at, 'at its offset in the value')
        at += piece.length
      }
      assert.equal(at, value.length)
    })

    it('streams a cached value as views of the array a get returns, not copies (whole, a range, and with fill)', async function () {
      const global = await c.global(await c.dir('dstore-local-hit-views-'))
      const value = pseudoRandom(3 * MiB + 5, 76)
      const cid = await global.put(value)
      const local = await c.local(global, { cacheSize: 64 * MiB })
      const cached = await local.get(cid)
      for (const [offset, length, fill] of [[0, undefined, false], [1000, 2 * MiB, false], [0, undefined, true]] as Array<[number, number | undefined, boolean]>) {
        const hits = local.stats().hits
        let at = offset
        for await (const piece of local.cat(cid, { offset, length, fill })) {
          assert.equal(piece.buffer, cached.buffer, 'a piece is a view of the cached value')
          assert.equal(piece.byteOffset, cached.byteOffset + at, 'at its offset in the value')
          at += piece.length
        }
        assert.equal(at, length === undefined ? value.length : offset + length)
        assert.equal(local.stats().hits, hits + 1, 'a cache hit')
      }
      assertBytes(await local.get(cid), value)
    })

    it('shares one transfer with a concurrent get of the same value', async function () {
      const global = await c.global(await c.dir('dstore-local-fill-share-'))
      const value = pseudoRandom(16 * MiB, 72)
      const cid = await global.put(value)
      const local = await c.local(global, { cacheSize: 64 * MiB })
      await local.ready()
      const out0 = global.stats().bytesOut
      const [streamed, got] = await Promise.all([collect(local.cat(cid, { fill: true })), local.get(cid)])
      assertBytes(streamed, value)
      assertBytes(got, value)
      const sent = global.stats().bytesOut - out0
      assert.ok(sent < value.length * 1.1, `Global sent ${sent} bytes for one ${value.length}-byte value read twice at once`)
    })

    it('streams a value larger than the cache without caching it, and a reader that stops early caches nothing', async function () {
      const global = await c.global(await c.dir('dstore-local-fill-big-'))
      const big = pseudoRandom(8 * MiB, 73)
      const cid = await global.put(big)
      const local = await c.local(global, { cacheSize: 4 * MiB })
      await local.ready()
      assertBytes(await collect(local.cat(cid, { fill: true })), big)
      assert.equal(local.stats().cacheEntries, 0)
      const small = pseudoRandom(3 * MiB, 74)
      const smallCid = await global.put(small)
      for await (const piece of local.cat(smallCid, { fill: true })) { assert.ok(piece.length > 0); break }
      await new Promise(resolve => setTimeout(resolve, 200)) // let the aborted transfer settle
      assert.equal(local.stats().cacheEntries, 0, 'an abandoned transfer is not cached')
      assertBytes(await collect(local.cat(smallCid, { fill: true })), small)
      assert.equal(local.stats().cacheEntries, 1)
    })
  })
})
