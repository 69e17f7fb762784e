/**
 * The S3 store against a real S3 server (Swift + s3api): put and get of 1 B, 16 KiB + 1 and
 * 200 MiB (bounded memory), puts straight to the final key, UploadPartCopy, a Global killed
 * mid-put, leftovers of interrupted puts and deletes, a flipped byte in the bucket, verify and
 * repair, usage.
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { cidOfBytes } from '../src/core/cid.js'
import { createS3Store, verifyS3Store, type S3BlobStore } from '../src/core/store/s3.js'
import { TreeHasher } from '../src/core/tree.js'
import { collect, pseudoRandom } from './helpers.js'
import { chopped, expectReject } from './store-compliance.js'
import { createGlobal, type GlobalPeer } from '../src/index.js'
import { Cleanup, assertBytes, rejectsWith } from './net.js'
import { MiB, bigPieces, config, getBytes, hashOf, keys, s3, uploads, useS3Server } from './s3-store-fixture.js'

// One server for the whole file (a start costs seconds); the test that kills it comes last.
describe('s3 store (Swift s3api)', function () {
  this.timeout(60_000)
  useS3Server()

  describe('sizes, crash safety, corruption, verify', function () {
    describe('puts and gets', () => {
      let store: S3BlobStore
      afterEach(async () => { await store?.close() })

      for (const size of [1, 16 * 1024 + 1]) {
        it(`puts and gets a ${size}-byte value, with its outboard object beside it and no staging left`, async () => {
          const cfg = config()
          store = await createS3Store(cfg)
          const value = pseudoRandom(size, 90 + size)
          const cid = await store.put(value)
          assert.ok(cid.equals(cidOfBytes(value)))
          assert.deepEqual(await collect(store.cat(cid)), value)
          const { client, bucket } = s3()
          assert.deepEqual((await keys(cfg.prefix as string)).sort(), [`${cfg.prefix as string}blobs/${cid.toString()}`, `${cfg.prefix as string}outboards/${cid.toString()}`])
          assert.deepEqual(await getBytes(`${cfg.prefix as string}outboards/${cid.toString()}`), new TreeHasher({ outboard: true }).update(value).finalize().outboard)
        })
      }

      it('puts a 200 MiB stream in bounded memory (multipart through staging), and gets it back and by range', async function () {
        this.timeout(120_000)
        const cfg = config()
        store = await createS3Store(cfg)
        const expected = hashOf(bigPieces(200))
        const rssBefore = process.memoryUsage().rss
        let peak = 0
        const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
        const t0 = performance.now()
        let cid
        try {
          cid = await store.put(bigPieces(200))
        } finally { clearInterval(timer) }
        const putMs = performance.now() - t0
        assert.deepEqual(cid.multihash.digest, expected.root)
        assert.ok(peak - rssBefore < 150 * MiB, `RSS grew by ${Math.round((peak - rssBefore) / MiB)} MiB`)
        const { client, bucket } = s3()
        assert.deepEqual(await keys(`${cfg.prefix as string}staging/`), [])
        assert.deepEqual(await uploads(`${cfg.prefix as string}staging/`), [])
        assert.equal((await store.stat(cid)).size, 200 * MiB)
        // Whole value, hashed as it streams.
        const t1 = performance.now()
        const h = new TreeHasher()
        let n = 0
        for await (const piece of store.cat(cid)) { h.update(piece); n += piece.length }
        const getMs = performance.now() - t1
        assert.equal(n, 200 * MiB)
        assert.deepEqual(h.finalize().root, expected.root)
        // A range in the middle, and a reader across a part boundary.
        const pieces = [...bigPieces(200)]
        const got = await collect(store.cat(cid, { offset: 100 * MiB - 10, length: 20 }))
        assert.deepEqual(new Uint8Array(got), new Uint8Array(Buffer.concat([pieces[99].subarray(MiB - 10), pieces[100].subarray(0, 10)])))
        const reader = await store.open(cid)
        assert.deepEqual(await reader.read(8 * MiB - 3, 6), new Uint8Array(Buffer.concat([pieces[7].subarray(MiB - 3), pieces[8].subarray(0, 3)])))
        assert.deepEqual(await reader.read(8 * MiB + 3, 2), pieces[8].slice(3, 5))
        await reader.close()
        assert.deepEqual(await store.outboard(cid), expected.outboard)
        console.log(`      200 MiB: put ${(200 / (putMs / 1000)).toFixed(0)} MB/s, get ${(200 / (getMs / 1000)).toFixed(0)} MB/s, RSS +${Math.round((peak - rssBefore) / MiB)} MiB`)
      })

      it('does not upload a value already in the bucket (HEAD first when the CID is expected)', async () => {
        store = await createS3Store(config())
        const value = pseudoRandom(10 * MiB, 93)
        const cid = await store.put(value)
        // A source that would fail if the put read past its first piece and uploaded it.
        let yielded = 0
        async function * source (): AsyncGenerator<Uint8Array> { for (let o = 0; o < value.length; o += MiB) { yielded++; yield value.subarray(o, o + MiB) } }
        const before = await keys(`${store.prefix}staging/`)
        assert.ok((await store.put(source(), { expected: cid })).equals(cid))
        assert.deepEqual(before, [])
        assert.deepEqual(await uploads(`${store.prefix}staging/`), [])
        assert.equal(yielded, 10)
      })

      it('puts a large value with its CID expected straight to the final key (multipart completed only once verified)', async () => {
        const cfg = config()
        store = await createS3Store(cfg)
        const value = pseudoRandom(20 * MiB + 1, 92)
        const cid = cidOfBytes(value)
        assert.ok((await store.put(chopped(value), { expected: cid, size: value.length })).equals(cid))
        assert.deepEqual(await collect(store.cat(cid)), value)
        assert.deepEqual((await keys(cfg.prefix as string)).sort(), [`${cfg.prefix as string}blobs/${cid.toString()}`, `${cfg.prefix as string}outboards/${cid.toString()}`])
        assert.deepEqual(await uploads(cfg.prefix as string), [])
        assert.deepEqual((await verifyS3Store(store)).problems, [])
      })

      it('copies above the single-copy limit with UploadPartCopy (limit lowered to 6 MiB)', async () => {
        store = await createS3Store(config({ copySingleMax: 6 * MiB, partSize: 5 * MiB }))
        const value = pseudoRandom(17 * MiB + 3, 94)
        const cid = await store.put(chopped(value))
        assert.deepEqual(await collect(store.cat(cid)), value)
        assert.deepEqual(await store.outboard(cid), new TreeHasher({ outboard: true }).update(value).finalize().outboard)
      })

      it('a put whose multipart upload another Global\'s clean-up aborted fails with StorageError, not NotFoundError', async () => {
        const cfg = config()
        store = await createS3Store(cfg)
        let release!: () => void
        const gate = new Promise<void>(resolve => { release = resolve })
        async function * source (): AsyncGenerator<Uint8Array> {
          for (let i = 0; i < 2; i++) yield pseudoRandom(8 * MiB, 96 + i)
          await gate
          for (let i = 0; i < 2; i++) yield pseudoRandom(8 * MiB, 98 + i)
        }
        const put = store.put(source())
        put.catch(() => {})
        // Wait for the upload to exist, then let a second store (another Global) open with age 0.
        for (let i = 0; i < 200 && (await uploads(cfg.prefix as string)).length === 0; i++) await new Promise(resolve => setTimeout(resolve, 50))
        const other = await createS3Store({ ...cfg, stagingMaxAge: 0 })
        assert.equal(other.recovery.uploadsAborted, 1)
        await other.close()
        release()
        await assert.rejects(put, (err: Error) => err.name === 'StorageError' && /aborted/.test(err.message) && /stagingMaxAge/.test(err.message))
        assert.deepEqual(await keys(cfg.prefix as string), [])
      })

      it('rejects a large value whose hash is not the expected CID, leaving no staging and no final object', async () => {
        const cfg = config()
        store = await createS3Store(cfg)
        const value = pseudoRandom(20 * MiB, 95)
        await expectReject(store.put(value, { expected: cidOfBytes(new Uint8Array(1)) }), 'VerificationError')
        assert.deepEqual(await keys(cfg.prefix as string), [])
        assert.deepEqual(await uploads(cfg.prefix as string), [])
      })
    })

    describe('crash safety', () => {
      for (const mode of ['staging', 'final key'] as const) {
      it(`a Global killed mid-put (upload to the ${mode}) leaves no final object; the upload goes at the next open once old enough`, async function () {
        this.timeout(60_000)
        const cfg = config()
        const args = [join(dirname(fileURLToPath(import.meta.url)), 's3-put-child.js'), JSON.stringify(cfg)]
        if (mode === 'final key') args.push(cidOfBytes(new Uint8Array([1, 2, 3])).toString())
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
        const exited = new Promise(resolve => child.once('exit', resolve))
        // The child says when parts have reached the server, then keeps streaming.
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('parts-sent')) resolve() })
          child.once('exit', () => { reject(new Error('child exited early')) })
        })
        child.kill('SIGKILL')
        await exited
        const { client, bucket } = s3()
        const prefix = cfg.prefix as string
        assert.deepEqual(await keys(prefix), [], 'no object at all: no final object, no outboard')
        assert.equal((await uploads(mode === 'staging' ? `${prefix}staging/` : `${prefix}blobs/`)).length, 1, 'the interrupted multipart upload is there')
        // A young staging upload may be a put in progress on another Global: kept.
        const young = await createS3Store({ ...cfg, stagingMaxAge: 60 * 60 * 1000 })
        assert.deepEqual(young.recovery, { uploadsAborted: 0, objectsDeleted: 0, kept: 1 })
        if (mode === 'final key') await expectReject(collect(young.cat(cidOfBytes(new Uint8Array([1, 2, 3])))), 'NotFoundError')
        await young.close()
        const later = await createS3Store({ ...cfg, stagingMaxAge: 0 })
        assert.equal(later.recovery.uploadsAborted, 1)
        await later.close()
        assert.deepEqual(await uploads(prefix), [])
      })
      }

      it('a complete staging object left behind (killed between copy and delete) is removed at open and by verify --repair', async () => {
        const cfg = config()
        const { client, bucket } = s3()
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${cfg.prefix as string}staging/left-over`, Body: new Uint8Array(10) }))
        const first = await createS3Store({ ...cfg, stagingMaxAge: 60 * 60 * 1000 })
        assert.equal(first.recovery.kept, 1)
        const report = await verifyS3Store(first)
        assert.deepEqual(report.problems.map(p => p.problem), [])
        await first.close()
        const store = await createS3Store({ ...cfg, stagingMaxAge: 0 })
        assert.equal(store.recovery.objectsDeleted, 1)
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${cfg.prefix as string}staging/again`, Body: new Uint8Array(10) }))
        const found = await verifyS3Store(store)
        assert.deepEqual(found.problems.map(p => [p.problem, p.repaired]), [['staging', false]])
        const repaired = await verifyS3Store(store, { repair: true })
        assert.deepEqual(repaired.problems.map(p => [p.problem, p.repaired]), [['staging', true]])
        assert.deepEqual(await keys(`${cfg.prefix as string}staging/`), [])
        await store.close()
      })

      it('an outboard without its value (a delete interrupted between its two steps) is found and removed by verify', async () => {
        const cfg = config({ stagingMaxAge: 0 })
        const store = await createS3Store(cfg)
        const value = pseudoRandom(1000, 96)
        const cid = await store.put(value)
        const { client, bucket } = s3()
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${cfg.prefix as string}blobs/${cid.toString()}` }))
        assert.equal(await store.has(cid), false)
        const report = await verifyS3Store(store, { repair: true })
        assert.deepEqual(report.problems.map(p => [p.problem, p.repaired]), [['orphan-outboard', true]])
        assert.deepEqual(await keys(cfg.prefix as string), [])
        await store.close()
      })

      it('a value whose outboard is missing (a delete on another Global raced a put) has it rebuilt on first use', async () => {
        const cfg = config()
        const store = await createS3Store(cfg)
        const value = pseudoRandom(300_000, 97)
        const cid = await store.put(value)
        const { client, bucket } = s3()
        const obKey = `${cfg.prefix as string}outboards/${cid.toString()}`
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: obKey }))
        const expected = new TreeHasher({ outboard: true }).update(value).finalize().outboard
        const verified = await verifyS3Store(store)
        assert.deepEqual(verified.problems.map(p => p.problem), ['outboard'])
        assert.deepEqual(await store.outboard(cid), expected)
        assert.deepEqual(await getBytes(obKey), expected)
        await store.close()
      })
    })

    describe('corruption in the bucket', () => {
      it('a flipped byte: the store serves it (the receiver verifies), verifyRange and verify find it, repair quarantines it and a put heals it', async () => {
        const cfg = config()
        const store = await createS3Store(cfg)
        const value = pseudoRandom(200_000, 98)
        const cid = await store.put(value)
        const { client, bucket } = s3()
        const key = `${cfg.prefix as string}blobs/${cid.toString()}`
        const bad = value.slice()
        bad[150_000] ^= 1
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bad }))
        assert.deepEqual(await collect(store.cat(cid)), bad)
        const problem = await store.verifyRange(cid, { offset: 0, length: value.length })
        assert.equal(typeof problem, 'string')
        assert.equal(await store.verifyRange(cid, { offset: 0, length: 16 * 1024 }), undefined, 'a range before the flip verifies')
        const report = await verifyS3Store(store)
        assert.deepEqual(report.problems.map(p => [p.problem, p.cid?.toString(), p.repaired]), [['corrupt', cid.toString(), false]])
        assert.equal(await store.has(cid), true, 'verify without repair changes nothing')
        const repaired = await verifyS3Store(store, { repair: true })
        assert.equal(repaired.problems[0].repaired, true)
        assert.equal(await store.has(cid), false)
        const quarantined = await keys(`${cfg.prefix as string}quarantine/`)
        assert.equal(quarantined.length, 1)
        assert.deepEqual(await getBytes(quarantined[0]), bad)
        await store.put(value)
        assert.deepEqual(await collect(store.cat(cid)), value)
        assert.deepEqual((await verifyS3Store(store)).problems, [])
        await store.close()
      })

      it('a suspect value is replaced by the next put even though its object exists', async () => {
        const cfg = config()
        const store = await createS3Store(cfg)
        const value = pseudoRandom(50_000, 99)
        const cid = await store.put(value)
        const bad = value.slice()
        bad[10] ^= 0xff
        await s3().client.send(new PutObjectCommand({ Bucket: s3().bucket, Key: `${cfg.prefix as string}blobs/${cid.toString()}`, Body: bad }))
        store.markSuspect(cid)
        assert.equal(store.isSuspect(cid), true)
        await store.put(value, { expected: cid })
        assert.equal(store.isSuspect(cid), false)
        assert.deepEqual(await collect(store.cat(cid)), value)
        await store.close()
      })
    })

    describe('open and usage', () => {
      it('counts the values already in the bucket at open, then this process\'s puts and deletes', async () => {
        const cfg = config()
        const a = await createS3Store(cfg)
        await a.put(pseudoRandom(100, 1))
        await a.put(pseudoRandom(200, 2))
        await a.close()
        const b = await createS3Store(cfg)
        for (let i = 0; i < 50 && b.usage().values < 2; i++) await new Promise(resolve => setTimeout(resolve, 20))
        assert.deepEqual(b.usage(), { values: 2, bytes: 300 })
        const cid = await b.put(pseudoRandom(1000, 3))
        assert.deepEqual(b.usage(), { values: 3, bytes: 1300 })
        await b.delete(cid)
        assert.deepEqual(b.usage(), { values: 2, bytes: 300 })
        assert.equal(b.kind, 's3')
        await b.close()
      })

      it('fails to open with a typed error when the bucket does not exist', async () => {
        const err = await createS3Store(config({ bucket: 'no-such-bucket-here' })).then(() => undefined, (e: Error & { code?: string }) => e)
        assert.ok(err !== undefined, 'open failed')
        assert.ok(typeof err.code === 'string' && err.code.startsWith('ERR_'), `typed: ${String(err.code)} ${err.name}`)
      })
    })
  })

  describe('behind real Globals and Locals', function () {
    const c = new Cleanup()
    afterEach(async () => { await c.run() })

    /** A Global on 127.0.0.1 serving the S3 store `cfg` (Global closes the store at stop). */
    async function s3Global (cfg: ReturnType<typeof config>): Promise<GlobalPeer> {
      const g = await createGlobal({ repo: await c.dir('dstore-s3-global-'), listen: ['/ip4/127.0.0.1/tcp/0'], sync: false, store: await createS3Store(cfg) })
      c.add(async () => { await g.stop() })
      return g
    }

    it('a value written through Global A is read through Global B on the same bucket', async () => {
      const cfg = config()
      const a = await s3Global(cfg)
      const b = await s3Global(cfg)
      const value = pseudoRandom(3 * MiB + 5, 120)
      const cid = await (await c.local(a)).put(value)
      assertBytes(await (await c.local(b)).get(cid), value)
    })

    it('a flipped byte in the bucket: a Local\'s get fails with VerificationError, and verify finds the object', async () => {
      const cfg = config()
      const g = await s3Global(cfg)
      const value = pseudoRandom(300_000, 121)
      const cid = await (await c.local(g)).put(value)
      const bad = value.slice()
      bad[200_000] ^= 0x01
      const { client, bucket } = s3()
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${cfg.prefix as string}blobs/${cid.toString()}`, Body: bad }))
      // A fresh Local (nothing cached) fetches from Global, which serves the bucket's bytes as they are.
      await rejectsWith((await c.local(g)).get(cid), 'VerificationError')
      const store = await createS3Store(cfg)
      c.add(async () => { await store.close() })
      const report = await verifyS3Store(store)
      assert.deepEqual(report.problems.map(p => [p.problem, p.cid?.toString()]), [['corrupt', cid.toString()]])
    })
  })

  describe('when the server goes away', function () {

    it('fails with typed errors while the server is down, and works again once it is back, without reopening', async () => {
      const store = await createS3Store(config({ retry: { maxAttempts: 2, baseDelay: 10, maxDelay: 20 } }))
      try {
        const value = pseudoRandom(20_000, 130)
        const cid = await store.put(value)
        await s3().server.kill()
        await expectReject(store.has(cid), 'StoreUnavailableError')
        await expectReject(collect(store.cat(cid)), 'StoreUnavailableError')
        await expectReject(store.put(pseudoRandom(10, 131)), 'StoreUnavailableError')
        await s3().server.restart()
        assert.deepEqual(await collect(store.cat(cid)), value)
        assert.ok((await store.put(pseudoRandom(10, 131))).equals(cidOfBytes(pseudoRandom(10, 131))))
      } finally {
        await store.close()
      }
    })
  })
})
