/**
 * The swarm end to end (issue #12, "Tests"): real Global and Local peers on 127.0.0.1, each
 * Local listening for the others. What Global sends is read from its own counter of bytes
 * out; what a Local got from where, from LocalStats.swarm; the bytes are compared with the
 * original buffer.
 */
import { strict as assert } from 'node:assert'
import { multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { createGlobal, type GlobalPeer, type LocalPeer } from '../src/index.js'
import { NotFoundError } from '../src/core/errors.js'
import { ANNOUNCE_DELAY_MS } from '../src/peers/local/announcer.js'
import { RPC_PROTOCOL } from '../src/protocol/constants.js'
import { getRange, type RequesterContext } from '../src/protocol/requester.js'
import { RpcChannel } from '../src/protocol/rpc.js'
import { askHave } from '../src/protocol/swarm-requester.js'
import { collect, pseudoRandom } from './helpers.js'
import { Cleanup, MiB, assertBytes, waitFor } from './net.js'

const SIZE = 32 * MiB
const LISTEN = ['/ip4/127.0.0.1/tcp/0']

describe('swarm', function () {
  this.timeout(120_000)
  const c = new Cleanup()
  afterEach(async function () { await c.run() })

  /** A Global holding one 32 MiB value. */
  async function globalWith (seed: number): Promise<{ global: GlobalPeer, data: Uint8Array, cid: CID }> {
    const global = await c.global(await c.dir('dstore-swarm-'))
    const data = pseudoRandom(SIZE, seed)
    const cid = await global.put(data)
    return { global, data, cid }
  }

  /** `n` Locals serving each other, connected to `global` and announced. */
  async function locals (global: GlobalPeer, n: number, options: { flipServedByte?: boolean } = {}): Promise<LocalPeer[]> {
    const out: LocalPeer[] = []
    for (let i = 0; i < n; i++) {
      const hooks = options.flipServedByte === true ? { unsafeTestHooks: { flipServedByte: true } } : {}
      out.push(await c.local(global, { listen: LISTEN, cacheSize: 128 * MiB, ...hooks }))
    }
    await Promise.all(out.map(async l => { await l.ready() }))
    for (const l of out) assert.ok(l.swarmAddrs.length > 0, 'a listening Local has swarm addresses')
    // Each announced its addresses on connect (batched): wait until Global has them all, or a
    // GET from a Local it has no address for would not make that Local a source.
    await waitFor(() => out.every(l => global.swarm.tracker.hasAddrs(l.peerId)), 10_000, 'Global knows every Local\'s swarm addresses')
    return out
  }

  /** Waits until Global's tracker knows `n` sources (complete holders, after their announcements). */
  async function sources (global: GlobalPeer, n: number): Promise<void> {
    await waitFor(() => global.stats().swarm.sources >= n, 10_000, `Global's tracker knows ${n} sources`)
  }

  const out = (global: GlobalPeer): number => global.stats().bytesOut

  it('three Locals one after the other: the second and third take most bytes from the first, not from Global', async function () {
    const { global, data, cid } = await globalWith(1)
    const [a, b, d] = await locals(global, 3)
    let before = out(global)
    assertBytes(await a.get(cid), data, 'A')
    const fromGlobalA = out(global) - before
    assert.ok(fromGlobalA >= SIZE, `A got the value from Global (${fromGlobalA} bytes sent)`)
    await sources(global, 1)

    before = out(global)
    assertBytes(await b.get(cid), data, 'B')
    const forB = out(global) - before
    assert.ok(forB < SIZE / 4, `Global sent ${forB} bytes for B's fetch of ${SIZE}: most came from A`)
    assert.ok(b.stats().swarm.bytesFromPeers >= (3 * SIZE) / 4, `B took ${b.stats().swarm.bytesFromPeers} bytes from peers`)
    assert.ok(b.stats().swarm.peersUsed >= 1)
    assert.equal(b.stats().swarm.downloads, 1)
    assert.ok(a.stats().swarm.bytesToPeers >= (3 * SIZE) / 4, `A served ${a.stats().swarm.bytesToPeers} bytes to peers`)
    await sources(global, 2)

    before = out(global)
    assertBytes(await d.get(cid), data, 'C')
    const forC = out(global) - before
    assert.ok(forC < SIZE / 4, `Global sent ${forC} bytes for C's fetch`)
    assert.ok(d.stats().swarm.bytesFromPeers >= (3 * SIZE) / 4)
    // Cached as today: a second get is a cache hit, nothing fetched.
    const hits = d.stats().hits
    assertBytes(await d.get(cid), data, 'C again')
    assert.equal(d.stats().hits, hits + 1)
  })

  it('a streamed read of a swarm download (cat with fill, what the HTTP daemon serves) gets the value in order, and caches it', async function () {
    const { global, data, cid } = await globalWith(6)
    const [a, b] = await locals(global, 2)
    assertBytes(await a.get(cid), data, 'A')
    await sources(global, 1)
    const before = out(global)
    assertBytes(await collect(b.cat(cid, { fill: true })), data, 'B, streamed')
    assert.ok(out(global) - before < SIZE / 4, 'the bytes came from A')
    assert.ok(b.stats().swarm.bytesFromPeers >= (3 * SIZE) / 4)
    assert.equal(await b.cache.has(cid), true, 'cached once complete')
  })

  it('with swarm: false a Local fetches from Global only, even when peers hold the value', async function () {
    const { global, data, cid } = await globalWith(7)
    const [a] = await locals(global, 1)
    assertBytes(await a.get(cid), data, 'A')
    await sources(global, 1)
    const off = await c.local(global, { swarm: false })
    await off.ready()
    const before = out(global)
    assertBytes(await off.get(cid), data, 'the swarm-off Local')
    assert.ok(out(global) - before >= SIZE, 'all of it from Global')
    assert.equal(off.stats().swarm.enabled, false)
    assert.equal(off.stats().swarm.bytesFromPeers, 0)
    assert.equal(a.stats().swarm.bytesToPeers, 0, 'A served nobody')
  })

  it('a value larger than the cache is streamed from Global, not downloaded from peers (it could not be held to serve them)', async function () {
    const { global, data, cid } = await globalWith(8)
    const [a] = await locals(global, 1)
    assertBytes(await a.get(cid), data, 'A')
    await sources(global, 1)
    const small = await c.local(global, { listen: LISTEN, cacheSize: 16 * MiB })
    await small.ready()
    const before = out(global)
    assertBytes(await small.get(cid), data, 'a Local with a 16 MiB cache')
    assert.ok(out(global) - before >= SIZE, 'from Global')
    assert.equal(small.stats().swarm.bytesFromPeers, 0)
    assert.equal(await small.cache.has(cid), false)
  })

  it("a caller's abort stops a swarm download (AbortError), leaves nothing registered or cached, and a later get starts afresh", async function () {
    const { global, data, cid } = await globalWith(9)
    const [a, b] = await locals(global, 2)
    assertBytes(await a.get(cid), data, 'A')
    await sources(global, 1)
    const controller = new AbortController()
    const getting = b.get(cid, { signal: controller.signal })
    await waitFor(() => b.stats().swarm.bytesFromPeers > 0, 10_000, 'B started its swarm download')
    controller.abort()
    await assert.rejects(getting, (err: Error) => { assert.equal(err.name, 'AbortError'); return true })
    await waitFor(() => b.stats().swarm.active === 0, 5000, 'the download is unregistered')
    assert.equal(await b.cache.has(cid), false)
    assertBytes(await b.get(cid), data, 'B, again')
    assert.equal(b.stats().swarm.downloads, 1, 'only the second download finished')
  })

  it('four Locals at once all get the right bytes, and Global sends less than twice the value', async function () {
    const { global, data, cid } = await globalWith(2)
    const ls = await locals(global, 4)
    const before = out(global)
    const values = await Promise.all(ls.map(async l => await l.get(cid)))
    values.forEach((v, i) => { assertBytes(v, data, `Local ${i}`) })
    const sent = out(global) - before
    assert.ok(sent < 2 * SIZE, `Global sent ${sent} bytes (${(sent / SIZE).toFixed(2)}x the value) to four Locals`)
    const fromPeers = ls.reduce((n, l) => n + l.stats().swarm.bytesFromPeers, 0)
    assert.ok(fromPeers >= 2 * SIZE, `the Locals took ${fromPeers} bytes from each other`)
  })

  it('four Locals at once behind a Global capped at 8 MiB/s all finish, in less time than Global alone would take to send the value four times', async function () {
    const global = await createGlobal({ repo: await c.dir('dstore-swarm-cap-'), sync: false, maxEgress: 8 * MiB })
    c.add(async () => { await global.stop() })
    const data = pseudoRandom(SIZE, 10)
    const cid = await global.put(data)
    const ls = await locals(global, 4)
    const before = out(global)
    const t0 = Date.now()
    const values = await Promise.all(ls.map(async l => await l.get(cid)))
    const ms = Date.now() - t0
    values.forEach((v, i) => { assertBytes(v, data, `Local ${i}`) })
    const sent = out(global) - before
    assert.ok(sent < 2 * SIZE, `Global sent ${(sent / SIZE).toFixed(2)}x the value`)
    // Four copies from Global alone: 16 s at the cap.
    assert.ok(ms < (4 * SIZE / (8 * MiB)) * 1000, `all four done in ${ms} ms`)
  })

  it('a lying Local is caught: dropped, reported, its ranges fetched elsewhere, the caller gets the right bytes', async function () {
    const { global, data, cid } = await globalWith(3)
    const [liar] = await locals(global, 1, { flipServedByte: true })
    const [honest, d] = await locals(global, 2)
    // The honest one first (from Global), so the liar's own download is served honestly.
    assertBytes(await honest.get(cid), data, 'the honest holder')
    await sources(global, 1)
    assertBytes(await liar.get(cid), data, 'the liar itself')
    await sources(global, 2)
    // The liar is listed once Global records it fetching; its COMPLETE goes out in its next
    // batch (ANNOUNCE_DELAY_MS). Arriving after the BADPEER report below, that would list it
    // again (by design: a report removes, it does not ban; docs/PROTOCOL.md), and the later
    // Local would be served by it. Seen once in CI; let the batch go first.
    await new Promise(resolve => setTimeout(resolve, 4 * ANNOUNCE_DELAY_MS))
    const reportsBefore = global.stats().swarm.badPeerReports
    assertBytes(await d.get(cid), data, 'the Local served by a liar')
    const s = d.stats().swarm
    assert.ok(s.badRanges >= 1, `bad ranges caught: ${s.badRanges}`)
    assert.ok(s.peersDropped >= 1)
    assert.ok(s.bytesFromPeers > 0, 'the honest holder still served')
    await waitFor(() => global.stats().swarm.badPeerReports > reportsBefore, 5000, 'Global received the BADPEER report')
    // Reported, the liar is no longer listed: the next Local is not served by it at all.
    const [e] = await locals(global, 1)
    assertBytes(await e.get(cid), data, 'a later Local')
    assert.equal(e.stats().swarm.badRanges, 0, 'Global no longer lists the liar as a source')
  })

  it('delete during a swarm download: it completes before the delete or fails NotFoundError, and afterwards no Local serves the value', async function () {
    const { global, data, cid } = await globalWith(4)
    const [a, b, d] = await locals(global, 3)
    assertBytes(await a.get(cid), data, 'A')
    await sources(global, 1)
    const download = b.get(cid).then(v => ({ v }), (err: Error) => ({ err }))
    await waitFor(() => b.stats().swarm.bytesFromPeers > 0, 10_000, 'B started its swarm download')
    assert.equal(await d.delete(cid), true)
    const result = await download
    if ('err' in result) {
      assert.ok(result.err instanceof NotFoundError, `failed with ${result.err.name}: ${result.err.message}`)
    } else {
      assertBytes(result.v, data, 'B, completed before the delete')
    }
    // Ask each Local directly, as a peer would: none holds or serves any of it.
    const probe = await c.node()
    for (const [name, l] of [['A', a], ['B', b], ['C', d]] as const) {
      const ctx = await channelTo(probe, l)
      assert.equal(await askHave(ctx, cid.multihash.digest), undefined, `${name} says it holds nothing of the value`)
      await assert.rejects(drain(getRange(ctx, cid.multihash.digest, { offset: 0, length: 1024 })), (err: Error) => {
        assert.equal(err.name, 'NotFoundError', `${name}: ${err.name}: ${err.message}`)
        return true
      })
      await ctx.channel.close()
    }
  })

  it('a Local killed mid-serve: the Locals it served finish from the others, with the right bytes', async function () {
    const { global, data, cid } = await globalWith(5)
    const [a, b] = await locals(global, 2)
    assertBytes(await a.get(cid), data, 'A')
    assertBytes(await b.get(cid), data, 'B')
    await sources(global, 2)
    const [d, e] = await locals(global, 2)
    const served = a.stats().swarm.bytesToPeers
    const downloads = [d, e].map(async l => await l.get(cid))
    await waitFor(() => a.stats().swarm.bytesToPeers > served + MiB, 10_000, 'A is serving the new Locals')
    await a.stop()
    const values = await Promise.all(downloads)
    values.forEach((v, i) => { assertBytes(v, data, `Local ${i}`) })
    const dropped = d.stats().swarm.peersDropped + e.stats().swarm.peersDropped
    assert.ok(dropped >= 1, `the killed Local was dropped as a source (${dropped})`)
  })
})

/** An rpc channel from `node` to a Local's serving side, as another Local opens it. */
async function channelTo (node: Awaited<ReturnType<Cleanup['node']>>, local: LocalPeer): Promise<RequesterContext> {
  const connection = await node.dial(local.swarmAddrs.map(a => multiaddr(a)))
  const stream = await connection.newStream(RPC_PROTOCOL)
  const channel = new RpcChannel(stream, async () => { throw new Error('no requests expected') })
  return { channel, connection }
}

async function drain (source: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of source) { /* consume */ }
}
