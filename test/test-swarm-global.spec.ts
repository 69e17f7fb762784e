/**
 * Global as the swarm's tracker, over real libp2p on 127.0.0.1: the GET SWARM flag, ANNOUNCE,
 * SOURCES, VOUCH, BADPEER, and what removes a source (a delete before its EVICTs, a closed rpc
 * channel, a report, the access lists). The "Locals" here are plain libp2p nodes speaking the
 * protocol with the requester functions, so each rule is seen on the wire.
 */
import { strict as assert } from 'node:assert'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createGlobal, type GlobalPeer, type CID } from '../src/index.js'
import { createFsStore } from '../src/core/store/fs.js'
import type { DstoreNode } from '../src/peers/node.js'
import { KIND, RPC_PROTOCOL, SWARM_MIN_SIZE } from '../src/protocol/constants.js'
import { decodeEvict, encodeEvictResponse, type MessageReader } from '../src/protocol/messages.js'
import { getRange, type RequesterContext } from '../src/protocol/requester.js'
import { RpcChannel } from '../src/protocol/rpc.js'
import { announce, findSources, getWhole, reportBadPeer, vouch } from '../src/protocol/swarm-requester.js'
import { SWARM_STATE } from '../src/protocol/swarm-messages.js'
import { startMesh } from './globals-mesh.js'
import { collect, pseudoRandom } from './helpers.js'
import { Cleanup, KiB, assertBytes, rejectsWith, waitFor } from './net.js'

/** A peer speaking to Global over its own rpc channel; `onEvict` sees each EVICT before it is answered. */
interface Peer { node: DstoreNode, ctx: RequesterContext, id: string, addr: Multiaddr, evicted: Uint8Array[][] }

async function connect (c: Cleanup, global: GlobalPeer, onEvict?: (digests: Uint8Array[]) => void, node?: DstoreNode): Promise<Peer> {
  node ??= await c.node()
  const connection = await node.dial(multiaddr(global.multiaddrs[0]))
  const stream = await connection.newStream(RPC_PROTOCOL)
  const evicted: Uint8Array[][] = []
  const channel = new RpcChannel(stream, async (msg: MessageReader) => {
    if (msg.kind !== KIND.EVICT) throw new Error('unexpected request')
    const digests = decodeEvict(msg)
    onEvict?.(digests)
    evicted.push(digests)
    return encodeEvictResponse(msg.id)
  })
  c.add(async () => { channel.abort(new Error('test over')) })
  // An address it could be dialled at (nothing dials it in these tests; Global only relays it).
  const port = 40000 + Math.floor(Math.random() * 20000)
  return { node, ctx: { channel, connection }, id: node.peerId.toString(), addr: multiaddr(`/ip4/127.0.0.1/tcp/${port}`), evicted }
}

async function sourcesOf (p: Peer, cid: CID): Promise<Array<[string, boolean]>> {
  const found = await findSources(p.ctx, cid.multihash.digest)
  return (found?.sources ?? []).map(s => [s.peerId, s.complete])
}

const complete = (cid: CID): { digest: Uint8Array, state: 2 } => ({ digest: cid.multihash.digest, state: SWARM_STATE.COMPLETE })

