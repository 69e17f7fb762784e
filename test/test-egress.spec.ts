/**
 * Global's egress cap: the token bucket (src/protocol/egress.ts) on a clock of our own, the
 * watchdog hold that keeps a transfer waiting for it from being idle-killed, the provider
 * honouring it in memory, and a capped Global serving real Locals over libp2p.
 */
import '../src/runtime-shim.js'
import { strict as assert } from 'node:assert'
import { streamPair } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import { createMemoryStore } from '../src/core/store/memory.js'
import { EgressBucket } from '../src/protocol/egress.js'
import { createProviderHandler, handleBlobStream, type ProviderOptions } from '../src/protocol/provider.js'
import { getRange } from '../src/protocol/requester.js'
import { RpcChannel } from '../src/protocol/rpc.js'
import { IdleWatchdog } from '../src/protocol/timeout.js'
import { createGlobal, globalBackend, startHttpServer, type GlobalPeer } from '../src/index.js'
import { collect, pseudoRandom } from './helpers.js'
import { Cleanup, KiB, MiB, assertBytes, rejectsWith, waitFor } from './net.js'

/** A clock that only moves when a waiter sleeps (and records the sleeps). */
function fakeClock (): { now: () => number, sleep: (ms: number) => Promise<void>, sleeps: number[] } {
  let t = 1000
  const sleeps: number[] = []
  return {
    now: () => t,
    sleep: async (ms) => { sleeps.push(ms); t += ms },
    sleeps
  }
}

describe('egress', () => {
  describe('EgressBucket.take', () => {
    it('lets the burst go at once, then holds to the rate', async () => {
      const clock = fakeClock()
      const bucket = new EgressBucket(1000, { burst: 500, ...clock })
      await bucket.take(500)
      assert.deepEqual(clock.sleeps, [])
      await bucket.take(250)
      assert.deepEqual(clock.sleeps, [250])
      // 10 000 bytes more at 1000 B/s: 10 s of clock, whatever the slicing.
      const before = clock.now()
      for (let i = 0; i < 100; i++) await bucket.take(100)
      assert.equal(clock.now() - before, 10_000)
      assert.equal(bucket.waitedMs, 10_250)
    })

    it('refills while idle, but never more than the burst', async () => {
      const clock = fakeClock()
      const bucket = new EgressBucket(1000, { burst: 500, ...clock })
      await bucket.take(2000)
      assert.deepEqual(clock.sleeps, [1500])
      clock.sleep(60_000).catch(() => {}) // a minute of nothing
      clock.sleeps.length = 0
      await bucket.take(500)
      await bucket.take(500)
      assert.deepEqual(clock.sleeps, [500])
    })

    it('releases waiters first come, first served', async () => {
      let t = 0
      const bucket = new EgressBucket(1000, { burst: 100, now: () => t, sleep: async () => {} })
      // Reservations are made at call time: the second caller's wait includes the first's bytes.
      const waits: number[] = []
      for (const n of [1000, 100, 100]) {
        const before = bucket.backlogMs
        await bucket.take(n)
        waits.push(bucket.backlogMs - before)
      }
      assert.deepEqual(waits, [900, 100, 100])
      t = 1200 // time passes: the backlog shrinks with it
      assert.equal(bucket.backlogMs, 0)
    })

    it('refuses a rate that is not positive', () => {
      for (const rate of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => new EgressBucket(rate), RangeError)
    })

    it('waits in real time about n / rate past the burst', async () => {
      const bucket = new EgressBucket(1024 * 1024, { burst: 64 * 1024 })
      const started = performance.now()
      for (let i = 0; i < 5; i++) await bucket.take(64 * 1024)
      // 320 KiB at 1 MiB/s after a 64 KiB burst: 250 ms (timers fire late, never early).
      assert.ok(performance.now() - started >= 240, `took ${performance.now() - started} ms`)
    })
  })

  describe('IdleWatchdog.hold', () => {
    it('does not fire while a hold is in progress, and restarts the clock after it', async () => {
      let fired = false
      const dog = new IdleWatchdog(100, 'test', () => { fired = true })
      try {
        await dog.hold(new Promise(resolve => setTimeout(resolve, 300)))
        assert.equal(fired, false, 'fired during the hold')
        // Idle for 100 ms: it fires; waited for up to 2 s, as timers run late on a busy machine.
        await waitFor(() => fired, 2000, 'the watchdog firing once idle after the hold')
      } finally {
        dog.stop()
      }
    })

    it('fires on idleness without a hold (the control)', async () => {
      let fired = false
      const dog = new IdleWatchdog(100, 'test', () => { fired = true })
      try {
        await new Promise(resolve => setTimeout(resolve, 300))
        assert.equal(fired, true)
      } finally {
        dog.stop()
      }
    })
  })
})

