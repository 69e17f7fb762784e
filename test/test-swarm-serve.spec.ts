/**
 * The serving side of the swarm: a Local listening on 127.0.0.1 serves verified ranges of what
 * it holds (its cache, and downloads in flight) to the peers Global vouches for, only while it
 * is connected to Global, and nothing of a value once its delete has returned. The peer asking
 * is a real libp2p node dialling the serving Local directly, reading with the requester's own
 * `getRange` (every byte checked against the CID by the decoder). Real Global, real Locals.
 */
import { strict as assert } from 'node:assert'
import type { Connection, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { createGlobal, repoPeerId, type GlobalPeer, type LocalPeer } from '../src/index.js'
import { outboard } from '../src/core/bao/index.js'
import { GlobalUnreachableError, ProtocolError, VerificationError } from '../src/core/errors.js'
import { PartialValue } from '../src/core/swarm/partial.js'
import { pieceRange } from '../src/core/swarm/pieces.js'
import { VouchCache } from '../src/peers/local/vouch.js'
import type { DstoreNode } from '../src/peers/node.js'
import { BLOB_PROTOCOL, KIND, RPC_PROTOCOL } from '../src/protocol/constants.js'
import { deleteBlob, getRange, listBlobs, putBytes, putStream, statMany, type RequesterContext } from '../src/protocol/requester.js'
import { RpcChannel } from '../src/protocol/rpc.js'
import { announceBody } from '../src/protocol/swarm-messages.js'
import { askHave } from '../src/protocol/swarm-requester.js'
import { collect, pseudoRandom } from './helpers.js'
import { Cleanup, MiB, assertBytes, chunked, portOf, rejectsWith, waitFor } from './net.js'

/**
 * An rpc channel from `node` to the Local at `addr` (with /p2p/): what a downloader has per
 * peer. Closed once the test is done with it (a connection may carry only MAX_RPC_STREAMS).
 */
async function channelTo (c: Cleanup, node: DstoreNode, addr: string): Promise<RequesterContext> {
  const connection = await node.dial(multiaddr(addr))
  const stream = await connection.newStream(RPC_PROTOCOL)
  const channel = new RpcChannel(stream, async () => { throw new ProtocolError('this peer answers no requests') })
  c.add(async () => { await channel.close() })
  return { channel, connection }
}

async function read (ctx: RequesterContext, cid: CID, offset: number, length?: number): Promise<Uint8Array> {
  return await collect(getRange(ctx, cid.multihash.digest, { offset, length }))
}

describe('swarm serving: a Local serves verified ranges to other Locals', function () {
  this.timeout(120_000)
  const c = new Cleanup()
  let global: GlobalPeer
  let b: LocalPeer
  let a: LocalPeer
  let stranger: DstoreNode
  let liarRepo: string
  let gRepo: string
  let allowReaders: string[]
  const value = pseudoRandom(9 * MiB + 12345, 7)
  let cid: CID

  before(async function () {
    const aRepo = await c.dir('dstore-serve-a-')
    const bRepo = await c.dir('dstore-serve-b-')
    liarRepo = await c.dir('dstore-serve-liar-')
    // Readers: A, B and the liar. A stranger's node is not on the list.
    const readers = await Promise.all([aRepo, bRepo, liarRepo].map(async r => await repoPeerId(r)))
    gRepo = await c.dir('dstore-serve-g-')
    allowReaders = readers
    global = await createGlobal({ repo: gRepo, sync: false, allowReaders, listen: ['/ip4/127.0.0.1/tcp/0'] })
    c.add(async () => { await global.stop() })
    b = await c.local(global, { repo: bRepo, listen: ['/ip4/127.0.0.1/tcp/0'] })
    a = await c.local(global, { repo: aRepo })
    stranger = await c.node()
    cid = await global.put(value)
    await b.ready()
    assertBytes(await b.get(cid), value, 'B caches the value by a get')
  })
  after(async function () { await c.run() })
  // Each test's channels are closed after it: a connection carries at most MAX_RPC_STREAMS.
  const perTest = new Cleanup()
  afterEach(async function () { await perTest.run() })

  it('listens only when asked: its dialable addresses end in its PeerId', async function () {
    assert.equal(b.swarmAddrs.length > 0, true)
    for (const addr of b.swarmAddrs) assert.match(addr, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${b.peerId}$`))
    assert.deepEqual(a.swarmAddrs, [], 'A has no listen address: serves nobody')
    assert.equal(a.node.getMultiaddrs().length, 0)
    assert.equal(b.stats().swarm.enabled, true)
    assert.deepEqual(b.stats().swarm.addrs, b.swarmAddrs)
  })

  it('announces to Global what it caches of 4 MiB or more, with its address, and what leaves its cache', async function () {
    const digest = cid.multihash.digest
    // Listed complete (a swarm GET lists the asker as fetching first; the ANNOUNCE follows the caching).
    await waitFor(() => global.swarm.tracker.sources(digest).some(s => s.peerId === b.peerId && s.complete), 10_000, "Global's tracker to list B as complete")
    const source = global.swarm.tracker.sources(digest).find(s => s.peerId === b.peerId)
    assert.equal(source?.complete, true)
    assert.deepEqual(source?.addrs.map(a => a.toString()), b.swarmAddrs.map(a => a.replace(`/p2p/${b.peerId}`, '')))
    // Too small to be worth a swarm: not announced.
    const small = await global.put(pseudoRandom(MiB, 20))
    await b.get(small)
    // A Local with room for one large value: caching a second evicts the first, announced dropped.
    const tight = await c.local(global, { repo: liarRepo, listen: ['/ip4/127.0.0.1/tcp/0'], cacheSize: 10 * MiB })
    const second = await global.put(pseudoRandom(5 * MiB, 21))
    await tight.get(cid)
    await waitFor(() => global.swarm.tracker.sources(digest).some(s => s.peerId === tight.peerId && s.complete), 10_000, 'the tight Local to be listed')
    await tight.get(second)
    assert.equal(tight.stats().evictions, 1)
    await waitFor(() => !global.swarm.tracker.sources(digest).some(s => s.peerId === tight.peerId), 10_000, 'the evicted value to be announced dropped')
    await waitFor(() => global.swarm.tracker.sources(second.multihash.digest).some(s => s.peerId === tight.peerId && s.complete), 10_000, 'the second value to be listed')
    assert.equal(global.swarm.tracker.sources(small.multihash.digest).some(s => s.peerId === b.peerId), false, 'a 1 MiB value is not announced')
    await tight.stop()
  })

  it('serves a vouched peer any range of a cached value, inline and on a blob stream, every byte verified against the CID', async function () {
    const ctx = await channelTo(perTest, a.node, b.swarmAddrs[0])
    const before = b.stats().swarm.bytesToPeers
    const hits = b.stats().hits
    assertBytes(await read(ctx, cid, 0), value, 'whole value')
    assertBytes(await read(ctx, cid, 1000, 5000), value.subarray(1000, 6000), 'small range (inline)')
    assertBytes(await read(ctx, cid, 3 * MiB - 7, 2 * MiB + 11), value.subarray(3 * MiB - 7, 5 * MiB + 4), 'large range (blob stream)')
    assertBytes(await read(ctx, cid, value.length - 10), value.subarray(value.length - 10), 'the tail')
    const served = value.length + 5000 + 2 * MiB + 11 + 10
    assert.equal(b.stats().hits, hits, "serving peers is not a use of B's cache (its hits are its callers')")
    assert.equal(b.stats().swarm.bytesToPeers - before, served, 'value bytes served to peers')
    assert.ok((b.traffic().served.peer ?? 0) >= served, 'Traffic counts them as served to peer')
    assert.deepEqual(await statMany(ctx, [cid.multihash.digest]), [value.length], 'STAT: held whole')
    const have = await askHave(ctx, cid.multihash.digest)
    assert.equal(have?.state, 'complete')
    assert.equal(have?.size, value.length)
  })

  it('answers a range it lacks, and a value it does not hold, with NotFoundError (HAVE none, STAT absent)', async function () {
    const ctx = await channelTo(perTest, a.node, b.swarmAddrs[0])
    const other = await global.put(pseudoRandom(5 * MiB, 8))
    await rejectsWith(read(ctx, other, 0, 100), 'NotFoundError')
    await rejectsWith(read(ctx, other, 0), 'NotFoundError')
    assert.equal(await askHave(ctx, other.multihash.digest), undefined)
    assert.deepEqual(await statMany(ctx, [other.multihash.digest]), [undefined])
  })

  it('serves the held pieces of a download in flight and refuses the others (NotFoundError), HAVE telling which', async function () {
    const data = pseudoRandom(6 * MiB + 3, 9)
    const key = await global.put(data)
    const pv = new PartialValue(data.length)
    pv.outboard.set(outboard(data).outboard) // the verified parents a range stream would have carried
    for (const i of [0, 2]) {
      const r = pieceRange(data.length, i)
      assert.equal(pv.fill(i, data.subarray(r.offset, r.offset + r.length)), true)
    }
    pv.fetching.set(1)
    b.partials.add(key, pv)
    c.add(async () => { b.partials.remove(key, pv) })
    const ctx = await channelTo(perTest, a.node, b.swarmAddrs[0])
    const p0 = pieceRange(data.length, 0)
    const p1 = pieceRange(data.length, 1)
    const p2 = pieceRange(data.length, 2)
    assertBytes(await read(ctx, key, p0.offset, p0.length), data.subarray(p0.offset, p0.offset + p0.length), 'piece 0')
    assertBytes(await read(ctx, key, p2.offset + 100, 1000), data.subarray(p2.offset + 100, p2.offset + 1100), 'inside piece 2')
    await rejectsWith(read(ctx, key, p1.offset, 10), 'NotFoundError')
    await rejectsWith(read(ctx, key, p0.offset, p0.length + 1), 'NotFoundError') // runs into piece 1
    await rejectsWith(read(ctx, key, 0), 'NotFoundError')
    const have = await askHave(ctx, key.multihash.digest)
    assert.equal(have?.state, 'partial')
    assert.equal(have?.size, data.length)
    assert.deepEqual([0, 1, 2, 3].map(i => have?.have.get(i)), [true, false, true, false])
    assert.deepEqual([0, 1, 2, 3].map(i => have?.fetching.get(i)), [false, true, false, false])
    assert.deepEqual(await statMany(ctx, [key.multihash.digest]), [undefined], 'STAT: a value still downloading is not held whole')
    for (let i = 0; i < pv.pieces; i++) {
      const r = pieceRange(data.length, i)
      pv.fill(i, data.subarray(r.offset, r.offset + r.length))
    }
    assert.deepEqual(await statMany(ctx, [key.multihash.digest]), [data.length], 'STAT once every piece is held')
    assertBytes(await read(ctx, key, 0), data, 'the whole value once complete')
  })

  it('once delete() returns, serves nothing of the value: not from its cache, not from a download in flight', async function () {
    const data = pseudoRandom(5 * MiB + 1, 10)
    const cached = await global.put(data)
    assertBytes(await b.get(cached), data)
    const inFlight = await global.put(pseudoRandom(5 * MiB + 2, 11))
    const pv = new PartialValue(5 * MiB + 2)
    b.partials.add(inFlight, pv)
    const ctx = await channelTo(perTest, a.node, b.swarmAddrs[0])
    assert.equal((await askHave(ctx, cached.multihash.digest))?.state, 'complete')
    assert.equal((await askHave(ctx, inFlight.multihash.digest))?.state, 'partial')

    assert.equal(await a.delete(cached), true)
    assert.equal(await a.delete(inFlight), true)
    // Global made B evict both before answering: the download was closed and unregistered then.
    assert.equal(pv.closed, true, 'the download in flight was closed by the EVICT')
    assert.equal(pv.closeReason?.name, 'NotFoundError')
    assert.equal(b.partials.get(inFlight), undefined)
    for (const key of [cached, inFlight]) {
      assert.equal(await askHave(ctx, key.multihash.digest), undefined)
      assert.deepEqual(await statMany(ctx, [key.multihash.digest]), [undefined])
      await rejectsWith(read(ctx, key, 0, 100), 'NotFoundError')
      await rejectsWith(read(ctx, key, 0), 'NotFoundError')
    }
  })

  it('refuses a peer Global does not vouch for (PermissionDeniedError), whatever it asks', async function () {
    const ctx = await channelTo(perTest, stranger, b.swarmAddrs[0])
    await rejectsWith(read(ctx, cid, 0, 100), 'PermissionDeniedError')
    await rejectsWith(read(ctx, cid, 0), 'PermissionDeniedError')
    await rejectsWith(statMany(ctx, [cid.multihash.digest]), 'PermissionDeniedError')
    await rejectsWith(askHave(ctx, cid.multihash.digest), 'PermissionDeniedError')
    // And the vouched peer is still served.
    const ok = await channelTo(perTest, a.node, b.swarmAddrs[0])
    assertBytes(await read(ok, cid, 10, 20), value.subarray(10, 30))
  })

  it('refuses PUT, DELETE, LIST and the Local-to-Global kinds from a peer (PermissionDeniedError); an unknown kind is a ProtocolError and the channel goes on', async function () {
    const ctx = await channelTo(perTest, a.node, b.swarmAddrs[0])
    const small = pseudoRandom(1000, 12)
    await rejectsWith(putBytes(ctx, cid.multihash.digest, small), 'PermissionDeniedError')
    await rejectsWith(putStream(ctx, chunked(pseudoRandom(2 * MiB, 13), 64 * 1024), {}), 'PermissionDeniedError')
    await rejectsWith(deleteBlob(ctx, cid.multihash.digest), 'PermissionDeniedError')
    await rejectsWith((async () => { for await (const _ of listBlobs(ctx)) {} })(), 'PermissionDeniedError')
    await rejectsWith(ctx.channel.request(KIND.ANNOUNCE, announceBody({ entries: [{ digest: cid.multihash.digest, state: 2 }] })), 'PermissionDeniedError')
    await rejectsWith(ctx.channel.request(0x3e, new Uint8Array(0)), 'ProtocolError')
    assert.equal(ctx.channel.open, true)
    assertBytes(await read(ctx, cid, 0, 100), value.subarray(0, 100), 'still served on the same channel')
    assert.equal(await b.cache.has(cid), true, 'nothing was deleted')
  })

  it('garbage on a stream costs that stream only: B goes on serving others', async function () {
    const connection = await stranger.dial(multiaddr(b.swarmAddrs[0]))
    for (const protocol of [RPC_PROTOCOL, BLOB_PROTOCOL]) {
      const stream = await connection.newStream(protocol)
      // A frame length of 2^63: unframeable.
      stream.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]))
      await waitFor(() => stream.status !== 'open', 10_000, `B to reset the ${protocol} stream`)
    }
    const ctx = await channelTo(perTest, a.node, b.swarmAddrs[0])
    assertBytes(await read(ctx, cid, 0), value, 'B still serves the whole value')
  })

  it('keeps at most 32 connections from one peer open (the newest go), as Global does', async function () {
    const extra = await c.node()
    const addr = multiaddr(b.swarmAddrs[0])
    const opened: Connection[] = []
    for (let i = 0; i < 34; i++) opened.push(await extra.dial(addr, { force: true }))
    await waitFor(() => opened.filter(conn => conn.status === 'open').length <= 32, 10_000, 'B to close the extra connections')
    assert.equal(opened.slice(0, 32).every(conn => conn.status === 'open'), true, 'the first 32 stay')
  })

  it('with flipServedByte, every range it serves fails verification at the peer (VerificationError), inline or streamed', async function () {
    const liar = await c.local(global, { repo: liarRepo, listen: ['/ip4/127.0.0.1/tcp/0'], unsafeTestHooks: { flipServedByte: true } })
    assertBytes(await liar.get(cid), value, 'the liar fetched and verified the value itself')
    const ctx = await channelTo(perTest, a.node, liar.swarmAddrs[0])
    for (const [offset, length] of [[0, 100], [5 * MiB, 3 * MiB], [0, undefined]] as Array<[number, number | undefined]>) {
      await assert.rejects(read(ctx, cid, offset, length), (err: Error) => {
        assert.ok(err instanceof VerificationError, `expected a VerificationError, got ${err.name}: ${err.message}`)
        return true
      })
    }
  })

  it('refuses every peer while it is not connected to Global (GlobalUnreachableError), vouched or not', async function () {
    const ctx = await channelTo(perTest, a.node, b.swarmAddrs[0])
    assertBytes(await read(ctx, cid, 0, 10), value.subarray(0, 10))
    const port = portOf(global)
    await global.stop()
    await waitFor(() => !b.connected, 10_000, 'B to see Global gone')
    await rejectsWith(read(ctx, cid, 0, 10), 'GlobalUnreachableError')
    await rejectsWith(read(ctx, cid, 0), 'GlobalUnreachableError')
    await rejectsWith(askHave(ctx, cid.multihash.digest), 'GlobalUnreachableError')

    // Global back (same address, an empty tracker): B reconciles, announces what it holds, serves again.
    const again = await createGlobal({ repo: gRepo, sync: false, allowReaders, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    c.add(async () => { await again.stop() })
    await b.ready()
    await waitFor(() => again.swarm.tracker.sources(cid.multihash.digest).some(s => s.peerId === b.peerId && s.complete), 10_000, 'B to announce its cached value to the restarted Global')
    assertBytes(await read(ctx, cid, 0, 10), value.subarray(0, 10), 'served again once reconciled')
  })
})

describe('swarm serving: off', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  after(async function () { await c.run() })

  it('swarm: false listens nowhere, even with listen addresses', async function () {
    const global = await c.global(await c.dir('dstore-serve-off-'))
    const local = await c.local(global, { swarm: false, listen: ['/ip4/127.0.0.1/tcp/0'] })
    assert.deepEqual(local.swarmAddrs, [])
    assert.equal(local.node.getMultiaddrs().length, 0)
    assert.equal(local.stats().swarm.enabled, false)
  })

  it('refuses bad listen, swarm and unsafeTestHooks options (ArgumentError)', async function () {
    const global = ['/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLuxVf5KzSBQvDsXrj6Rx4uDWDbcLRz2XCYXN7cV6Pu9b']
    for (const bad of [{ listen: '/ip4/127.0.0.1/tcp/0' }, { listen: ['not a multiaddr'] }, { swarm: 'on' }, { unsafeTestHooks: { flipServedByte: 1 } }]) {
      await rejectsWith(c.local(global, bad as any), 'ArgumentError')
    }
  })
})

describe('VouchCache', function () {
  const peer = (n: number): PeerId => ({ toString: () => `peer-${n}` }) as unknown as PeerId

  it('asks Global once per peer within the TTL, concurrent checks sharing one question, and again after it', async function () {
    let asked = 0
    const cache = new VouchCache(async () => { asked++; await new Promise(resolve => setTimeout(resolve, 10)); return true }, 100)
    await Promise.all([cache.check(peer(1)), cache.check(peer(1)), cache.check(peer(1))])
    await cache.check(peer(1))
    assert.equal(asked, 1)
    await cache.check(peer(2))
    assert.equal(asked, 2)
    await new Promise(resolve => setTimeout(resolve, 120))
    await cache.check(peer(1))
    assert.equal(asked, 3, 'asked again once the answer is older than the TTL')
  })

  it('refuses with PermissionDeniedError when Global says no (remembered), or answers with an error (not remembered)', async function () {
    let asked = 0
    const no = new VouchCache(async () => { asked++; return false })
    await rejectsWith(no.check(peer(1)), 'PermissionDeniedError')
    await rejectsWith(no.check(peer(1)), 'PermissionDeniedError')
    assert.equal(asked, 1)
    const error = new VouchCache(async () => { asked++; throw new ProtocolError('unknown request kind 0xb') })
    await rejectsWith(error.check(peer(1)), 'PermissionDeniedError')
    await rejectsWith(error.check(peer(1)), 'PermissionDeniedError')
    assert.equal(asked, 3)
  })

  it('fails with GlobalUnreachableError when Global cannot be asked, and asks again next time', async function () {
    let up = false
    const cache = new VouchCache(async () => { if (!up) throw new GlobalUnreachableError('no Global'); return true })
    await rejectsWith(cache.check(peer(1)), 'GlobalUnreachableError')
    up = true
    await cache.check(peer(1))
  })

  it('keeps at most `max` answers, the oldest going first', async function () {
    let asked = 0
    const cache = new VouchCache(async () => { asked++; return true }, 60_000, 2)
    for (const n of [1, 2, 3]) await cache.check(peer(n))
    await cache.check(peer(3))
    await cache.check(peer(2))
    assert.equal(asked, 3)
    await cache.check(peer(1))
    assert.equal(asked, 4, 'the oldest answer was dropped')
  })
})

describe('ServeStore', function () {
  it('a transfer begun on a download stops once the download is cached and then deleted: it reads nothing more', async function () {
    const { ServeStore } = await import('../src/peers/local/serve-store.js')
    const { PartialRegistry } = await import('../src/peers/local/partials.js')
    const { createMemoryStore } = await import('../src/core/store/memory.js')
    const { cidOfBytes } = await import('../src/index.js')
    const value = pseudoRandom(5 * MiB, 41)
    const cid = cidOfBytes(value)
    const cache = createMemoryStore({ maxBytes: 64 * MiB })
    const partials = new PartialRegistry()
    const store = new ServeStore(cache, partials)
    const pv = new PartialValue(value.length)
    pv.fill(0, value.subarray(0, pv.pieceSize))
    partials.add(cid, pv)
    const reader = await store.open(cid)
    assert.equal((await reader.read(0, 16)).length, 16)
    // The download completes: the cache adopts its buffer, and it leaves the registry unclosed.
    pv.data.set(value)
    cache.adoptVerified(cid, pv.data)
    partials.remove(cid, pv)
    assert.equal((await reader.read(16, 16)).length, 16, 'still held, by the cache now')
    // Deleted: the cache entry goes; the partial was never closed.
    await cache.delete(cid)
    await rejectsWith(reader.read(32, 16), 'NotFoundError')
    await cache.close()
  })
})
