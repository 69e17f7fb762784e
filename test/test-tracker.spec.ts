/**
 * The swarm tracker's rules (src/peers/tracker.ts): ordering, exclusion, eligibility, bounds,
 * and what removes entries (forget, dropPeer, badPeer, a dropped announcement).
 */
import { strict as assert } from 'node:assert'
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_SOURCES, Tracker, type TrackerOptions } from '../src/peers/tracker.js'

function digest (n: number): Uint8Array {
  const d = new Uint8Array(32)
  new DataView(d.buffer).setUint32(0, n)
  return d
}

const addr = (port: number): ReturnType<typeof multiaddr> => multiaddr(`/ip4/127.0.0.1/tcp/${port}`)

/** A tracker where every peer is eligible unless listed in `ineligible`. */
function tracker (options: Partial<TrackerOptions> = {}, ineligible = new Set<string>()): Tracker {
  return new Tracker({ eligible: (p) => !ineligible.has(p), ...options })
}

/** Announces `peer` (with an address) as `state` for `d`. */
function has (t: Tracker, peer: string, d: Uint8Array, state: 1 | 2 = 2, port = 4000): void {
  t.announce(peer, [addr(port)], [{ digest: d, state }])
}

describe('tracker', () => {
  describe('sources', () => {
    it('lists complete holders before fetchers, whatever the order they were announced in', () => {
      for (let round = 0; round < 20; round++) {
        const t = tracker()
        const d = digest(1)
        for (let i = 0; i < 3; i++) has(t, `f${i}`, d, 1)
        for (let i = 0; i < 3; i++) has(t, `c${i}`, d, 2)
        const list = t.sources(d)
        assert.deepEqual(list.map(s => s.complete), [true, true, true, false, false, false])
        assert.deepEqual(list.slice(0, 3).map(s => s.peerId).sort(), ['c0', 'c1', 'c2'])
      }
    })

    it('shuffles each group: over many answers, each holder comes first some of the time', () => {
      const t = tracker()
      const d = digest(1)
      for (let i = 0; i < 4; i++) has(t, `c${i}`, d)
      const firsts = new Set<string>()
      for (let i = 0; i < 200; i++) firsts.add(t.sources(d)[0].peerId)
      assert.equal(firsts.size, 4)
    })

    it(`lists at most ${MAX_SOURCES}, complete ones taking the places first`, () => {
      const t = tracker()
      const d = digest(1)
      for (let i = 0; i < 20; i++) has(t, `f${i}`, d, 1)
      for (let i = 0; i < 6; i++) has(t, `c${i}`, d, 2)
      const list = t.sources(d)
      assert.equal(list.length, MAX_SOURCES)
      assert.equal(list.filter(s => s.complete).length, 6)
    })

    it('of more fetchers than fit, lists those fetching longest (shuffled): the first one streams from Global', async () => {
      const t = tracker()
      const d = digest(1)
      for (let i = 0; i < 16; i++) {
        has(t, `f${i}`, d, 1)
        await new Promise(resolve => setTimeout(resolve, 2))
      }
      const oldest = Array.from({ length: MAX_SOURCES }, (_, i) => `f${i}`)
      const orders = new Set<string>()
      for (let k = 0; k < 50; k++) {
        const list = t.sources(d).map(s => s.peerId)
        assert.deepEqual([...list].sort(), [...oldest].sort())
        orders.add(list.join())
      }
      assert.ok(orders.size > 1, 'still shuffled')
    })

    it('leaves out the peer asking, peers not eligible now, and peers without addresses', () => {
      const ineligible = new Set(['gone'])
      const t = tracker({}, ineligible)
      const d = digest(1)
      has(t, 'asker', d)
      has(t, 'gone', d)
      has(t, 'ok', d)
      t.announce('noaddr', undefined, [{ digest: d, state: 2 }])
      assert.deepEqual(t.sources(d, 'asker').map(s => s.peerId), ['ok'])
      // Eligibility is asked at each answer: a peer that comes back is listed again.
      ineligible.delete('gone')
      assert.deepEqual(t.sources(d, 'asker').map(s => s.peerId).sort(), ['gone', 'ok'])
    })

    it('gives each source the addresses it announced, and keeps them when an ANNOUNCE carries none', () => {
      const t = tracker()
      const d = digest(1)
      t.announce('p', [addr(1), addr(2)], [])
      t.announce('p', [], [{ digest: d, state: 2 }])
      t.announce('p', undefined, [])
      assert.deepEqual(t.sources(d)[0].addrs.map(a => a.toString()), ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'])
    })

    it('keeps at most maxAddrs addresses of a peer', () => {
      const t = tracker({ maxAddrs: 2 })
      t.announce('p', [addr(1), addr(2), addr(3)], [{ digest: digest(1), state: 2 }])
      assert.equal(t.sources(digest(1))[0].addrs.length, 2)
    })

    it('is empty for a value nobody announced', () => {
      assert.deepEqual(tracker().sources(digest(9)), [])
    })
  })

  describe('fetching', () => {
    it('records a peer with addresses as fetching, and one without none at all', () => {
      const t = tracker()
      const d = digest(1)
      t.announce('p', [addr(1)], [])
      t.fetching(d, 'p')
      t.fetching(d, 'q')
      assert.deepEqual(t.sources(d).map(s => [s.peerId, s.complete]), [['p', false]])
    })

    it('does not turn a complete holder into a fetcher', () => {
      const t = tracker()
      const d = digest(1)
      has(t, 'p', d, 2)
      t.fetching(d, 'p')
      assert.equal(t.sources(d)[0].complete, true)
    })

    it('a later ANNOUNCE of complete upgrades a fetcher', () => {
      const t = tracker()
      const d = digest(1)
      t.announce('p', [addr(1)], [])
      t.fetching(d, 'p')
      t.announce('p', undefined, [{ digest: d, state: 2 }])
      assert.equal(t.sources(d)[0].complete, true)
      assert.deepEqual(t.stats(), { values: 1, sources: 1, badPeerReports: 0 })
    })
  })

  describe('removal', () => {
    it('forget removes every source of a value and nothing else', () => {
      const t = tracker()
      has(t, 'a', digest(1))
      has(t, 'b', digest(1))
      has(t, 'a', digest(2))
      t.forget(digest(1))
      assert.deepEqual(t.sources(digest(1)), [])
      assert.deepEqual(t.sources(digest(2)).map(s => s.peerId), ['a'])
      assert.deepEqual(t.stats(), { values: 1, sources: 1, badPeerReports: 0 })
      // The peer's own index forgot it too: dropping it afterwards leaves nothing behind.
      t.dropPeer('a')
      assert.deepEqual(t.stats(), { values: 0, sources: 0, badPeerReports: 0 })
    })

    it('dropPeer removes every entry and the addresses of that peer', () => {
      const t = tracker()
      has(t, 'a', digest(1))
      has(t, 'a', digest(2))
      has(t, 'b', digest(2))
      t.dropPeer('a')
      assert.deepEqual(t.sources(digest(1)), [])
      assert.deepEqual(t.sources(digest(2)).map(s => s.peerId), ['b'])
      assert.equal(t.hasAddrs('a'), false)
      // Back without addresses: not a source, even once it announces a value again.
      t.announce('a', undefined, [{ digest: digest(3), state: 2 }])
      assert.deepEqual(t.sources(digest(3)), [])
    })

    it('badPeer removes that peer for that value only, and counts the report', () => {
      const t = tracker()
      has(t, 'liar', digest(1))
      has(t, 'liar', digest(2))
      has(t, 'honest', digest(1))
      t.badPeer(digest(1), 'liar')
      t.badPeer(digest(1), 'nobody')
      assert.deepEqual(t.sources(digest(1)).map(s => s.peerId), ['honest'])
      assert.deepEqual(t.sources(digest(2)).map(s => s.peerId), ['liar'])
      assert.equal(t.stats().badPeerReports, 2)
    })

    it('takes a bad-peer report only from a source of that value: another reader cannot strike sources', () => {
      const t = tracker()
      has(t, 'a', digest(1))
      has(t, 'b', digest(1), 1)
      has(t, 'stranger', digest(2))
      t.badPeer(digest(1), 'a', 'stranger')
      assert.deepEqual(t.sources(digest(1)).map(s => s.peerId).sort(), ['a', 'b'])
      assert.equal(t.stats().badPeerReports, 0)
      t.badPeer(digest(1), 'a', 'b')
      assert.deepEqual(t.sources(digest(1)).map(s => s.peerId), ['b'])
      assert.equal(t.stats().badPeerReports, 1)
    })

    it('an ANNOUNCE of dropped removes that source', () => {
      const t = tracker()
      has(t, 'a', digest(1))
      t.announce('a', undefined, [{ digest: digest(1), state: 0 }])
      assert.deepEqual(t.sources(digest(1)), [])
      assert.deepEqual(t.stats(), { values: 0, sources: 0, badPeerReports: 0 })
    })
  })

  describe('bounds', () => {
    it('keeps the newest maxSourcesPerValue sources of a value', () => {
      const t = tracker({ maxSourcesPerValue: 3 })
      for (let i = 0; i < 5; i++) has(t, `p${i}`, digest(1))
      assert.deepEqual(t.sources(digest(1)).map(s => s.peerId).sort(), ['p2', 'p3', 'p4'])
      assert.equal(t.stats().sources, 3)
    })

    it('re-announcing refreshes a source: it is then among the newest', () => {
      const t = tracker({ maxSourcesPerValue: 2 })
      has(t, 'old', digest(1))
      has(t, 'mid', digest(1))
      has(t, 'old', digest(1))
      has(t, 'new', digest(1))
      assert.deepEqual(t.sources(digest(1)).map(s => s.peerId).sort(), ['new', 'old'])
    })

    it('keeps the newest maxValuesPerPeer values of one peer', () => {
      const t = tracker({ maxValuesPerPeer: 2 })
      for (let i = 0; i < 4; i++) has(t, 'p', digest(i))
      assert.deepEqual([0, 1, 2, 3].map(i => t.sources(digest(i)).length), [0, 0, 1, 1])
      assert.deepEqual(t.stats(), { values: 2, sources: 2, badPeerReports: 0 })
    })

    it('keeps at most maxEntries in all, dropping from the least recently touched value', () => {
      const t = tracker({ maxEntries: 4 })
      has(t, 'a', digest(1))
      has(t, 'b', digest(1))
      has(t, 'a', digest(2))
      has(t, 'b', digest(2))
      has(t, 'c', digest(1)) // touches value 1: value 2 is now the oldest
      assert.equal(t.stats().sources, 4)
      assert.deepEqual(t.sources(digest(1)).map(s => s.peerId).sort(), ['a', 'b', 'c'])
      assert.deepEqual(t.sources(digest(2)).map(s => s.peerId), ['b'])
      for (let i = 10; i < 1000; i++) has(t, `p${i}`, digest(i))
      assert.equal(t.stats().sources, 4)
      assert.equal(t.stats().values, 4)
    })
  })
})
