/**
 * `LocalPeer.stop()` while transfers run: every call in flight ends with ClosedError
 * (ERR_CLOSED) — not with what the transfer broke with underneath (a truncated verified stream,
 * libp2p's stream errors, a blob stream without its answer). A real Global in this process,
 * 64 MiB values, stopped at several moments of the transfers.
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { createLocal, type GlobalPeer, type LocalPeer, type CID } from '../src/index.js'
import { Cleanup, MiB, chunked, waitFor } from './net.js'

const SIZE = 64 * MiB

async function drain (source: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0
  for await (const part of source) n += part.length
  return n
}

/** How a call ended: its error's name and code, or 'resolved'. */
async function outcome (p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (err) {
    const e = err as { name?: string, code?: string, message?: string }
    return `${String(e.name)} ${String(e.code)}: ${String(e.message)}`
  }
}

describe('Local.stop', function () {
  this.timeout(180_000)
  const c = new Cleanup()
  let global: GlobalPeer
  let a: CID
  let b: CID

  before(async function () {
    global = await c.global(await c.dir('dstore-stop-'))
    a = await global.put(randomBytes(SIZE))
    b = await global.put(randomBytes(SIZE))
  })
  after(async function () { await c.run() })

  // 0: before the calls have a channel; then once this many MiB went each way.
  for (const mib of [0, 0.25, 1, 4, 8, 16, 24]) {
    it(`makes a get, a cat and a put of 64 MiB in flight end with ClosedError (stopped ${mib === 0 ? 'at once' : `after ${mib} MiB`})`, async function () {
      const local: LocalPeer = await createLocal({ global: global.multiaddrs, connectTimeout: 10_000 })
      let stopped = false
      c.add(async () => { if (!stopped) await local.stop() })
      if (mib > 0) await local.ready()
      // The put's source holds its last MiB until stop(): a put can outrun the two gets (it did
      // in CI once hashing got faster), and it must still be in flight when stopped.
      let release!: () => void
      const held = new Promise<void>(resolve => { release = resolve })
      async function * heldAtTheEnd (): AsyncGenerator<Uint8Array> {
        const value = randomBytes(SIZE)
        yield * chunked(value.subarray(0, SIZE - MiB), MiB)
        await held
        yield value.subarray(SIZE - MiB)
      }
      // Each call must still be in flight when stopped, whatever their speeds (a get of 64 MiB
      // once finished before the put had sent 24 MiB): the put is held at its end, the cat's
      // consumer stops pulling once it has its share, and the get starts last, the stop coming
      // as soon as it has verified its share.
      const share = mib * MiB
      let catBytes = 0
      let resumeCat!: () => void
      const catHeld = new Promise<void>(resolve => { resumeCat = resolve })
      let getReached!: () => void
      const reached = new Promise<void>(resolve => { getReached = resolve })
      let getSettled = false
      const startGet = (): Promise<Uint8Array> => {
        const p = local.get(a, { onProgress: (e) => { if (e.type === 'blob:get:verified' && e.bytes >= share) getReached() } })
        p.then(() => { getSettled = true }, () => { getSettled = true })
        return p
      }
      const put = local.put(heldAtTheEnd())
      const cat = (async () => {
        for await (const part of local.cat(b)) {
          catBytes += part.length
          if (share > 0 && catBytes >= share) await catHeld
        }
        return catBytes
      })()
      let get: Promise<Uint8Array>
      if (share > 0) {
        await waitFor(() => local.stats().bytesOut >= share && catBytes >= share, 60_000, `${mib} MiB each way`)
        get = startGet()
        get.catch(() => {})
        await Promise.race([reached, get.then(() => {}, () => {})])
        assert.equal(getSettled, false, 'the get is still running')
      } else {
        get = startGet()
      }
      const calls = { get, cat, put }
      for (const p of Object.values(calls)) p.catch(() => {})
      const st = local.stats()
      assert.ok(st.bytesIn < 2 * SIZE && st.bytesOut < SIZE, 'the transfers are still running')
      const stopping = local.stop()
      release()
      resumeCat()
      await stopping
      stopped = true
      for (const [name, p] of Object.entries(calls)) {
        const how = await outcome(p)
        assert.match(how, /^ClosedError ERR_CLOSED: /, `${name} ended with ${how}`)
      }
      // And every call after stop.
      assert.match(await outcome(local.get(a)), /^ClosedError ERR_CLOSED: /)
      assert.match(await outcome(drain(local.cat(a))), /^ClosedError ERR_CLOSED: /)
      assert.match(await outcome(local.put(new Uint8Array(10))), /^ClosedError ERR_CLOSED: /)
    })
  }

  for (const [when, head] of [['before its first piece', 0], ['after 300 KiB (a streamed put)', 300 * 1024]] as const) {
    it(`ends a put whose source stalls ${when} with ClosedError`, async function () {
      const local: LocalPeer = await createLocal({ global: global.multiaddrs })
      let stopped = false
      c.add(async () => { if (!stopped) await local.stop() })
      await local.ready()
      async function * stalled (): AsyncGenerator<Uint8Array> {
        if (head > 0) yield randomBytes(head)
        await new Promise(() => {}) // a source that never yields again (a FIFO with no writer)
      }
      const put = local.put(stalled())
      put.catch(() => {})
      if (head > 0) await waitFor(() => local.stats().bytesOut >= 256 * 1024, 10_000, 'the put to be under way')
      else await new Promise(resolve => setTimeout(resolve, 100))
      await local.stop()
      stopped = true
      const how = await Promise.race([outcome(put), new Promise<string>(resolve => setTimeout(() => { resolve('still pending 5 s after stop()') }, 5000))])
      assert.match(how, /^ClosedError ERR_CLOSED: /)
    })
  }
})