describe('Global as the swarm tracker', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  let global: GlobalPeer
  let big: Uint8Array
  let bigCid: CID

  before(async () => {
    global = await c.global(await c.dir())
    big = pseudoRandom(SWARM_MIN_SIZE + 5 * KiB, 1201)
    bigCid = await global.put(big)
  })

  after(async () => { await c.run() })

  describe('GET with the SWARM flag', () => {
    it('streams a value nobody else has, records the asker as fetching, and points the next asker at it', async () => {
      const a = await connect(c, global)
      const b = await connect(c, global)
      await announce(a.ctx, { addrs: [a.addr], entries: [] })
      const first = await getWhole(a.ctx, bigCid.multihash.digest, { swarm: true })
      assert.equal(first.kind, 'stream')
      if (first.kind === 'stream') assertBytes(await collect(first.parts), big)
      const second = await getWhole(b.ctx, bigCid.multihash.digest, { swarm: true })
      assert.equal(second.kind, 'sources')
      if (second.kind !== 'sources') return
      assert.equal(second.size, big.length)
      assert.deepEqual(second.sources.map(s => [s.peerId, s.complete, s.addrs.map(String)]), [[a.id, false, [a.addr.toString()]]])
      // b announced no address: it was not recorded, so a (asking again) is pointed at nobody.
      const again = await getWhole(a.ctx, bigCid.multihash.digest, { swarm: true })
      assert.equal(again.kind, 'stream')
      if (again.kind === 'stream') await collect(again.parts)
    })

    it('lists complete holders before fetchers', async () => {
      const cid = await global.put(pseudoRandom(SWARM_MIN_SIZE, 1202))
      const fetchers = await Promise.all([0, 1, 2].map(async () => await connect(c, global)))
      for (const f of fetchers) await announce(f.ctx, { addrs: [f.addr], entries: [{ digest: cid.multihash.digest, state: SWARM_STATE.FETCHING }] })
      const holder = await connect(c, global)
      await announce(holder.ctx, { addrs: [holder.addr], entries: [complete(cid)] })
      const asker = await connect(c, global)
      for (let i = 0; i < 10; i++) {
        const got = await getWhole(asker.ctx, cid.multihash.digest, { swarm: true })
        assert.equal(got.kind, 'sources')
        if (got.kind !== 'sources') return
        assert.deepEqual(got.sources.map(s => s.complete), [true, false, false, false])
        assert.equal(got.sources[0].peerId, holder.id)
      }
    })

    it('answers as without the flag for a value under SWARM_MIN_SIZE, for a range, and without the flag', async () => {
      const small = pseudoRandom(SWARM_MIN_SIZE - 1, 1203)
      const smallCid = await global.put(small)
      const holder = await connect(c, global)
      await announce(holder.ctx, { addrs: [holder.addr], entries: [complete(smallCid), complete(bigCid)] })
      const asker = await connect(c, global)
      const got = await getWhole(asker.ctx, smallCid.multihash.digest, { swarm: true })
      assert.equal(got.kind, 'stream')
      if (got.kind === 'stream') assertBytes(await collect(got.parts), small)
      const range = await collect(getRange(asker.ctx, bigCid.multihash.digest, { offset: 1, length: big.length - 1 }))
      assertBytes(range, big.subarray(1))
      const unflagged = await getWhole(asker.ctx, bigCid.multihash.digest, { swarm: false })
      assert.equal(unflagged.kind, 'stream')
      if (unflagged.kind === 'stream') assertBytes(await collect(unflagged.parts), big)
      // And the big value, flagged, is answered with its holder.
      assert.equal((await getWhole(asker.ctx, bigCid.multihash.digest, { swarm: true })).kind, 'sources')
    })
  })

  describe('SOURCES', () => {
    it('lists the sources without recording the asker, and nobody for a value Global does not have', async () => {
      const cid = await global.put(pseudoRandom(SWARM_MIN_SIZE, 1204))
      const holder = await connect(c, global)
      await announce(holder.ctx, { addrs: [holder.addr], entries: [complete(cid)] })
      const asker = await connect(c, global)
      await announce(asker.ctx, { addrs: [asker.addr], entries: [] })
      const found = await findSources(asker.ctx, cid.multihash.digest)
      assert.equal(found?.size, SWARM_MIN_SIZE)
      assert.deepEqual(found?.sources.map(s => s.peerId), [holder.id])
      assert.deepEqual(await sourcesOf(holder, cid), [], 'the asker was not recorded')
      assert.equal(await findSources(asker.ctx, new Uint8Array(32).fill(7)), undefined)
    })
  })

  describe('what removes a source', () => {
    it('a delete forgets the value before any EVICT goes out', async () => {
      const cid = await global.put(pseudoRandom(SWARM_MIN_SIZE, 1205))
      let atEvict: number | undefined
      const holder = await connect(c, global, () => { atEvict = global.stats().swarm.sources })
      const other = await connect(c, global)
      await announce(holder.ctx, { addrs: [holder.addr], entries: [complete(cid)] })
      await announce(other.ctx, { addrs: [other.addr], entries: [complete(cid)] })
      const before = global.stats().swarm
      await global.delete(cid)
      assert.equal(atEvict, before.sources - 2, 'both sources were gone when the EVICT arrived')
      assert.equal(global.stats().swarm.values, before.values - 1)
      // Put back, it has no sources until someone announces it again.
      await global.put(pseudoRandom(SWARM_MIN_SIZE, 1205))
      assert.deepEqual(await sourcesOf(other, cid), [])
    })

    it("a peer's entries go when its last rpc channel closes, not before", async () => {
      const cid = await global.put(pseudoRandom(SWARM_MIN_SIZE, 1206))
      const holder = await connect(c, global)
      // A second channel of the same PeerId (a CLI command sharing the Local's repository).
      const twin = await connect(c, global, undefined, holder.node)
      await announce(holder.ctx, { addrs: [holder.addr], entries: [complete(cid)] })
      const asker = await connect(c, global)
      assert.deepEqual(await sourcesOf(asker, cid), [[holder.id, true]])
      twin.ctx.channel.abort(new Error('test: the CLI command ends'))
      await new Promise(resolve => setTimeout(resolve, 200))
      assert.deepEqual(await sourcesOf(asker, cid), [[holder.id, true]], 'still listed while one channel is open')
      const sources = global.stats().swarm.sources
      holder.ctx.channel.abort(new Error('test: the Local goes'))
      await waitFor(async () => (await sourcesOf(asker, cid)).length === 0, 5_000, 'the holder to be dropped')
      assert.equal(global.stats().swarm.sources, sources - 1)
    })

    it('BADPEER removes that peer as a source of that value only, and is counted', async () => {
      const one = await global.put(pseudoRandom(SWARM_MIN_SIZE, 1207))
      const two = await global.put(pseudoRandom(SWARM_MIN_SIZE, 1208))
      const liar = await connect(c, global)
      const honest = await connect(c, global)
      await announce(liar.ctx, { addrs: [liar.addr], entries: [complete(one), complete(two)] })
      await announce(honest.ctx, { addrs: [honest.addr], entries: [complete(one)] })
      const victim = await connect(c, global)
      const reports = global.stats().swarm.badPeerReports
      // From a reader that fetches nothing of it, a report is ignored.
      await reportBadPeer(victim.ctx, one.multihash.digest, liar.node.peerId)
      assert.equal((await sourcesOf(victim, one)).length, 2)
      // From a Local fetching the value (so given its sources), it counts.
      await announce(victim.ctx, { addrs: [victim.addr], entries: [{ digest: one.multihash.digest, state: SWARM_STATE.FETCHING }] })
      await reportBadPeer(victim.ctx, one.multihash.digest, liar.node.peerId)
      assert.deepEqual(await sourcesOf(victim, one), [[honest.id, true]])
      assert.deepEqual(await sourcesOf(victim, two), [[liar.id, true]])
      assert.equal(global.stats().swarm.badPeerReports, reports + 1)
    })

    it('an ANNOUNCE of dropped removes it', async () => {
      const cid = await global.put(pseudoRandom(SWARM_MIN_SIZE, 1209))
      const holder = await connect(c, global)
      await announce(holder.ctx, { addrs: [holder.addr], entries: [complete(cid)] })
      const asker = await connect(c, global)
      assert.equal((await sourcesOf(asker, cid)).length, 1)
      await announce(holder.ctx, { entries: [{ digest: cid.multihash.digest, state: SWARM_STATE.DROPPED }] })
      assert.deepEqual(await sourcesOf(asker, cid), [])
    })
  })

  describe('access', () => {
    it('VOUCH says whether the access lists let a peer read; the swarm kinds need read access; a peer no longer allowed is not listed', async () => {
      const repo = await c.dir()
      const reader = await c.node()
      const holder = await c.node()
      const outsider = await c.node()
      const writer = await c.node()
      await writeFile(join(repo, 'allow-readers'), `${reader.peerId.toString()}\n${holder.peerId.toString()}\n`)
      const g = await createGlobal({ repo, sync: false, allowWriters: [writer.peerId.toString()] })
      c.add(async () => { await g.stop() })
      const cid = await g.put(pseudoRandom(SWARM_MIN_SIZE, 1210))
      const r = await connect(c, g, undefined, reader)
      const h = await connect(c, g, undefined, holder)
      const o = await connect(c, g, undefined, outsider)
      assert.equal(await vouch(r.ctx, holder.peerId), true)
      assert.equal(await vouch(r.ctx, writer.peerId), true, 'writers may read')
      assert.equal(await vouch(r.ctx, outsider.peerId), false)
      await rejectsWith(vouch(o.ctx, reader.peerId), 'PermissionDeniedError')
      await rejectsWith(announce(o.ctx, { addrs: [o.addr], entries: [complete(cid)] }), 'PermissionDeniedError')
      await rejectsWith(findSources(o.ctx, cid.multihash.digest), 'PermissionDeniedError')
      await rejectsWith(reportBadPeer(o.ctx, cid.multihash.digest, holder.peerId), 'PermissionDeniedError')
      await announce(h.ctx, { addrs: [h.addr], entries: [complete(cid)] })
      assert.deepEqual(await sourcesOf(r, cid), [[h.id, true]])
      // The holder loses read access: it is no longer handed out (the lists are asked at each answer).
      await writeFile(join(repo, 'allow-readers'), `${reader.peerId.toString()}\n`)
      await g.reloadAccess()
      assert.deepEqual(await sourcesOf(r, cid), [])
    })
  })

  describe('peer Globals', () => {
    it('a delete through another Global of the store forgets the value here too, before this Global\'s EVICTs', async () => {
      const store = await createFsStore({ path: join(await c.dir('dstore-swarm-mesh-'), 'store'), sync: false })
      c.add(async () => { await store.close() })
      const [m1, m2] = await startMesh(c, store, 2)
      const g1 = m1.peer as GlobalPeer
      const g2 = m2.peer as GlobalPeer
      const cid = await g1.put(pseudoRandom(SWARM_MIN_SIZE, 1211))
      let atEvict: number | undefined
      const holder = await connect(c, g2, () => { atEvict = g2.stats().swarm.sources })
      await announce(holder.ctx, { addrs: [holder.addr], entries: [complete(cid)] })
      assert.equal(g2.stats().swarm.sources, 1)
      await g1.delete(cid)
      assert.equal(atEvict, 0)
      assert.equal(g2.stats().swarm.values, 0)
    })
  })

  describe('stats', () => {
    it('reports no egress limit by default', () => {
      const s = global.stats().swarm
      assert.equal(s.egressLimit, null)
      assert.equal(s.egressWaitMs, 0)
      assert.ok(s.values >= 1 && s.sources >= s.values)
    })
  })
})

