import { strict as assert } from 'node:assert'
import { GLOBAL, PieceScheduler, type PieceRequest, type PieceSet, type SchedulerOptions } from '../src/core/swarm/scheduler.js'

/** A set of piece indexes as the scheduler reads bitfields. */
function set (...pieces: number[]): PieceSet {
  const s = new Set(pieces)
  return { get: (i) => s.has(i), count: () => s.size }
}

/** A scheduler on a clock the test moves, with a seeded random. */
function make (options: Partial<SchedulerOptions> & { pieces: number }): { s: PieceScheduler, clock: { t: number } } {
  const clock = { t: 1000 }
  let seed = 7
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  return { s: new PieceScheduler({ now: () => clock.t, random, ...options }), clock }
}

/** Every request next() gives now. */
function drain (s: PieceScheduler): PieceRequest[] {
  const out: PieceRequest[] = []
  for (let r = s.next(); r !== undefined; r = s.next()) out.push(r)
  return out
}

describe('PieceScheduler', () => {
  describe('next', () => {
    it('takes pieces a peer has from that peer, at most perPeer at once, and nothing from Global', () => {
      const { s } = make({ pieces: 8, perPeer: 2 })
      s.addPeer('a', true)
      const got = drain(s)
      assert.equal(got.length, 2)
      assert.ok(got.every(r => r.source === 'a' && !r.duplicate))
      assert.notEqual(got[0].piece, got[1].piece)
    })

    it('spreads over peers, the least loaded first', () => {
      const { s } = make({ pieces: 16, perPeer: 2 })
      for (const id of ['a', 'b', 'c']) s.addPeer(id, true)
      const got = drain(s)
      assert.equal(got.length, 6)
      for (const id of ['a', 'b', 'c']) assert.equal(got.filter(r => r.source === id).length, 2)
      // The first three go to three different peers: each one goes to the least loaded.
      assert.equal(new Set(got.slice(0, 3).map(r => r.source)).size, 3)
    })

    it('takes the rarest piece first', () => {
      const { s } = make({ pieces: 4, perPeer: 1 })
      s.addPeer('a', false)
      s.addPeer('b', false)
      s.updatePeer('a', { complete: false, have: set(0, 1, 2), fetching: set() })
      s.updatePeer('b', { complete: false, have: set(0, 1), fetching: set() })
      const first = s.next()
      // Piece 2 is held by one peer only (0 and 1 by two): it goes first, from its holder.
      assert.deepEqual([first?.piece, first?.source], [2, 'a'])
      const second = s.next()
      assert.equal(second?.source, 'b')
      assert.ok(second?.piece === 0 || second?.piece === 1)
    })

    it('asks Global, bounded, for pieces no peer has or is fetching', () => {
      const { s } = make({ pieces: 10, perGlobal: 3 })
      s.addPeer('a', false)
      s.updatePeer('a', { complete: false, have: set(0), fetching: set(1) })
      const got = drain(s)
      const fromGlobal = got.filter(r => r.source === GLOBAL)
      assert.equal(fromGlobal.length, 3)
      assert.ok(fromGlobal.every(r => r.piece >= 2), 'piece 1 waits for the peer fetching it')
      assert.deepEqual(got.filter(r => r.source === 'a').map(r => r.piece), [0])
    })

    it('waits for a peer fetching a piece while it grows, then falls back to Global once it stalls', () => {
      const { s, clock } = make({ pieces: 2, waitMs: 3000 })
      s.addPeer('a', false)
      s.updatePeer('a', { complete: false, have: set(), fetching: set(0, 1) })
      assert.equal(s.next(), undefined)
      clock.t += 2000
      s.updatePeer('a', { complete: false, have: set(0), fetching: set(1) })
      assert.equal(s.next()?.source, 'a')
      clock.t += 2000
      assert.equal(s.next(), undefined, 'it grew 2 s ago: piece 1 still waits for it')
      clock.t += 1500
      const late = s.next()
      assert.deepEqual([late?.piece, late?.source], [1, GLOBAL])
    })

    it('takes a peer that has not answered HAVE yet as fetching everything, until waitMs passes', () => {
      const { s, clock } = make({ pieces: 2, waitMs: 1000 })
      s.addPeer('a', false)
      assert.equal(s.next(), undefined)
      clock.t += 1000
      assert.equal(s.next()?.source, GLOBAL)
    })

    it('with no peers, takes everything from Global', () => {
      const { s } = make({ pieces: 3, perGlobal: 4 })
      const got = drain(s)
      assert.deepEqual(got.map(r => r.piece).sort(), [0, 1, 2])
      assert.ok(got.every(r => r.source === GLOBAL))
    })

    it('returns nothing once every piece is held', () => {
      const { s } = make({ pieces: 2 })
      s.addPeer('a', true)
      for (const r of drain(s)) assert.deepEqual(s.finish(r), [])
      assert.ok(s.done())
      assert.equal(s.next(), undefined)
    })
  })

  describe('endgame', () => {
    it('duplicates the last pieces at another peer, and finish hands back the loser to cancel', () => {
      const { s, clock } = make({ pieces: 2, perPeer: 2 })
      s.addPeer('a', true)
      const [r1, r2] = drain(s)
      assert.equal(r1.source, 'a')
      assert.equal(r2.source, 'a')
      s.addPeer('b', true)
      clock.t += 10
      s.progress(r2)
      const dups = drain(s)
      assert.equal(dups.length, 2)
      assert.ok(dups.every(r => r.duplicate && r.source === 'b'))
      // The one with the oldest progress is duplicated first.
      assert.equal(dups[0].piece, r1.piece)
      const losers = s.finish(dups[0])
      assert.deepEqual(losers, [r1])
      assert.ok(s.isHeld(r1.piece))
    })

    it('does not duplicate at Global unless the request is stalled three times over', () => {
      const { s, clock } = make({ pieces: 1, stallMs: 2000 })
      s.addPeer('a', true)
      const r = s.next()
      assert.equal(r?.source, 'a')
      assert.equal(s.next(), undefined)
      clock.t += 2000
      assert.equal(s.next(), undefined, 'stalled once: a peer elsewhere may still take it, Global not yet')
      clock.t += 4000
      const dup = s.next()
      assert.deepEqual([dup?.source, dup?.duplicate], [GLOBAL, true])
    })
  })

  describe('failures', () => {
    it('re-requests a piece a peer failed elsewhere, never again from that peer', () => {
      const { s } = make({ pieces: 1 })
      s.addPeer('a', true)
      s.addPeer('b', true)
      const r = s.next()
      assert.ok(r !== undefined)
      assert.deepEqual(s.fail(r, 'error'), [])
      const again = s.next()
      assert.equal(again?.piece, 0)
      assert.notEqual(again?.source, r.source)
      assert.deepEqual(s.fail(again!, 'notfound'), [])
      // Both peers failed piece 0: Global.
      assert.equal(s.next()?.source, GLOBAL)
    })

    it('drops a peer after maxFailures, handing back its other requests', () => {
      const { s } = make({ pieces: 8, perPeer: 2, maxFailures: 2 })
      s.addPeer('a', true)
      const [r1, r2] = drain(s)
      assert.deepEqual(s.fail(r1, 'error'), [])
      const r3 = drain(s)[0]
      assert.equal(r3.source, 'a')
      assert.deepEqual(s.fail(r3, 'error'), [r2])
      assert.ok(s.isDropped('a'))
      assert.ok(drain(s).every(r => r.source === GLOBAL))
    })

    it('never drops a peer for being slow: stalled requests go elsewhere, the peer stays a source', () => {
      const { s } = make({ pieces: 8, perPeer: 1, maxFailures: 2 })
      s.addPeer('a', true)
      for (let k = 0; k < 5; k++) {
        const r = drain(s).find(x => x.source === 'a')
        assert.ok(r !== undefined, `a is still asked (round ${k})`)
        assert.deepEqual(s.fail(r, 'stalled'), [])
        assert.ok(!s.isDropped('a'))
      }
    })

    it('dropPeer (bad bytes) hands back its requests, their pieces go elsewhere, and the peer stays dropped', () => {
      const { s } = make({ pieces: 4, perPeer: 2 })
      s.addPeer('liar', true)
      const got = drain(s)
      s.addPeer('b', true)
      const back = s.dropPeer('liar')
      assert.deepEqual(back.map(r => r.id).sort(), got.map(r => r.id).sort())
      s.addPeer('liar', true)
      assert.ok(s.isDropped('liar'))
      const next = drain(s)
      assert.ok(next.length > 0 && next.every(r => r.source === 'b'))
      assert.deepEqual(s.livePeers(), ['b'])
    })

    it('counts errors of Global for the driver to bound, not a lost channel (asked again, uncounted)', () => {
      const { s } = make({ pieces: 1 })
      const r = s.next()
      assert.equal(r?.source, GLOBAL)
      s.fail(r!, 'error')
      assert.equal(s.globalFailures, 1)
      const again = s.next()
      assert.equal(again?.source, GLOBAL)
      s.fail(again!, 'stalled')
      assert.equal(s.globalFailures, 1)
      assert.equal(s.next()?.source, GLOBAL)
    })
  })

  describe('stalled', () => {
    it('names a request without bytes for stallMs while another progressed, and any after 4x stallMs', () => {
      const { s, clock } = make({ pieces: 4, perPeer: 1, stallMs: 1000 })
      s.addPeer('a', true)
      s.addPeer('b', true)
      const [r1, r2] = drain(s)
      clock.t += 1000
      assert.deepEqual(s.stalled(), [], 'nobody progressed: the network, not one peer')
      s.progress(r2)
      assert.deepEqual(s.stalled(), [r1])
      clock.t += 3000
      assert.deepEqual(s.stalled(), [r1], 'r1 idle 4 s: stalled whatever the others do; r2 idle 3 s, nobody progressed since')
      clock.t += 1000
      assert.deepEqual(new Set(s.stalled()), new Set([r1, r2]))
    })
  })
})