describe('egress cap in the provider (in memory)', () => {
  it('a blob GET that waits for the cap longer than the request timeout is not idle-killed', async function () {
    this.timeout(30_000)
    const store = createMemoryStore({ maxBytes: 16 * MiB })
    // 128 KiB/s in 64 KiB slices: each slice of the blob stream waits ~0.5 s, past the 300 ms
    // in which the watchdog wants 16 KiB to move. The burst covers the inline start of the range.
    const egress = new EgressBucket(128 * KiB, { burst: 256 * KiB })
    const protocolErrors: Error[] = []
    const provider: ProviderOptions = { store, onDelete: async () => {}, egress, requestTimeout: 300, onProtocolError: (e) => { protocolErrors.push(e) } }
    const [a, b] = await streamPair()
    const server = new RpcChannel(b, createProviderHandler(provider))
    const channel = new RpcChannel(a, async () => { throw new Error('unexpected') })
    const connection = {
      status: 'open',
      newStream: async (): Promise<Stream> => {
        const [local, remote] = await streamPair()
        void handleBlobStream(remote, provider)
        return local
      }
    } as unknown as Connection
    try {
      const value = pseudoRandom(512 * KiB, 1301)
      const cid = await store.put(value)
      const started = Date.now()
      assertBytes(await collect(getRange({ channel, connection }, cid.multihash.digest, { offset: 0 })), value)
      assert.deepEqual(protocolErrors.map(e => e.message), [])
      assert.ok(Date.now() - started >= 1500, `the cap held the transfer back (${Date.now() - started} ms)`)
      assert.ok(egress.waitedMs >= 1500)
    } finally {
      channel.abort(new Error('done'))
      server.abort(new Error('done'))
      await store.close()
    }
  })
})

describe('Global with maxEgress (over libp2p)', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  const RATE = 4 * MiB
  let global: GlobalPeer

  before(async () => {
    global = await createGlobal({ repo: await c.dir(), sync: false, maxEgress: RATE })
    c.add(async () => { await global.stop() })
  })

  after(async () => { await c.run() })

  it('takes at least about size / rate to serve 8 MiB to a Local', async () => {
    const value = pseudoRandom(8 * MiB, 1302)
    const cid = await global.put(value)
    const local = await c.local(global)
    await local.ready()
    const waited = global.stats().swarm.egressWaitMs
    const started = Date.now()
    assertBytes(await local.get(cid), value)
    const took = Date.now() - started
    // 8 MiB at 4 MiB/s is 2 s; the burst is 0.4 MiB. A lower bound only: a busy machine is slower.
    assert.ok(took >= 1200, `served 8 MiB in ${took} ms under a 4 MiB/s cap`)
    const s = global.stats().swarm
    assert.equal(s.egressLimit, RATE)
    assert.ok(s.egressWaitMs - waited >= 1000, `waited ${s.egressWaitMs - waited} ms for the cap`)
  })

  it('keeps serving other Locals while one large transfer is capped', async () => {
    const large = pseudoRandom(16 * MiB, 1303)
    const small = pseudoRandom(100 * KiB, 1304)
    const medium = pseudoRandom(MiB, 1305)
    const [largeCid, smallCid, mediumCid] = [await global.put(large), await global.put(small), await global.put(medium)]
    const a = await c.local(global)
    const b = await c.local(global)
    await Promise.all([a.ready(), b.ready()])
    const done: string[] = []
    const bigGet = a.get(largeCid).then((got) => { done.push('large'); return got })
    // Let the large transfer get going (and the bucket fill up with its slices) first.
    await new Promise(resolve => setTimeout(resolve, 300))
    const others = (async () => {
      assertBytes(await b.get(smallCid), small, 'small value')
      done.push('small')
      assertBytes(await b.get(mediumCid), medium, 'medium value')
      done.push('medium')
    })()
    await others
    assertBytes(await bigGet, large, 'large value')
    // 16 MiB at 4 MiB/s takes ~4 s; the others take their turn 64 KiB at a time and finish first.
    assert.deepEqual(done, ['small', 'medium', 'large'])
  })

  it('holds the HTTP gateway to the same cap', async () => {
    const value = pseudoRandom(8 * MiB, 1306)
    const cid = await global.put(value)
    const http = await startHttpServer({ host: '127.0.0.1', port: 0, backend: globalBackend(global) })
    c.add(async () => { await http.close() })
    const started = Date.now()
    const r = await fetch(`${http.url}/ipfs/${cid.toString()}?format=raw`)
    assert.equal(r.status, 200)
    assertBytes(new Uint8Array(await r.arrayBuffer()), value)
    const took = Date.now() - started
    assert.ok(took >= 1200, `served 8 MiB over HTTP in ${took} ms under a 4 MiB/s cap`)
  })

  it('refuses a cap below 64 KiB/s, or not a number, with a ConfigError', async () => {
    for (const maxEgress of [1000, 0, -1, Number.NaN, '5MB' as unknown as number]) {
      await rejectsWith(createGlobal({ repo: await c.dir(), sync: false, maxEgress }), 'ConfigError')
    }
  })
})
