/**
 * Global's egress token bucket (src/protocol/egress.ts) on a clock of our own, and the
 * watchdog hold that keeps a transfer waiting for it from being idle-killed.
 */
import { strict as assert } from 'node:assert'
import { EgressBucket } from '../src/protocol/egress.js'
import { IdleWatchdog } from '../src/protocol/timeout.js'

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
        await new Promise(resolve => setTimeout(resolve, 250))
        assert.equal(fired, true, 'did not fire once idle after the hold')
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
