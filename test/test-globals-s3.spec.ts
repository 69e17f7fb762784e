/**
 * Several Globals on ONE S3 bucket (issue #13 cases), against the real S3 server (Swift +
 * s3api, test/s3-server.ts): each Global has its own S3 store instance on the same bucket and
 * prefix, as separate machines would. A value written through A is read through B; a delete
 * through A evicts from a Local connected only to B; B unreachable during a delete is reported
 * and B's Locals drop the value once B is back, or within their re-check period.
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { createGlobal, PartialDeleteError, type GlobalPeer } from '../src/index.js'
import { createS3Store, type S3StoreOptions } from '../src/core/store/s3.js'
import { repoPeerId } from '../src/peers/identity.js'
import { startS3Server, type S3Server } from './s3-server.js'
import { freePort } from './proc.js'
import { collect } from './helpers.js'
import { assertBytes, Cleanup, MiB, waitFor } from './net.js'

describe('several Globals on one S3 bucket (Swift s3api)', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  let server: S3Server
  let bucket: string
  let counter = 0

  before(async function () {
    server = await startS3Server()
    bucket = await server.createBucket()
  })
  after(async function () {
    await c.run()
    await server?.stop()
  })

  interface Member { id: string, repo: string, port: number, addr: string, peer?: GlobalPeer, start: () => Promise<GlobalPeer>, stop: () => Promise<void> }

  /** Two Globals, each with its own S3 store on one bucket and prefix; `deadPeerOfA`: A knows B by an address nothing answers at. */
  async function pair (options: { deadPeerOfA?: boolean } = {}): Promise<[Member, Member]> {
    const config: S3StoreOptions = {
      bucket,
      prefix: `g${process.pid}-${++counter}/`,
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey }
    }
    const members: Member[] = []
    for (let i = 0; i < 2; i++) {
      const repo = await c.dir(`dstore-gs3-${i}-`)
      const id = await repoPeerId(repo, 'global')
      const port = await freePort()
      members.push({ id, repo, port, addr: `/ip4/127.0.0.1/tcp/${port}/p2p/${id}`, start: undefined as any, stop: undefined as any })
    }
    const dead = await freePort()
    members.forEach((m, i) => {
      const other = members[1 - i]
      const peerAddr = i === 0 && options.deadPeerOfA === true ? other.addr.replace(/tcp\/\d+/, `tcp/${dead}`) : other.addr
      m.start = async () => {
        m.peer = await createGlobal({ repo: m.repo, listen: [`/ip4/127.0.0.1/tcp/${m.port}`], store: await createS3Store(config), peerGlobals: [peerAddr], evictTimeout: 2000 })
        return m.peer
      }
      m.stop = async () => { await m.peer?.stop(); m.peer = undefined }
      c.add(async () => { await m.stop() })
    })
    for (const m of members) await m.start()
    return members as [Member, Member]
  }

  it('a value written through Global A is read through Global B (1 B, 16 KiB + 1, 3 MiB)', async function () {
    const [a, b] = await pair()
    const onA = await c.local([a.addr])
    const onB = await c.local([b.addr])
    for (const size of [1, 16 * 1024 + 1, 3 * MiB]) {
      const value = randomBytes(size)
      const cid = await onA.put(value)
      assert.equal(await onB.has(cid), true)
      assertBytes(await onB.get(cid), value, `${size} B through B`)
      assertBytes(await collect(b.peer!.cat(cid)), value, `${size} B from B's store`)
    }
  })

  it('a delete through A evicts the value from a Local connected only to B', async function () {
    const [a, b] = await pair()
    const onA = await c.local([a.addr])
    const onB = await c.local([b.addr])
    const cid = await onA.put(randomBytes(20_000))
    await onB.get(cid)
    assert.equal(await onB.cache.has(cid), true)
    assert.equal(await onA.delete(cid), true)
    assert.equal(await onB.cache.has(cid), false, 'evicted on B when the delete returned')
    assert.equal(await b.peer!.has(cid), false, 'gone from the bucket for B too')
  })

  it('B down during a delete through A: PartialDeleteError names B; B\'s Local drops the value once B is back', async function () {
    const [a, b] = await pair()
    const onB = await c.local([b.addr], { recheckInterval: 0 })
    const cid = await a.peer!.put(randomBytes(5000))
    await onB.get(cid)
    await b.stop()
    await waitFor(() => !onB.connected, 10_000, 'the Local on B to see B go')
    await assert.rejects(a.peer!.delete(cid), (err: Error) => err instanceof PartialDeleteError && err.unanswered[0] === b.id)
    assert.equal(await a.peer!.has(cid), false)
    assert.equal(await onB.cache.has(cid), true, 'the Local on B could not be told')
    await b.start()
    await onB.ready()
    assert.equal(await onB.cache.has(cid), false, 'dropped by the reconciliation once B is back')
  })

  it('A cannot reach B during a delete: reported, and B\'s Local drops the value within its re-check period', async function () {
    const [a, b] = await pair({ deadPeerOfA: true })
    const period = 500
    const onB = await c.local([b.addr], { recheckInterval: period })
    const cid = await a.peer!.put(randomBytes(5000))
    await onB.get(cid)
    await assert.rejects(a.peer!.delete(cid), (err: Error) => err instanceof PartialDeleteError && err.unanswered[0] === b.id)
    const deletedAt = Date.now()
    await waitFor(async () => !(await onB.cache.has(cid)), 10_000, 'the re-check to drop the value')
    assert.ok(Date.now() - deletedAt <= period + 3000, `dropped within the period (+ a STAT on S3), ${Date.now() - deletedAt} ms`)
  })
})
