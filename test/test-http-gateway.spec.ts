/**
 * The HTTP server on a real Global (startHttpServer + globalBackend), spoken to over real HTTP
 * (fetch, and node:http where a request must reach the server as written): the IPFS trustless
 * gateway for raw blocks (each header and status), dstore's writes and extensions, tokens and
 * read-only listeners.
 */
import { strict as assert } from 'node:assert'
import { Registry } from 'prom-client'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { identity } from 'multiformats/hashes/identity'
import {
  cidOfBytes, decodeRange, startHttpServer, globalBackend, isLoopbackHost,
  type GlobalPeer, type HttpServer, type HttpServerOptions
} from '../src/index.js'
import { collect, pseudoRandom } from './helpers.js'
import { raw } from './http.js'
import { Cleanup, KiB, MiB, assertBytes, waitFor } from './net.js'

const IMMUTABLE = 'public, max-age=29030400, immutable'

/** A response's JSON body, untyped (the test checks its fields). */
async function json (r: Response): Promise<any> { return await r.json() }

describe('http gateway', function () {
  this.timeout(30_000)
  const c = new Cleanup()
  let global: GlobalPeer
  let server: HttpServer
  let url: string
  const small = new TextEncoder().encode('hello trustless gateway')
  const big = pseudoRandom(3 * MiB + 123, 7) // above the inline threshold: a file in the store
  let smallCid: string
  let bigCid: string
  const absent = cidOfBytes(new TextEncoder().encode('never stored')).toString()

  async function serve (options: Partial<HttpServerOptions> = {}): Promise<HttpServer> {
    const s = await startHttpServer({ host: '127.0.0.1', port: 0, backend: globalBackend(global), ...options })
    c.add(async () => { await s.close() })
    return s
  }

  before(async function () {
    global = await c.global(await c.dir('dstore-http-gw-'))
    server = await serve()
    url = server.url
    smallCid = (await global.put(small)).toString()
    bigCid = (await global.put(big)).toString()
  })
  after(async function () { await c.run() })

  describe('isLoopbackHost', function () {
    it('knows loopback addresses and names from the rest', function () {
      for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h)
      for (const h of ['0.0.0.0', '::', '192.168.1.1', '10.0.0.1', 'example.com', '128.0.0.1']) assert.ok(!isLoopbackHost(h), h)
    })
  })

  describe('GET /ipfs/{cid}', function () {
    it('plain: the bytes as application/octet-stream, with every trustless-gateway header', async function () {
      const r = await fetch(`${url}/ipfs/${smallCid}`)
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('content-type'), 'application/octet-stream')
      assert.equal(r.headers.get('content-length'), String(small.length))
      assert.equal(r.headers.get('cache-control'), IMMUTABLE)
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(r.headers.get('content-disposition'), `attachment; filename="${smallCid}.bin"`)
      assert.equal(r.headers.get('etag'), `"${smallCid}"`)
      assert.equal(r.headers.get('accept-ranges'), 'bytes')
      assert.equal(r.headers.get('content-location'), null)
      assertBytes(new Uint8Array(await r.arrayBuffer()), small)
    })

    it('?format=raw: application/vnd.ipld.raw, ETag "{cid}.raw"', async function () {
      const r = await fetch(`${url}/ipfs/${smallCid}?format=raw`)
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('content-type'), 'application/vnd.ipld.raw')
      assert.equal(r.headers.get('etag'), `"${smallCid}.raw"`)
      assert.equal(r.headers.get('content-location'), null)
      assertBytes(new Uint8Array(await r.arrayBuffer()), small)
    })

    it('Accept: application/vnd.ipld.raw: the raw type, and Content-Location naming ?format=raw; format wins over Accept', async function () {
      const r = await fetch(`${url}/ipfs/${smallCid}`, { headers: { Accept: 'application/vnd.ipld.raw' } })
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('content-type'), 'application/vnd.ipld.raw')
      assert.equal(r.headers.get('content-location'), `/ipfs/${smallCid}?format=raw`)
      assert.match(r.headers.get('vary') ?? '', /Accept/)
      await r.arrayBuffer()
      const both = await fetch(`${url}/ipfs/${smallCid}?format=raw`, { headers: { Accept: 'application/octet-stream' } })
      assert.equal(both.headers.get('content-type'), 'application/vnd.ipld.raw')
      await both.arrayBuffer()
    })

    it('a large (file-backed) value streams whole, and ranges of it are exact', async function () {
      const r = await fetch(`${url}/ipfs/${bigCid}`)
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('content-length'), String(big.length))
      assertBytes(new Uint8Array(await r.arrayBuffer()), big)
      const start = 1 * MiB + 17
      const part = await fetch(`${url}/ipfs/${bigCid}`, { headers: { Range: `bytes=${start}-${start + 99_999}` } })
      assert.equal(part.status, 206)
      assert.equal(part.headers.get('content-range'), `bytes ${start}-${start + 99_999}/${big.length}`)
      assertBytes(new Uint8Array(await part.arrayBuffer()), big.subarray(start, start + 100_000))
    })

    it('HEAD: the same headers as GET, no body, and X-Dstore-Cached', async function () {
      const r = await fetch(`${url}/ipfs/${bigCid}?format=raw`, { method: 'HEAD' })
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('content-length'), String(big.length))
      assert.equal(r.headers.get('content-type'), 'application/vnd.ipld.raw')
      assert.equal(r.headers.get('etag'), `"${bigCid}.raw"`)
      assert.equal(r.headers.get('cache-control'), IMMUTABLE)
      assert.equal(r.headers.get('x-dstore-cached'), 'true')
      assert.equal((await r.arrayBuffer()).byteLength, 0)
    })

    it('If-None-Match with the ETag (strong, weak, in a list, or *) answers 304 with no body; another tag answers 200', async function () {
      for (const inm of [`"${smallCid}.raw"`, `W/"${smallCid}.raw"`, `"other", "${smallCid}.raw"`, '*']) {
        const r = await fetch(`${url}/ipfs/${smallCid}?format=raw`, { headers: { 'If-None-Match': inm } })
        assert.equal(r.status, 304, inm)
        assert.equal(r.headers.get('etag'), `"${smallCid}.raw"`)
        assert.equal(r.headers.get('cache-control'), IMMUTABLE)
        assert.equal((await r.arrayBuffer()).byteLength, 0)
      }
      // Preconditions come before Range: a malformed or unsatisfiable one does not turn a 304 into an error.
      for (const range of ['bytes=abc', `bytes=${small.length}-`]) {
        const r = await fetch(`${url}/ipfs/${smallCid}?format=raw`, { headers: { 'If-None-Match': `"${smallCid}.raw"`, Range: range } })
        assert.equal(r.status, 304, range)
      }
      const miss = await fetch(`${url}/ipfs/${smallCid}?format=raw`, { headers: { 'If-None-Match': `"${smallCid}"` } })
      assert.equal(miss.status, 200, 'the plain tag is another representation')
      assertBytes(new Uint8Array(await miss.arrayBuffer()), small)
    })

    it('Range: 206 with Content-Range and a range ETag for FIRST-LAST, FIRST-, -SUFFIX, and a LAST past the end', async function () {
      const n = small.length
      const cases: Array<[string, number, number]> = [['bytes=2-4', 2, 4], ['bytes=5-', 5, n - 1], ['bytes=-3', n - 3, n - 1], ['bytes=0-999999', 0, n - 1], ['bytes=-999', 0, n - 1]]
      for (const [header, first, last] of cases) {
        const r = await fetch(`${url}/ipfs/${smallCid}?format=raw`, { headers: { Range: header } })
        assert.equal(r.status, 206, header)
        assert.equal(r.headers.get('content-range'), `bytes ${first}-${last}/${n}`, header)
        assert.equal(r.headers.get('content-length'), String(last - first + 1), header)
        assert.equal(r.headers.get('etag'), `"${smallCid}.raw.${first}-${last}"`, header)
        assertBytes(new Uint8Array(await r.arrayBuffer()), small.subarray(first, last + 1), header)
      }
    })

    it('Range: an unsatisfiable one is 416 with Content-Range bytes */SIZE; a malformed one is 400; another unit or several ranges get the whole value', async function () {
      for (const header of [`bytes=${small.length}-`, 'bytes=999-1000', 'bytes=-0']) {
        const r = await fetch(`${url}/ipfs/${smallCid}`, { headers: { Range: header } })
        assert.equal(r.status, 416, header)
        assert.equal(r.headers.get('content-range'), `bytes */${small.length}`, header)
        assert.equal((await json(r)).error.code, 'ERR_RANGE_NOT_SATISFIABLE')
      }
      for (const header of ['bytes=abc', 'bytes=5-2', 'bytes=-', 'bytes 0-1', 'bytes=1-2-3', 'bytes=99999999999999999999-']) {
        const r = await fetch(`${url}/ipfs/${smallCid}`, { headers: { Range: header } })
        assert.equal(r.status, 400, header)
        assert.equal((await json(r)).error.code, 'ERR_BAD_RANGE', header)
      }
      for (const header of ['items=0-1', 'bytes=0-1,4-5']) {
        const r = await fetch(`${url}/ipfs/${smallCid}`, { headers: { Range: header } })
        assert.equal(r.status, 200, header)
        assertBytes(new Uint8Array(await r.arrayBuffer()), small, header)
      }
    })

    it('GET /ipfs/bafkqaaa?format=raw (the spec\'s probe, the empty identity CID): 200, empty; HEAD too', async function () {
      const r = await fetch(`${url}/ipfs/bafkqaaa?format=raw`)
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('content-type'), 'application/vnd.ipld.raw')
      assert.equal(r.headers.get('content-length'), '0')
      assert.equal((await r.arrayBuffer()).byteLength, 0)
      const h = await fetch(`${url}/ipfs/bafkqaaa`, { method: 'HEAD', headers: { Accept: 'application/vnd.ipld.raw' } })
      assert.equal(h.status, 200)
    })

    it('another raw identity CID is served from the bytes inside it, ranges too', async function () {
      const inside = new TextEncoder().encode('inline bytes')
      const id = CID.createV1(0x55, identity.digest(inside)).toString()
      const r = await fetch(`${url}/ipfs/${id}?format=raw`)
      assert.equal(r.status, 200)
      assertBytes(new Uint8Array(await r.arrayBuffer()), inside)
      const part = await fetch(`${url}/ipfs/${id}`, { headers: { Range: 'bytes=7-' } })
      assert.equal(part.status, 206)
      assert.equal(await part.text(), 'bytes')
    })

    it('a malformed CID, or one that is not raw BLAKE3 (sha2-256, dag-pb, CIDv0), is 400 InvalidCIDError', async function () {
      const sha = CID.createV1(0x55, await sha256.digest(small)).toString()
      const dagpb = CID.createV1(0x70, await sha256.digest(small)).toString()
      const v0 = CID.createV0(await sha256.digest(small)).toString()
      for (const bad of ['not-a-cid', 'bafk', sha, dagpb, v0, smallCid.slice(0, -2)]) {
        const r = await fetch(`${url}/ipfs/${bad}?format=raw`)
        assert.equal(r.status, 400, bad)
        assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8')
        const body = await json(r)
        assert.equal(body.error.name, 'InvalidCIDError', bad)
        assert.equal(typeof body.error.message, 'string')
      }
    })

    it('a value not stored is 404 NotFoundError (GET and HEAD); a HEAD answer names the error in X-Dstore-Error-Code/-Message', async function () {
      const r = await fetch(`${url}/ipfs/${absent}?format=raw`)
      assert.equal(r.status, 404)
      const { error } = await json(r)
      assert.equal(error.name, 'NotFoundError')
      const head = await fetch(`${url}/ipfs/${absent}`, { method: 'HEAD' })
      assert.equal(head.status, 404)
      assert.equal(head.headers.get('x-dstore-error-code'), 'ERR_NOT_FOUND')
      assert.equal(decodeURIComponent(head.headers.get('x-dstore-error-message') ?? ''), error.message)
    })

    it('format=car is 400 (raw blocks only); an Accept only for CAR is 406', async function () {
      const car = await fetch(`${url}/ipfs/${smallCid}?format=car`)
      assert.equal(car.status, 400)
      assert.equal((await json(car)).error.code, 'ERR_UNSUPPORTED_FORMAT')
      const accept = await fetch(`${url}/ipfs/${smallCid}`, { headers: { Accept: 'application/vnd.ipld.car' } })
      assert.equal(accept.status, 406)
      await accept.arrayBuffer()
    })

    it('a path under the CID is 400: raw blocks have none', async function () {
      const r = await fetch(`${url}/ipfs/${smallCid}/file.txt`)
      assert.equal(r.status, 400)
      await r.arrayBuffer()
    })

    it('Cache-Control: only-if-cached is 412 for a value the backend does not have at hand (a Local\'s miss), with X-Dstore-Cached: false on HEAD', async function () {
      const real = globalBackend(global)
      const s = await serve({ backend: { ...real, stat: async (key, options) => ({ ...await real.stat(key, options), cached: false }) } })
      const r = await fetch(`${s.url}/ipfs/${smallCid}`, { headers: { 'Cache-Control': 'only-if-cached' } })
      assert.equal(r.status, 412)
      assert.equal((await json(r)).error.code, 'ERR_NOT_CACHED')
      const h = await fetch(`${s.url}/ipfs/${smallCid}`, { method: 'HEAD' })
      assert.equal(h.headers.get('x-dstore-cached'), 'false')
    })

    it('a backend failing after the first piece cuts the response (the client sees an error, never a short body taken for whole); the server serves on', async function () {
      const real = globalBackend(global)
      const lines: string[] = []
      const s = await serve({
        log: (line) => { lines.push(line) },
        backend: {
          ...real,
          cat: (key, range, options) => (async function * () {
            let n = 0
            for await (const piece of real.cat(key, range, options)) {
              if (n++ === 1) throw new Error('disk gone')
              yield piece
            }
          })()
        }
      })
      const r = await fetch(`${s.url}/ipfs/${bigCid}`)
      assert.equal(r.status, 200)
      await assert.rejects(r.arrayBuffer())
      // The server says why (the client saw only a short transfer), once.
      await waitFor(() => lines.some(l => /cut after the head was sent: Error: disk gone/.test(l)), 5000)
      assert.equal(lines.filter(l => /disk gone/.test(l)).length, 1, lines.join('\n'))
      const ok = await fetch(`${s.url}/ipfs/${smallCid}`)
      assertBytes(new Uint8Array(await ok.arrayBuffer()), small)
    })

    it('Cache-Control: only-if-cached is served on Global (everything is at hand)', async function () {
      const r = await fetch(`${url}/ipfs/${smallCid}`, { headers: { 'Cache-Control': 'only-if-cached' } })
      assert.equal(r.status, 200)
      await r.arrayBuffer()
    })
  })

  describe('dstore extensions', function () {
    it('?format=dstore-bao&offset&length: the bao encoding, X-Dstore-Size, verified by decodeRange against the CID', async function () {
      const offset = 2 * MiB - 5
      const length = 300 * KiB
      const r = await fetch(`${url}/ipfs/${bigCid}?format=dstore-bao&offset=${offset}&length=${length}`)
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('content-type'), 'application/vnd.dstore.bao')
      assert.equal(r.headers.get('x-dstore-size'), String(big.length))
      const body = new Uint8Array(await r.arrayBuffer())
      assert.equal(r.headers.get('content-length'), String(body.length))
      const digest = CID.parse(bigCid).multihash.digest
      const bytes = await collect(decodeRange([body], digest, { offset, length }))
      assertBytes(bytes, big.subarray(offset, offset + length))
      // A flipped byte does not verify.
      body[body.length - 10] ^= 1
      await assert.rejects(collect(decodeRange([body], digest, { offset, length })), { name: 'VerificationError' })
    })

    it('?format=dstore-bao without length runs to the end; a bad offset is 400', async function () {
      const r = await fetch(`${url}/ipfs/${smallCid}?format=dstore-bao`)
      const body = new Uint8Array(await r.arrayBuffer())
      assertBytes(await collect(decodeRange([body], CID.parse(smallCid).multihash.digest, { offset: 0, length: Infinity })), small)
      for (const q of ['offset=-1', 'offset=x', 'length=1.5', 'offset=']) {
        const bad = await fetch(`${url}/ipfs/${smallCid}?format=dstore-bao&${q}`)
        assert.equal(bad.status, 400, q)
        await bad.arrayBuffer()
      }
    })

    it('GET /dstore/v1/ls: one {"cid","size"} per line', async function () {
      const r = await fetch(`${url}/dstore/v1/ls`)
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('content-type'), 'application/x-ndjson')
      const lines = (await r.text()).trim().split('\n').map(l => JSON.parse(l))
      assert.ok(lines.some(l => l.cid === smallCid && l.size === small.length))
      assert.ok(lines.some(l => l.cid === bigCid && l.size === big.length))
    })

    it('POST /dstore/v1/missing: the CIDs of the list not stored; a body that is not an array of CIDs is 400', async function () {
      const r = await fetch(`${url}/dstore/v1/missing`, { method: 'POST', body: JSON.stringify([smallCid, absent, bigCid]) })
      assert.equal(r.status, 200)
      assert.deepEqual(await json(r), [absent])
      for (const body of ['{}', 'not json', '[1]', '["nope"]']) {
        const bad = await fetch(`${url}/dstore/v1/missing`, { method: 'POST', body })
        assert.equal(bad.status, 400, body)
        await bad.arrayBuffer()
      }
    })

    it('GET /status is JSON from the backend; GET / is an HTML page with a strict CSP; /metrics is 404 without metrics', async function () {
      const s = await fetch(`${url}/status`)
      assert.equal(s.status, 200)
      const status = await json(s)
      assert.equal(status.role, 'global')
      assert.equal(status.peerId, global.peerId)
      const page = await fetch(`${url}/`)
      assert.equal(page.status, 200)
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/)
      assert.match(await page.text(), /<html|<!doctype/i)
      const m = await fetch(`${url}/metrics`)
      assert.equal(m.status, 404)
      await m.arrayBuffer()
    })

    it('with metrics: /metrics answers their text and type, every request is observed once with a fixed route label, and page() is served at /', async function () {
      const seen: Array<[string, number, string]> = []
      const metrics = {
        registry: new Registry(),
        contentType: 'text/plain; version=0.0.4; charset=utf-8',
        observeRequest: (method: string, status: number, seconds: number, route: string) => { assert.ok(seconds >= 0); seen.push([method, status, route]) },
        text: async () => '# HELP x y\nx 1\n'
      }
      const s = await serve({ metrics, page: () => '<!doctype html><title>custom page</title>' })
      const m = await fetch(`${s.url}/metrics`)
      assert.equal(m.status, 200)
      assert.equal(m.headers.get('content-type'), metrics.contentType)
      assert.equal(await m.text(), '# HELP x y\nx 1\n')
      assert.match(await (await fetch(`${s.url}/`)).text(), /custom page/)
      await (await fetch(`${s.url}/ipfs/${absent}`)).arrayBuffer()
      await (await fetch(`${s.url}/nothing/here`)).arrayBuffer()
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.deepEqual(seen, [['GET', 200, 'metrics'], ['GET', 200, 'page'], ['GET', 404, 'ipfs'], ['GET', 404, 'other']])
    })
  })

  describe('writes', function () {
    it('POST /ipfs: 201, Location /ipfs/{cid}, JSON { cid, size }; the value is stored', async function () {
      const bytes = pseudoRandom(200 * KiB, 3)
      const r = await fetch(`${url}/ipfs`, { method: 'POST', body: bytes })
      assert.equal(r.status, 201)
      const cid = cidOfBytes(bytes).toString()
      assert.deepEqual(await json(r), { cid, size: bytes.length })
      assert.equal(r.headers.get('location'), `/ipfs/${cid}`)
      assert.ok(await global.has(cid))
    })

    it('POST /ipfs with an empty body stores the empty value', async function () {
      const r = await fetch(`${url}/ipfs`, { method: 'POST', body: new Uint8Array(0) })
      assert.equal(r.status, 201)
      assert.deepEqual(await json(r), { cid: cidOfBytes(new Uint8Array(0)).toString(), size: 0 })
    })

    it('PUT /ipfs/{cid}: 201 when the body hashes to it; 400 VerificationError and nothing stored when it does not', async function () {
      const bytes = pseudoRandom(100 * KiB, 4)
      const cid = cidOfBytes(bytes).toString()
      const ok = await fetch(`${url}/ipfs/${cid}`, { method: 'PUT', body: bytes })
      assert.equal(ok.status, 201)
      assert.deepEqual(await json(ok), { cid, size: bytes.length })
      const other = pseudoRandom(100 * KiB, 5)
      const otherCid = cidOfBytes(other).toString()
      const claimed = cidOfBytes(pseudoRandom(10, 6)).toString()
      const bad = await fetch(`${url}/ipfs/${claimed}`, { method: 'PUT', body: other })
      assert.equal(bad.status, 400)
      assert.equal((await json(bad)).error.name, 'VerificationError')
      assert.ok(!await global.has(claimed))
      assert.ok(!await global.has(otherCid), 'the bytes sent are not stored under their own CID either')
    })

    it('DELETE /ipfs/{cid}: 200 { cid, removed: true }, then GET is 404 and DELETE again is 404', async function () {
      const bytes = new TextEncoder().encode('delete me')
      const cid = (await global.put(bytes)).toString()
      const r = await fetch(`${url}/ipfs/${cid}`, { method: 'DELETE' })
      assert.equal(r.status, 200)
      assert.deepEqual(await json(r), { cid, removed: true })
      assert.equal((await fetch(`${url}/ipfs/${cid}`, { method: 'HEAD' })).status, 404)
      const again = await fetch(`${url}/ipfs/${cid}`, { method: 'DELETE' })
      assert.equal(again.status, 404)
      await again.arrayBuffer()
    })

    it('another method is 405 with Allow', async function () {
      const r = await fetch(`${url}/ipfs/${smallCid}`, { method: 'PATCH', body: 'x' })
      assert.equal(r.status, 405)
      assert.match(r.headers.get('allow') ?? '', /GET/)
      assert.match((await json(r)).error.message, /^PATCH is not allowed here/, 'the message names the method sent, not its metrics label')
    })
  })

  describe('access', function () {
    it('a tokened listener: writes without the token, or with a wrong one, are 401 (nothing stored); with it, 201; reads need none', async function () {
      const s = await serve({ token: 's3cret-token' })
      const bytes = new TextEncoder().encode('tokened write')
      const cid = cidOfBytes(bytes).toString()
      for (const auth of [undefined, 'Bearer wrong', 'Bearer s3cret-tokenX', 'Basic czNjcmV0LXRva2Vu', 'Bearer ', 's3cret-token']) {
        const r = await fetch(`${s.url}/ipfs`, { method: 'POST', body: bytes, headers: auth === undefined ? {} : { Authorization: auth } })
        assert.equal(r.status, 401, String(auth))
        assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="dstore"')
        assert.equal((await json(r)).error.code, 'ERR_UNAUTHORIZED')
      }
      assert.ok(!await global.has(cid))
      const del = await fetch(`${s.url}/ipfs/${smallCid}`, { method: 'DELETE' })
      assert.equal(del.status, 401)
      await del.arrayBuffer()
      const ok = await fetch(`${s.url}/ipfs`, { method: 'POST', body: bytes, headers: { Authorization: 'Bearer s3cret-token' } })
      assert.equal(ok.status, 201)
      await ok.arrayBuffer()
      assert.equal((await fetch(`${s.url}/ipfs/${cid}`, { method: 'HEAD' })).status, 200)
    })

    it('a read-only listener answers writes 403 PermissionDeniedError and serves reads', async function () {
      const s = await serve({ writable: false })
      for (const [method, path] of [['POST', '/ipfs'], ['PUT', `/ipfs/${smallCid}`], ['DELETE', `/ipfs/${smallCid}`]]) {
        const r = await fetch(`${s.url}${path}`, { method, body: method === 'DELETE' ? undefined : small })
        assert.equal(r.status, 403, method)
        assert.equal((await json(r)).error.name, 'PermissionDeniedError')
      }
      assert.ok(await global.has(smallCid))
      assert.equal((await fetch(`${s.url}/ipfs/${smallCid}`, { method: 'HEAD' })).status, 200)
    })

    it('refuses to start writable on a non-loopback host without a token (ConfigError); without `writable` such a listener is read-only', async function () {
      await assert.rejects(startHttpServer({ host: '0.0.0.0', port: 0, backend: globalBackend(global), writable: true }), { name: 'ConfigError' })
      const s = await serve({ host: '0.0.0.0' })
      const port = new URL(s.url).port
      const r = await fetch(`http://127.0.0.1:${port}/ipfs`, { method: 'POST', body: small })
      assert.equal(r.status, 403)
      await r.arrayBuffer()
      const withToken = await serve({ host: '0.0.0.0', token: 't0ken' })
      const w = await fetch(`http://127.0.0.1:${new URL(withToken.url).port}/ipfs`, { method: 'POST', body: small, headers: { Authorization: 'Bearer t0ken' } })
      assert.equal(w.status, 201)
      await w.arrayBuffer()
    })

    it('refuses cross-site writes (an Origin of another site) and, on loopback, requests for a non-loopback Host (DNS rebinding)', async function () {
      const evil = await raw(url, '/ipfs', { method: 'POST', body: 'csrf', headers: { Origin: 'http://evil.example', 'Content-Type': 'text/plain' } })
      assert.equal(evil.status, 403)
      assert.ok(!await global.has(cidOfBytes(new TextEncoder().encode('csrf'))))
      const same = await raw(url, '/ipfs', { method: 'POST', body: 'same origin', headers: { Origin: url } })
      assert.equal(same.status, 201)
      const rebound = await raw(url, `/ipfs/${smallCid}`, { headers: { Host: 'evil.example' } })
      assert.equal(rebound.status, 403)
      assert.equal(JSON.parse(rebound.body.toString()).error.code, 'ERR_BAD_HOST')
      const named = await raw(url, `/ipfs/${smallCid}`, { headers: { Host: `localhost:${server.port}` } })
      assert.equal(named.status, 200)
    })
  })
})
