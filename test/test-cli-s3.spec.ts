/**
 * `dstore global --store s3://…` and `dstore verify --store s3://…` through the real binary,
 * against a real S3 server (OpenStack Swift with s3api, test/s3-server.ts): put, get, ls and rm
 * with the values in the bucket; a bad flag, URL, endpoint or key is one readable line and a
 * non-zero exit; /status and /metrics name the store and count its S3 requests; verify finds a
 * flipped byte in a bucket object and --repair quarantines it; and the S3 server stopping and
 * starting under a reading Local gives typed errors, then service again with no restart of Global.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { createLocal, type LocalPeer } from '../src/index.js'
import { pseudoRandom, tempDir } from './helpers.js'
import { ONE_LINE, blake3Cid, dstore, freePort, startGlobal, stopGlobal, type Daemon } from './proc.js'
import { parseProm } from './prom.js'
import { s3ServerUnavailable, startS3Server, type S3Server } from './s3-server.js'

async function keys (client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))
  return (out.Contents ?? []).map(o => o.Key ?? '').sort()
}

describe('dstore CLI on the S3 store (a real S3 server)', function () {
  this.timeout(60_000)
  let server: S3Server
  let client: S3Client
  let bucket: string
  let dir: { path: string, cleanup: () => Promise<void> }
  let env: Record<string, string>
  let n = 0
  /** A fresh prefix per test: tests share the bucket, not its keys. */
  const prefix = (): string => `t${++n}-${Date.now().toString(36)}`
  const s3Flags = (p: string): string[] => ['--store', `s3://${bucket}/${p}`, '--s3-endpoint', server.endpoint, '--s3-path-style']

  before(async function () {
    // The SDK's one-time warning that its 2027 releases need Node 22 (this build pins one that does not).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    const why = s3ServerUnavailable()
    if (why !== undefined) { console.log(`skipped: ${why}`); this.skip() }
    server = await startS3Server()
    client = server.client()
    bucket = await server.createBucket()
    dir = await tempDir('dstore-cli-s3-')
    env = { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_REGION: server.region }
  })

  after(async function () {
    client?.destroy()
    await server?.stop()
    await dir?.cleanup()
  })

  const global = async (p: string, extra: string[] = []): Promise<Daemon> =>
    await startGlobal(['--repo', join(dir.path, `g-${p}`), '--listen', '/ip4/127.0.0.1/tcp/0', ...s3Flags(p), ...extra], { env })

  it('puts, gets, lists and removes values that live in the bucket, and names the store in /status and /metrics', async function () {
    const p = prefix()
    const g = await global(p)
    try {
      assert.match(g.stdout(), new RegExp(`^Store: s3://${bucket}/${p}/ at ${server.endpoint}$`, 'm'))
      const value = pseudoRandom(300 * 1024 + 1, 3)
      const file = join(dir.path, `${p}.bin`)
      await writeFile(file, value)
      const cenv = { DSTORE_REPO: join(dir.path, `c-${p}`) }
      const put = await dstore(['put', '--no-daemon', '--global', g.addr, file], { env: cenv })
      assert.equal(put.code, 0, put.stderr)
      const cid = put.out.trim()
      assert.equal(cid, blake3Cid(value))
      // The value and its outboard are objects in the bucket, under the prefix; no staging left.
      assert.deepEqual(await keys(client, bucket, `${p}/`), [`${p}/blobs/${cid}`, `${p}/outboards/${cid}`])

      const got = await dstore(['get', '--no-daemon', '--global', g.addr, cid], { env: cenv })
      assert.equal(got.code, 0, got.stderr)
      assert.ok(Buffer.compare(got.stdout, Buffer.from(value)) === 0, 'the bytes read back')
      const ls = await dstore(['ls', '--no-daemon', '--global', g.addr], { env: cenv })
      assert.equal(ls.code, 0, ls.stderr)
      assert.match(ls.out, new RegExp(`^${cid}\\b`, 'm'))

      const url = /^HTTP: (\S+) /m.exec(g.stdout())?.[1]
      assert.ok(url, g.stdout())
      const status = await (await fetch(`${url}/status`)).json() as any
      assert.equal(status.store.kind, 's3')
      assert.ok(status.store.requests.requests > 0)
      assert.ok(status.store.requests.operations.GetObject.requests >= 1, JSON.stringify(status.store.requests))
      assert.equal(status.store.requests.errors >= 0, true)
      const prom = parseProm(await (await fetch(`${url}/metrics`)).text())
      assert.equal(prom.get('dstore_store_info{kind="s3"}'), 1)
      assert.ok((prom.get('dstore_s3_requests_total{operation="GetObject"}') ?? 0) >= 1)
      assert.ok(prom.has('dstore_s3_retries_total{operation="GetObject"}'))

      const rm = await dstore(['rm', '--no-daemon', '--global', g.addr, cid], { env: cenv })
      assert.equal(rm.code, 0, rm.stderr)
      assert.deepEqual(await keys(client, bucket, `${p}/blobs/`), [])
      const gone = await dstore(['get', '--no-daemon', '--global', g.addr, cid], { env: cenv })
      assert.equal(gone.code, 1)
      assert.match(gone.stderr, ONE_LINE)
      // The misses (HEAD 404s) and everything else were answered, not logged as SDK dumps.
      assert.doesNotMatch(g.stderr(), /\[object Object\]|s3: error/)
    } finally {
      await stopGlobal(g)
    }
  })

  it('takes the endpoint from AWS_ENDPOINT_URL (and the region from AWS_REGION) when no flag names it', async function () {
    const p = prefix()
    // Without the fallback this would go to AWS itself and fail on the test key.
    const r = await dstore(['verify', '--store', `s3://${bucket}/${p}`, '--s3-path-style'], { env: { ...env, AWS_ENDPOINT_URL: server.endpoint } })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.out, /checked 0 value\(s\).*all good/)
    // The service-specific variable wins over the general one.
    const s = await dstore(['verify', '--store', `s3://${bucket}/${p}`, '--s3-path-style'], { env: { ...env, AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_S3: server.endpoint } })
    assert.equal(s.code, 0, s.stderr)
  })

  describe('refuses what cannot work, in one line with a non-zero exit', function () {
    const refuses = async (args: string[], code: number, pattern: RegExp, extraEnv: Record<string, string> = env): Promise<void> => {
      const r = await dstore(['global', '--repo', join(dir.path, 'refused'), '--listen', '/ip4/127.0.0.1/tcp/0', '--http', 'off', ...args], { env: extraEnv })
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, pattern)
      assert.doesNotMatch(r.stderr, /\bat \S+ \(|\$metadata|\[object Object\]/, 'no stack and no raw SDK error')
    }

    it('a --store that is not s3://BUCKET[/PREFIX], or a bad bucket name: exit 2', async function () {
      await refuses(['--store', 'http://example.com/bucket'], 2, /not s3:\/\/BUCKET/)
      await refuses(['--store', 's3://'], 2, /not a bucket name/)
      await refuses(['--store', 's3://a b/x'], 2, /not a bucket name/)
      // A name the store itself refuses (upper case, '_', '..') is refused as usage too, not at open.
      await refuses(['--store', 's3://Bad_Bucket'], 2, /not a bucket name/)
      await refuses(['--store', 's3://a..b'], 2, /not a bucket name/)
      await refuses(['--store', `s3://${bucket}/a//b`], 2, /empty/)
    })

    it('an --s3-* flag without --store, or an endpoint that is not a URL: exit 2', async function () {
      await refuses(['--s3-endpoint', server.endpoint], 2, /--s3-endpoint needs --store/)
      await refuses(['--s3-path-style'], 2, /--s3-path-style needs --store/)
      await refuses(['--store', `s3://${bucket}`, '--s3-endpoint', 'not a url'], 2, /is not a URL/)
      await refuses(['--store', `s3://${bucket}`, '--s3-endpoint', 'ftp://127.0.0.1:1'], 2, /http/)
      await refuses(['--store', `s3://${bucket}`, '--s3-region', 'no/such'], 2, /region/)
    })

    it('a wrong secret key, a bucket that does not exist, a server that is not there: exit 1', async function () {
      await refuses([...s3Flags(prefix())], 1, /denied|credentials|signature|access key/i, { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' })
      await refuses(['--store', `s3://no-such-bucket-${Date.now().toString(36)}`, '--s3-endpoint', server.endpoint, '--s3-path-style'], 1, /the bucket no-such-bucket-\S+ does not exist/)
      const nobody = `http://127.0.0.1:${await freePort()}`
      await refuses(['--store', `s3://${bucket}`, '--s3-endpoint', nobody, '--s3-path-style'], 1, /unavailable|reach|refused|connect/i)
    })
  })

  it('verify --store finds a flipped byte in a bucket object, and --repair quarantines it', async function () {
    const p = prefix()
    const g = await global(p)
    const value = pseudoRandom(64 * 1024 + 5, 9)
    const file = join(dir.path, `${p}.bin`)
    await writeFile(file, value)
    const cenv = { DSTORE_REPO: join(dir.path, `c-${p}`) }
    let cid: string
    try {
      const put = await dstore(['put', '--no-daemon', '--global', g.addr, file], { env: cenv })
      assert.equal(put.code, 0, put.stderr)
      cid = put.out.trim()
      const good = await dstore(['verify', ...s3Flags(p)], { env })
      assert.equal(good.code, 0, good.stderr)
      assert.match(good.out, /checked 1 value\(s\).*all good/)

      // One byte flipped in the bucket, behind the Global's back.
      const key = `${p}/blobs/${cid}`
      const body = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray())
      body[40_000] ^= 0x01
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))
    } finally {
      // A Global on S3 need not be stopped for verify; stopped here so nothing else reads.
      await stopGlobal(g)
    }

    const bad = await dstore(['verify', ...s3Flags(p)], { env })
    assert.equal(bad.code, 1, bad.stderr)
    assert.match(bad.out, new RegExp(`corrupt\\t${cid}\\t`))
    assert.match(bad.stderr, ONE_LINE)
    assert.deepEqual((await keys(client, bucket, `${p}/blobs/`)), [`${p}/blobs/${cid}`], 'without --repair nothing moves')

    const json = await dstore(['verify', '--json', ...s3Flags(p)], { env })
    assert.equal(json.code, 1)
    const doc = JSON.parse(json.out)
    assert.equal(doc.ok, false)
    assert.equal(doc.bad[0].cid, cid)

    const repaired = await dstore(['verify', '--repair', ...s3Flags(p)], { env })
    assert.equal(repaired.code, 1, repaired.stderr)
    assert.match(repaired.out, /quarantined/)
    assert.deepEqual(await keys(client, bucket, `${p}/blobs/`), [])
    assert.equal((await keys(client, bucket, `${p}/quarantine/`)).length, 1)
    const again = await dstore(['verify', ...s3Flags(p)], { env })
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.out, /checked 0 value\(s\)/)
  })

  it('the S3 server stopped and started while a Local reads: typed errors, then service again with no restart of Global', async function () {
    const p = prefix()
    const g = await global(p)
    let local: LocalPeer | undefined
    try {
      local = await createLocal({ global: [g.addr], cacheSize: 0, connectTimeout: 5000 })
      const values = [pseudoRandom(200 * 1024, 21), pseudoRandom(10, 22), pseudoRandom(200 * 1024, 23)]
      const cids = []
      for (const v of values) cids.push(await local.put(v))
      assert.deepEqual(await local.get(cids[0]), values[0])

      await server.kill()
      // Reads while the server is down: each fails, and with a typed dstore error, not a raw one.
      for (const cid of cids) {
        await assert.rejects(local.get(cid), (err: any) => {
          assert.equal(err.name, 'StoreUnavailableError', `${String(err.name)} ${String(err.code)}: ${String(err.message)}`)
          assert.equal(err.code, 'ERR_STORE_UNAVAILABLE')
          assert.doesNotMatch(String(err.message), /\$metadata|\[object Object\]/)
          return true
        })
      }
      await server.restart()
      // The same Global process, the same Local: reads work again.
      for (let i = 0; i < cids.length; i++) assert.deepEqual(await local.get(cids[i]), values[i])
      assert.equal(g.proc.exitCode, null, 'Global never stopped')
      const url = /^HTTP: (\S+) /m.exec(g.stdout())?.[1]
      const status = await (await fetch(`${url}/status`)).json() as any
      assert.ok(status.store.requests.errors > 0, 'the failures were counted')
    } finally {
      await local?.stop()
      await stopGlobal(g)
    }
  })
})
