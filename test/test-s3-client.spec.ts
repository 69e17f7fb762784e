/**
 * The S3 client layer (src/core/store/s3/client.ts) against a real S3 server: OpenStack Swift
 * with s3api and tempauth (test/s3-server.ts). Error mapping, bounded retries on real
 * throttling and on a killed server, per-operation counters, recovery after a restart.
 */
import { strict as assert } from 'node:assert'
import { Readable } from 'node:stream'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, GetObjectCommand,
  HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, UploadPartCopyCommand, type S3Client
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import {
  createS3Client, parseS3Url, resolveS3Config, s3Body, s3Error, s3Stats, type S3Config
} from '../src/core/store/s3/client.js'
import { StoreUnavailableError } from '../src/core/errors.js'
import { startS3Server, type S3Server } from './s3-server.js'
import { pseudoRandom } from './helpers.js'
import { MiB, rejectsWith } from './net.js'

describe('s3 client', function () {
  this.timeout(40_000)

  describe('parseS3Url', () => {
    it('splits a bucket and a prefix, which ends in one slash', () => {
      assert.deepEqual(parseS3Url('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' })
      assert.deepEqual(parseS3Url('s3://my-bucket/'), { bucket: 'my-bucket', prefix: '' })
      assert.deepEqual(parseS3Url('s3://my.bucket/a/b'), { bucket: 'my.bucket', prefix: 'a/b/' })
      assert.deepEqual(parseS3Url('s3://b12/a/b//'), { bucket: 'b12', prefix: 'a/b/' })
    })

    it('refuses what is not an s3 URL, a bad bucket name or a bad prefix with ConfigError', () => {
      for (const url of ['http://bucket/x', 's3:/bucket', 's3://', 's3://ab', 's3://Bucket', 's3://a_b/x', 's3://-ab/x', 's3://bucket/a//b', 's3://bucket/../x', `s3://bucket/${'p'.repeat(600)}`]) {
        assert.throws(() => parseS3Url(url), (err: Error) => err.name === 'ConfigError', url)
      }
    })
  })

  describe('resolveS3Config', () => {
    it('takes the endpoint and region from the AWS environment, explicit settings first', () => {
      const env = { AWS_ENDPOINT_URL: 'http://127.0.0.1:9000', AWS_REGION: 'eu-west-3' }
      const fromEnv = resolveS3Config({ bucket: 'bucket' }, env)
      assert.equal(fromEnv.endpoint, 'http://127.0.0.1:9000')
      assert.equal(fromEnv.region, 'eu-west-3')
      const explicit = resolveS3Config({ bucket: 'bucket', endpoint: 'https://s3.example', region: 'us-west-2' }, env)
      assert.equal(explicit.endpoint, 'https://s3.example')
      assert.equal(explicit.region, 'us-west-2')
      assert.equal(resolveS3Config({ bucket: 'bucket' }, { ...env, AWS_ENDPOINT_URL_S3: 'http://s3only:1' }).endpoint, 'http://s3only:1')
    })

    it('defaults the region to us-east-1 for a custom endpoint, and leaves it to the SDK for AWS', () => {
      assert.equal(resolveS3Config({ bucket: 'bucket', endpoint: 'http://127.0.0.1:1' }, {}).region, 'us-east-1')
      assert.equal(resolveS3Config({ bucket: 'bucket' }, {}).region, undefined)
      assert.equal(resolveS3Config({ bucket: 'bucket' }, {}).endpoint, undefined)
    })

    it('leaves the region to the profile when AWS_PROFILE is set, even with a custom endpoint (README: "else the profile\'s")', async () => {
      assert.equal(resolveS3Config({ bucket: 'bucket', endpoint: 'http://127.0.0.1:1' }, { AWS_PROFILE: 'p1' }).region, undefined)
      // Through the client the SDK then reads the profile's region from the shared config file.
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dstore-s3-profile-'))
      const saved = { AWS_PROFILE: process.env.AWS_PROFILE, AWS_CONFIG_FILE: process.env.AWS_CONFIG_FILE, AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION }
      try {
        await fs.writeFile(path.join(dir, 'config'), '[profile p1]\nregion = eu-west-1\n')
        Object.assign(process.env, { AWS_PROFILE: 'p1', AWS_CONFIG_FILE: path.join(dir, 'config') })
        delete process.env.AWS_REGION
        delete process.env.AWS_DEFAULT_REGION
        const c = createS3Client({ bucket: 'bucket', endpoint: 'http://127.0.0.1:1', forcePathStyle: true })
        try {
          assert.equal(await c.config.region(), 'eu-west-1')
        } finally {
          c.destroy()
        }
      } finally {
        for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v }
        await fs.rm(dir, { recursive: true, force: true })
      }
    })

    it('refuses a bad endpoint or bound with ConfigError', () => {
      for (const c of [{ endpoint: 'not a url' }, { endpoint: 'ftp://x' }, { retry: { maxAttempts: 0 } }, { retry: { baseDelay: -1 } }, { maxSockets: 1.5 }]) {
        assert.throws(() => resolveS3Config({ bucket: 'bucket', ...c } as S3Config, {}), (err: Error) => err.name === 'ConfigError', JSON.stringify(c))
      }
    })
  })

  describe('against Swift s3api', () => {
    let server: S3Server
    let throttled: S3Server
    let bucket: string
    const clients: S3Client[] = []

    function client (extra: Partial<S3Config> = {}, on: S3Server = server): S3Client {
      const c = createS3Client({ ...on.config(bucket), retry: { baseDelay: 10, maxDelay: 50 }, ...extra })
      clients.push(c)
      return c
    }

    before(async function () {
      // Start-up is CPU-bound Python: two at once on a loaded 2-core machine can take 20 s or more.
      this.timeout(90_000)
      // Both servers start at once; one that started is kept (and stopped in after) even when the other fails.
      const started = await Promise.allSettled([
        // Objects over 9 MiB are refused (413), as objects over 5 GiB are by default.
        startS3Server({ bucket: 'client-test', maxObjectSize: 9 * MiB }),
        startS3Server({ bucket: 'client-test', ratelimit: 1 })
      ])
      if (started[0].status === 'fulfilled') server = started[0].value
      if (started[1].status === 'fulfilled') throttled = started[1].value
      for (const r of started) if (r.status === 'rejected') throw r.reason
      bucket = server.bucket!
    })

    after(async () => {
      for (const c of clients) c.destroy()
      await Promise.all([server?.stop(), throttled?.stop()])
    })

    it('puts a streamed body and gets it back, counting each operation', async () => {
      const s3 = client()
      const data = pseudoRandom(100_000, 3)
      // A stream body with the SDK's default checksums is sent aws-chunked, which Swift answers with 501.
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'rt/one', Body: Readable.from([data.subarray(0, 50_000), data.subarray(50_000)]), ContentLength: data.length }))
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'rt/one' }))
      const chunks: Uint8Array[] = []
      for await (const c of s3Body(got.Body, 'GetObject')) chunks.push(c)
      assert.ok(Buffer.concat(chunks).equals(data))
      const ranged = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'rt/one', Range: 'bytes=10-19' }))
      assert.ok(Buffer.from(await ranged.Body!.transformToByteArray()).equals(data.subarray(10, 20)))
      assert.deepEqual(s3Stats(s3), {
        GetObject: { requests: 2, errors: 0, notFound: 0, retries: 0 },
        PutObject: { requests: 1, errors: 0, notFound: 0, retries: 0 }
      })
      // The process-wide view includes this client's calls.
      assert.ok(s3Stats().GetObject.requests >= 2)
    })

    it('finds the endpoint, region and credentials in the standard AWS environment', async () => {
      const saved = { ...process.env }
      try {
        Object.assign(process.env, server.env())
        const s3 = createS3Client({ bucket, forcePathStyle: true })
        clients.push(s3)
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'rt/one' }))
        assert.equal(head.ContentLength, 100_000)
      } finally {
        for (const k of Object.keys(server.env())) {
          if (saved[k] === undefined) delete process.env[k]
          else process.env[k] = saved[k]
        }
      }
    })

    it('counts lib-storage multipart uploads through the same client', async () => {
      const s3 = client()
      const part = 5 * MiB
      const data = pseudoRandom(2 * part + 1, 4)
      const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: 'rt/multi', Body: Readable.from([data]) }, partSize: part, queueSize: 2 })
      await upload.done()
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'rt/multi' }))
      assert.equal(head.ContentLength, data.length)
      const stats = s3Stats(s3)
      assert.equal(stats.CreateMultipartUpload?.requests, 1)
      assert.equal(stats.UploadPart?.requests, 3)
      assert.equal(stats.CompleteMultipartUpload?.requests, 1)
    })

    it('survives a large put the server refuses before reading its body, as TooLargeError', async () => {
      // With Agent instances of our own, the SDK sent the body without waiting for 100 Continue,
      // and the refused socket's EPIPE was an unhandled 'error' that killed the process.
      const s3 = client()
      await rejectsWith(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'rt/too-big', Body: new Uint8Array(10 * MiB) })), 'TooLargeError')
      await new Promise(resolve => setTimeout(resolve, 200))
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'rt/one' }))
      assert.equal(head.ContentLength, 100_000)
    })

    it('copies an object over the max object size with UploadPartCopy ranges, where CopyObject is TooLargeError', async () => {
      const s3 = client()
      const data = pseudoRandom(12 * MiB, 6)
      await new Upload({ client: s3, params: { Bucket: bucket, Key: 'rt/large', Body: data }, partSize: 6 * MiB, queueSize: 2 }).done()
      await rejectsWith(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'rt/large-copy', CopySource: `${bucket}/rt/large` })), 'TooLargeError')
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'rt/large-copy' }))
      const parts = []
      for (const [n, from, to] of [[1, 0, 7 * MiB - 1], [2, 7 * MiB, 12 * MiB - 1]]) {
        const r = await s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'rt/large-copy', UploadId, PartNumber: n, CopySource: `${bucket}/rt/large`, CopySourceRange: `bytes=${from}-${to}` }))
        parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag })
      }
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'rt/large-copy', UploadId, MultipartUpload: { Parts: parts } }))
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'rt/large-copy' }))
      assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data))
    })

    it('maps a missing key to NotFoundError, counted as notFound and not as an error', async () => {
      const s3 = client()
      await rejectsWith(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'missing' })), 'NotFoundError')
      await rejectsWith(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'missing' })), 'NotFoundError')
      assert.deepEqual(s3Stats(s3), {
        GetObject: { requests: 1, errors: 0, notFound: 1, retries: 0 },
        HeadObject: { requests: 1, errors: 0, notFound: 1, retries: 0 }
      })
    })

    it('maps a missing bucket to StorageError naming it, not to NotFoundError', async () => {
      const s3 = client()
      await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'x' })), (err: Error) => {
        assert.equal(err.name, 'StorageError')
        assert.match(err.message, /s3:\/\/no-such-bucket.* does not exist/)
        return true
      })
    })

    it('maps a wrong secret to PermissionDeniedError, with or without a response body', async () => {
      const s3 = client({ credentials: { accessKeyId: server.accessKeyId, secretAccessKey: 'wrong' } })
      await rejectsWith(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'rt/one' })), 'PermissionDeniedError')
      await rejectsWith(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'rt/denied', Body: 'x' })), 'PermissionDeniedError')
      await rejectsWith(client({ credentials: { accessKeyId: 'nobody:none', secretAccessKey: 'x' } }).send(new GetObjectCommand({ Bucket: bucket, Key: 'rt/one' })), 'PermissionDeniedError')
      assert.equal(s3Stats(s3).PutObject.errors, 1)
      assert.equal(s3Stats(s3).PutObject.retries, 0, 'a 403 is not retried')
    })

    it('maps a wrong region to ConfigError', async () => {
      await rejectsWith(client({ region: 'eu-west-1' }).send(new PutObjectCommand({ Bucket: bucket, Key: 'rt/region', Body: 'x' })), 'ConfigError')
    })

    it('maps a range outside the object to OutOfRangeError', async () => {
      await rejectsWith(client().send(new GetObjectCommand({ Bucket: bucket, Key: 'rt/one', Range: 'bytes=200000-200010' })), 'OutOfRangeError')
    })

    it('maps what Swift does not implement (a conditional put: 501) to StorageError, without retrying it', async () => {
      const s3 = client()
      await assert.rejects(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'rt/cond', Body: 'x', IfNoneMatch: '*' })), (err: Error) => {
        assert.equal(err.name, 'StorageError')
        assert.match(err.message, /NotImplemented 501/)
        return true
      })
      assert.deepEqual(s3Stats(s3).PutObject, { requests: 1, errors: 1, notFound: 0, retries: 0 })
    })

    it('maps an aborted call to AbortError', async () => {
      const controller = new AbortController()
      controller.abort()
      await rejectsWith(client().send(new HeadObjectCommand({ Bucket: bucket, Key: 'rt/one' }), { abortSignal: controller.signal }), 'AbortError')
    })

    it('turns anything unknown into a dstore error, and passes dstore errors through', () => {
      const raw = Object.assign(new Error('boom'), { name: 'WeirdThing', $metadata: { httpStatusCode: 418 } })
      const mapped = s3Error(raw, 'GetObject', 's3://b/k')
      assert.equal(mapped.name, 'StorageError')
      assert.match(mapped.message, /GetObject s3:\/\/b\/k failed: WeirdThing 418: boom/)
      assert.equal(mapped.cause, raw)
      const typed = new StoreUnavailableError('x')
      assert.equal(s3Error(typed, 'GetObject'), typed)
    })

    it('retries 503 SlowDown with backoff until the throttled server lets the writes through', async () => {
      // Swift's ratelimit middleware lets 1 object write a second through per bucket, and
      // refuses the rest at once: 498, which s3api answers as 503 SlowDown.
      const once = client({ retry: { maxAttempts: 1 } }, throttled)
      // Swift limits only a bucket that holds an object, as its cached bucket info says: a
      // listing refreshes that.
      await once.send(new PutObjectCommand({ Bucket: bucket, Key: 'slow/first', Body: 'x' }))
      await once.send(new ListObjectsV2Command({ Bucket: bucket }))
      // 12 at once: on a loaded machine Swift's proxy may take each of 4 a second apart, and
      // so refuse none (0 of 4 refused in one CI run).
      const burst = await Promise.allSettled(Array.from({ length: 12 }, async (_, i) =>
        await once.send(new PutObjectCommand({ Bucket: bucket, Key: `slow/once-${i}`, Body: 'x' }))))
      const refused = burst.filter(r => r.status === 'rejected')
      assert.ok(refused.length >= 1, `the server throttles a burst (${refused.length} of 12 refused)`)
      for (const r of refused) assert.equal((r as PromiseRejectedResult).reason.name, 'StoreUnavailableError')
      assert.match((refused[0] as PromiseRejectedResult).reason.message, /SlowDown/)

      const patient = client({ retry: { maxAttempts: 12, baseDelay: 300, maxDelay: 1500 } }, throttled)
      await Promise.all(Array.from({ length: 3 }, async (_, i) =>
        await patient.send(new PutObjectCommand({ Bucket: bucket, Key: `slow/retried-${i}`, Body: 'x' }))))
      const stats = s3Stats(patient).PutObject
      assert.equal(stats.requests, 3)
      assert.equal(stats.errors, 0)
      assert.ok(stats.retries >= 1, `throttled writes were retried (${stats.retries} retries)`)
    })

    it('cuts a body read off by a killed server with StoreUnavailableError', async () => {
      const s3 = client()
      const data = pseudoRandom(24 * MiB, 5)
      await new Upload({ client: s3, params: { Bucket: bucket, Key: 'rt/big', Body: data }, partSize: 8 * MiB, queueSize: 2 }).done()
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'rt/big' }))
      let read = 0
      await assert.rejects((async () => {
        for await (const chunk of s3Body(got.Body, 'GetObject', 's3://client-test/rt/big')) {
          if (read === 0) await server.kill()
          read += chunk.length
        }
      })(), (err: Error) => {
        assert.equal(err.name, 'StoreUnavailableError', `${err.name}: ${err.message}`)
        return true
      })
      assert.ok(read < data.length, 'the body was cut short')
      await server.restart()
    })

    it('fails with StoreUnavailableError after the bounded retries while the server is down, and works again once it is back', async () => {
      const s3 = client({ retry: { maxAttempts: 3, baseDelay: 10, maxDelay: 50 } })
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'rt/one' })) // a kept-alive socket to the server
      await server.kill()
      const started = Date.now()
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'rt/one' })), (err: Error) => {
        assert.equal(err.name, 'StoreUnavailableError')
        assert.match(err.message, /after 3 attempts/)
        return true
      })
      assert.ok(Date.now() - started < 5000, 'the retries are bounded in time')
      assert.deepEqual(s3Stats(s3).HeadObject, { requests: 2, errors: 1, notFound: 0, retries: 2 })

      await server.restart()
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'rt/one' }))
      assert.equal(head.ContentLength, 100_000, 'the data survived the restart')
    })
  })
})
