/**
 * Several Globals serving one store (issue #13, "Several Globals"): real Globals on 127.0.0.1
 * in this process sharing ONE fs store instance, real Locals. Spread by rendezvous hashing,
 * failover of calls in flight, deletes relayed between Globals (peerGlobals), a peer Global
 * unreachable during a delete (PartialDeleteError; its Locals reconcile when it is back, or
 * drop the value at their next re-check).
 */
import { strict as assert } from 'node:assert'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createFsStore } from '../src/core/store/fs.js'
import type { GlobalStore } from '../src/core/store/interface.js'
import { PartialDeleteError } from '../src/index.js'
import { startMesh } from './globals-mesh.js'
import { freePort } from './proc.js'
import { collect } from './helpers.js'
import { assertBytes, Cleanup, MiB, waitFor } from './net.js'

describe('several Globals on one store', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  let store: GlobalStore
  before(async function () {
    store = await createFsStore({ path: join(await c.dir('dstore-globals-store-'), 'store'), sync: false })
    c.add(async () => { await store.close() })
  })
  after(async function () { await c.run() })

  it('spreads a Local\'s gets across the Globals (rendezvous on the CID), each key to one Global', async function () {
    const [a, b] = await startMesh(c, store, 2)
    const local = await c.local([a.addr, b.addr], { cacheSize: 0 })
    assert.equal(local.globalCount, 2)
    await local.ready()
    await waitFor(() => local.stats().globalsConnected === 2, 10_000, 'both Globals connected')
    const values = Array.from({ length: 24 }, () => randomBytes(1000))
    const cids = await Promise.all(values.map(async v => await a.peer!.put(v)))
    const before = [a.peer!.stats().bytesOut, b.peer!.stats().bytesOut]
    for (let i = 0; i < cids.length; i++) assertBytes(await local.get(cids[i]), values[i])
    const servedA = a.peer!.stats().bytesOut - before[0]
    const servedB = b.peer!.stats().bytesOut - before[1]
    assert.ok(servedA > 0 && servedB > 0, `both Globals served gets (A ${servedA} B ${servedB} bytes)`)
    // The same key goes to the same Global again: fetching all again moves the same bytes each.
    for (let i = 0; i < cids.length; i++) await local.get(cids[i])
    assert.equal(a.peer!.stats().bytesOut - before[0], 2 * servedA, 'A served the same keys again')
    assert.equal(b.peer!.stats().bytesOut - before[1], 2 * servedB, 'B served the same keys again')
  })

  it('a get in flight on a Global that stops is retried on the other (the value arrives whole)', async function () {
    const [a, b] = await startMesh(c, store, 2)
    const local = await c.local([a.addr, b.addr])
    await waitFor(() => local.stats().globalsConnected === 2, 10_000, 'both Globals connected')
    const value = randomBytes(48 * MiB)
    const cid = await a.peer!.put(value)
    const base = [a.peer!.stats().bytesOut, b.peer!.stats().bytesOut]
    const got = local.get(cid)
    got.catch(() => {})
    await waitFor(() => local.stats().bytesIn >= 2 * MiB, 30_000, 'the get to be under way')
    const serving = a.peer!.stats().bytesOut - base[0] > b.peer!.stats().bytesOut - base[1] ? a : b
    const other = serving === a ? b : a
    await serving.stop()
    assertBytes(await got, value)
    assert.ok(other.peer!.stats().bytesOut > 0, 'the other Global served the retry')
    // And later calls go to the Global that is left.
    const small = randomBytes(100)
    const cid2 = await local.put(small)
    assertBytes(await collect(other.peer!.cat(cid2)), small)
  })

  it('a put in flight on a Global that stops is retried on the other', async function () {
    const [a, b] = await startMesh(c, store, 2)
    const local = await c.local([a.addr, b.addr])
    await waitFor(() => local.stats().globalsConnected === 2, 10_000, 'both Globals connected')
    const value = randomBytes(48 * MiB)
    const base = [a.peer!.stats().bytesIn, b.peer!.stats().bytesIn]
    const put = local.put(value)
    put.catch(() => {})
    await waitFor(() => local.stats().bytesOut >= 2 * MiB, 30_000, 'the put to be under way')
    const serving = a.peer!.stats().bytesIn - base[0] > b.peer!.stats().bytesIn - base[1] ? a : b
    await serving.stop()
    const cid = await put
    assertBytes(await collect(store.cat(cid)), value)
  })

  it('a delete through A evicts the value from a Local connected only to B, before it returns', async function () {
    const [a, b] = await startMesh(c, store, 2)
    const onB = await c.local([b.addr])
    const onA = await c.local([a.addr])
    const cid = await onA.put(randomBytes(5000))
    await onB.get(cid)
    assert.equal(await onB.cache.has(cid), true)
    assert.equal(await onA.delete(cid), true)
    assert.equal(await onB.cache.has(cid), false, 'evicted from the Local on B when the delete returned')
    assert.equal(onB.stats().invalidations, 1)
    // Through Global A's own API too.
    const cid2 = await b.peer!.put(randomBytes(10))
    await onB.get(cid2)
    assert.equal(await a.peer!.delete(cid2), true)
    assert.equal(await onB.cache.has(cid2), false)
  })

  it('after B restarts, the next delete through A reaches B\'s Locals again (the relay channel is dialled afresh)', async function () {
    const [a, b] = await startMesh(c, store, 2)
    const onB = await c.local([b.addr])
    const first = await a.peer!.put(randomBytes(100))
    await onB.get(first)
    assert.equal(await a.peer!.delete(first), true) // opens A's relay channel to B
    await b.stop()
    await b.start()
    await onB.ready()
    const second = await a.peer!.put(randomBytes(100))
    await onB.get(second)
    assert.equal(await a.peer!.delete(second), true)
    assert.equal(await onB.cache.has(second), false)
  })

  it('B down during a delete through A: PartialDeleteError names B, the value is gone, and B\'s Locals drop it once B is back', async function () {
    const [a, b] = await startMesh(c, store, 2)
    const onB = await c.local([b.addr], { recheckInterval: 0 })
    const cid = await a.peer!.put(randomBytes(5000))
    await onB.get(cid)
    await b.stop()
    await waitFor(() => !onB.connected, 10_000, 'the Local on B to see B go')
    const started = Date.now()
    await assert.rejects(a.peer!.delete(cid), (err: Error) => {
      assert.ok(err instanceof PartialDeleteError, `${err.name}: ${err.message}`)
      assert.deepEqual(err.unanswered, [b.id])
      assert.match(err.message, new RegExp(b.id))
      return true
    })
    assert.ok(Date.now() - started < 10_000, 'bounded by the eviction timeout')
    assert.equal(await store.has(cid), false, 'the value is deleted all the same')
    assert.equal(await onB.cache.has(cid), true, 'the Local on B could not be told')
    await b.start()
    await onB.ready()
    assert.equal(await onB.cache.has(cid), false, 'dropped by the reconciliation once B is back')
  })

  it('a Local deleting through A sees PartialDeleteError over the wire (typed), and its own copy is gone', async function () {
    const deadPort = await freePort()
    const [a] = await startMesh(c, store, 2, { peerAddr: (i, j, real) => i === 0 ? real.replace(/tcp\/\d+/, `tcp/${deadPort}`) : real })
    const onA = await c.local([a.addr])
    const cid = await onA.put(randomBytes(100))
    await assert.rejects(onA.delete(cid), (err: Error) => err.name === 'PartialDeleteError' && (err as PartialDeleteError).code === 'ERR_PARTIAL_DELETE')
    assert.equal(await onA.cache.has(cid), false)
    assert.equal(await store.has(cid), false)
  })

  it('A cannot reach B (a partition) during a delete: reported, and B\'s Locals drop the value within the re-check period', async function () {
    const deadPort = await freePort()
    // A knows B by an address nothing answers at; B and its Locals are up.
    const [a, b] = await startMesh(c, store, 2, { peerAddr: (i, j, real) => i === 0 ? real.replace(/tcp\/\d+/, `tcp/${deadPort}`) : real })
    const period = 500
    const onB = await c.local([b.addr], { recheckInterval: period })
    const cid = await a.peer!.put(randomBytes(5000))
    await onB.get(cid)
    const keep = await a.peer!.put(randomBytes(10))
    await onB.get(keep)
    await assert.rejects(a.peer!.delete(cid), (err: Error) => err instanceof PartialDeleteError && err.unanswered[0] === b.id)
    const deletedAt = Date.now()
    assert.equal(onB.connected, true)
    await waitFor(async () => !(await onB.cache.has(cid)), 10_000, 'the re-check to drop the value')
    const after = Date.now() - deletedAt
    assert.ok(after <= period + 2000, `dropped ${after} ms after the delete (period ${period} ms)`)
    assert.equal(await onB.cache.has(keep), true, 'a value B still has stays cached')
    assert.ok(onB.stats().rechecks >= 1)
  })

  it('a Local that reaches no Global at its re-check drops its whole cache (staleness bounded across a partition)', async function () {
    const [, b] = await startMesh(c, store, 2)
    const onB = await c.local([b.addr], { recheckInterval: 400, connectTimeout: 300 })
    const cid = await b.peer!.put(randomBytes(100))
    await onB.get(cid)
    await b.stop()
    await waitFor(async () => !(await onB.cache.has(cid)), 10_000, 'the failed re-check to drop the cache')
    assert.ok(onB.stats().recheckFailures >= 1)
  })

  it('one Global: a Local keeps its single-Global behaviour (retries on the same Global once it is back)', async function () {
    const [a] = await startMesh(c, store, 1)
    const local = await c.local([a.addr], { connectTimeout: 10_000 })
    const value = randomBytes(100)
    const cid = await a.peer!.put(value)
    await local.ready()
    assert.equal(local.globalCount, 1)
    await a.stop()
    const got = local.get(cid)
    await new Promise(resolve => setTimeout(resolve, 300))
    await a.start()
    assertBytes(await got, value)
  })
})
