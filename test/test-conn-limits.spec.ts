/**
 * Connection limits on a real Global: raw TCP sockets that connect and send nothing must not
 * lock new clients out (they once did: 300 of them made every `dstore` command fail). Checks the
 * handshake deadline, the cap per remote IP, the cap on all pending handshakes, and that the
 * oldest pending handshake is the one closed to make room.
 */
import { strict as assert } from 'node:assert'
import net from 'node:net'
import { createGlobal, type GlobalPeer } from '../src/index.js'
import { multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_CONNECTION_LIMITS, sourceOf } from '../src/peers/conn-limits.js'
import { pseudoRandom } from './helpers.js'
import { assertBytes, Cleanup, portOf, rejectsWith, waitFor } from './net.js'
import { blake3Cid, dstore } from './proc.js'

/** Idle sockets to one port: connected, sending nothing, counting which the server closed. */
class Holder {
  readonly sockets: net.Socket[] = []
  /** Index of each socket the server closed (in opening order). */
  readonly closed = new Set<number>()

  /** Opens `n` sockets one after the other (so the server sees them in this order). */
  async open (port: number, n: number, from = '127.0.0.1'): Promise<void> {
    for (let i = 0; i < n; i++) {
      const index = this.sockets.length
      const s = net.connect({ port, host: '127.0.0.1', localAddress: from })
      this.sockets.push(s)
      s.on('error', () => {})
      s.on('close', () => { this.closed.add(index) })
      await new Promise(resolve => { s.once('connect', resolve); s.once('close', resolve) })
    }
  }

  /** Sockets still open among indexes [from, to). */
  openIn (from: number, to: number): number {
    let n = 0
    for (let i = from; i < to; i++) if (!this.closed.has(i)) n++
    return n
  }

  get stillOpen (): number { return this.sockets.length - this.closed.size }

  destroy (): void { for (const s of this.sockets) s.destroy() }
}

describe('connection limits', function () {
  this.timeout(30_000)
  const c = new Cleanup()
  const holders: Holder[] = []
  after(async () => {
    for (const h of holders) h.destroy()
    await c.run()
  })
  const holder = (): Holder => { const h = new Holder(); holders.push(h); return h }

  describe('a Global with the default limits', function () {
    let g: GlobalPeer
    before(async () => { g = await c.global(await c.dir('dstore-netlim-')) })

    it('serves a new Local and a new CLI command while one source holds 300 idle sockets, and closes them all', async function () {
      const earlier = await c.local(g)
      const before = pseudoRandom(1000, 1)
      const beforeCid = await earlier.put(before)

      const h = holder()
      await h.open(portOf(g), 300)

      // A new client connects at once (it needs milliseconds; the bound is only generous).
      const fresh = await c.local(g, { connectTimeout: 8000 })
      const value = pseudoRandom(5000, 2)
      const cid = await fresh.put(value)
      assertBytes(await fresh.get(beforeCid), before, 'a value put before the sockets, to the new Local')
      // The real CLI, with its default 5 s connect timeout: this is what used to fail.
      const repo = await c.dir('dstore-netlim-cli-')
      const stat = await dstore(['stat', cid.toString(), '--global', g.multiaddrs[0].toString(), '--repo', repo, '--json'])
      assert.equal(stat.code, 0, `dstore stat: ${stat.stderr}`)
      assert.equal(JSON.parse(stat.out).size, value.length)
      assert.equal(blake3Cid(value), cid.toString())

      // The Local connected beforehand was never affected.
      assertBytes(await earlier.get(cid), value, 'the new value, to the earlier Local')
      await earlier.put(pseudoRandom(100, 3))

      // And the handshake deadline closed the rest (libp2p's 10 s default would still hold them).
      await waitFor(() => h.stillOpen === 0, DEFAULT_CONNECTION_LIMITS.handshakeTimeout + 3000, 'every idle socket to be closed')
    })
  })

  describe('a Global with a long handshake deadline (so only eviction closes sockets)', function () {
    const limits = { handshakeTimeout: 60_000, maxPendingPerIp: 40, maxPending: 60 }
    let g: GlobalPeer
    before(async () => {
      const repo = await c.dir('dstore-netlim-caps-')
      g = await createGlobal({ repo, sync: false, connectionLimits: limits })
      c.add(async () => { await g.stop() })
    })

    it('keeps each source to maxPendingPerIp and all sources to maxPending, closing the oldest first', async function () {
      const h = holder()
      const port = portOf(g)
      // 127.0.0.1 and 127.0.0.2 are distinct sources (every 127/8 address is loopback on Linux).
      await h.open(port, 10, '127.0.0.1')
      await h.open(port, 300, '127.0.0.2')
      await waitFor(() => h.openIn(10, 310) === limits.maxPendingPerIp, 3000, `127.0.0.2 to keep ${limits.maxPendingPerIp}`)
      assert.equal(h.openIn(10, 310 - limits.maxPendingPerIp), 0, "127.0.0.2's oldest are the ones closed")
      assert.equal(h.openIn(0, 10), 10, "one source's flood closes none of another's")

      // 20 more from a third source: 70 pending is past maxPending, so the 10 oldest of all
      // (127.0.0.1's) make room.
      await h.open(port, 20, '127.0.0.3')
      await waitFor(() => h.stillOpen === limits.maxPending, 3000, `${limits.maxPending} pending in all`)
      assert.equal(h.openIn(0, 10), 0, 'the oldest of all are the ones closed')
      assert.equal(h.openIn(10, 310), limits.maxPendingPerIp)
      assert.equal(h.openIn(310, 330), 20)

      // Still, a client finishes its handshake: it evicts the oldest pending one, not itself.
      const l = await c.local(g, { connectTimeout: 8000 })
      const value = pseudoRandom(2000, 4)
      assertBytes(await l.get(await l.put(value)), value)
    })

    it('refuses a limit that is not a whole number of at least 1', async function () {
      const repo = await c.dir('dstore-netlim-bad-')
      await rejectsWith(createGlobal({ repo, sync: false, connectionLimits: { maxPending: 0 } }), 'ConfigError')
      await rejectsWith(createGlobal({ repo, sync: false, connectionLimits: { handshakeTimeout: 1.5 } }), 'ConfigError')
    })
  })

  describe('sourceOf', function () {
    it('counts an IPv4 address, an IPv4-mapped IPv6 address as that IPv4, ::1, and other IPv6 addresses by /64', function () {
      const of = (a: string): string => sourceOf({ remoteAddr: multiaddr(a) })
      assert.equal(of('/ip4/10.1.2.3/tcp/5'), '10.1.2.3')
      // What a dual-stack listener sees for an IPv4 client (multiaddr prints it as ::ffff:a00:1).
      assert.equal(of('/ip6/::ffff:10.0.0.1/tcp/5'), '10.0.0.1')
      assert.equal(of('/ip6/::1/tcp/5'), '::1')
      assert.equal(of('/ip6/2001:db8:1:2:3:4:5:6/tcp/5'), '2001:db8:1:2::/64')
      assert.equal(of('/ip6/2001:db8:1:2::9/tcp/5'), of('/ip6/2001:db8:1:2:ffff::1/tcp/5'))
      assert.notEqual(of('/ip6/2001:db8:1:2::9/tcp/5'), of('/ip6/2001:db8:1:3::9/tcp/5'))
    })
  })
})
