/**
 * Bad input on the HTTP port, each case followed by a normal GET that must still be served:
 * oversized bodies (413, nothing stored), a client that leaves mid-body (nothing stored, no
 * temp file), slowloris (header and idle deadlines), 1,000 concurrent requests, a full queue
 * (503 + Retry-After), odd paths, oversized heads and garbage bytes.
 */
import { strict as assert } from 'node:assert'
import { readdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { request } from 'node:http'
import { cidOfBytes, startHttpServer, globalBackend, type GlobalPeer, type HttpServer, type HttpServerOptions } from '../src/index.js'
import { pseudoRandom } from './helpers.js'
import { raw, rawSocket, statusIn } from './http.js'
import { Cleanup, MiB, assertBytes, waitFor } from './net.js'

describe('http abuse', function () {
  this.timeout(30_000)
  const c = new Cleanup()
  let global: GlobalPeer
  let repo: string
  const value = new TextEncoder().encode('still served')
  let cid: string

  async function serve (options: Partial<HttpServerOptions> = {}): Promise<HttpServer> {
    const s = await startHttpServer({ host: '127.0.0.1', port: 0, backend: globalBackend(global), ...options })
    c.add(async () => { await s.close() })
    return s
  }

  /** The server still answers a normal GET, with the right bytes. */
  async function stillServes (s: HttpServer): Promise<void> {
    const r = await fetch(`${s.url}/ipfs/${cid}?format=raw`)
    assert.equal(r.status, 200)
    assertBytes(new Uint8Array(await r.arrayBuffer()), value)
  }

  async function tmpFiles (): Promise<string[]> {
    return await readdir(join(repo, 'store', 'tmp')).catch(() => [])
  }

  before(async function () {
    repo = await c.dir('dstore-http-abuse-')
    global = await c.global(repo)
    cid = (await global.put(value)).toString()
  })
  after(async function () { await c.run() })

  describe('bodies', function () {
    it('a body over maxBlobSize with Content-Length: 413 before it is read, nothing stored', async function () {
      const s = await serve({ maxBlobSize: 1000 })
      const body = pseudoRandom(5000, 11)
      const r = await raw(s.url, '/ipfs', { method: 'POST', body })
      assert.equal(r.status, 413)
      assert.equal(JSON.parse(r.body.toString()).error.name, 'TooLargeError')
      assert.ok(!await global.has(cidOfBytes(body)))
      await stillServes(s)
    })

    it('a chunked body (no Content-Length) that grows past maxBlobSize: 413 while streaming, nothing stored, no temp file', async function () {
      const s = await serve({ maxBlobSize: 1 * MiB })
      const body = pseudoRandom(3 * MiB, 12)
      const status = await new Promise<number>((resolve, reject) => {
        const u = new URL(s.url)
        const req = request({ host: u.hostname, port: u.port, path: '/ipfs', method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
        req.on('error', (err) => { reject(err) })
        // In pieces, so the store sees a stream (and stages a temp file) before the limit trips.
        let at = 0
        const more = (): void => {
          while (at < body.length) {
            const ok = req.write(body.subarray(at, at + 64 * 1024))
            at += 64 * 1024
            if (!ok) { req.once('drain', more); return }
          }
          req.end()
        }
        more()
      }).catch((err: NodeJS.ErrnoException) => { assert.match(err.code ?? '', /EPIPE|ECONNRESET/); return 413 })
      assert.equal(status, 413)
      assert.ok(!await global.has(cidOfBytes(body)))
      await waitFor(async () => (await tmpFiles()).length === 0, 5000, 'temp files removed')
      await stillServes(s)
    })

    it('a client that disconnects mid-body: nothing stored, no temp file left', async function () {
      const s = await serve()
      const body = pseudoRandom(12 * MiB, 13)
      const sock = connect({ port: s.port, host: '127.0.0.1' })
      sock.on('error', () => {})
      await new Promise(resolve => sock.once('connect', resolve))
      sock.write(`POST /ipfs HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nContent-Length: ${body.length}\r\n\r\n`)
      sock.write(body.subarray(0, 7 * MiB))
      // Past the store's first 4 MiB staging slot, so it has a temp file open by now.
      await waitFor(async () => (await tmpFiles()).length > 0, 5000, 'a temp file staged')
      sock.destroy()
      await waitFor(async () => (await tmpFiles()).length === 0, 5000, 'temp file removed')
      assert.ok(!await global.has(cidOfBytes(body)))
      for await (const stat of global.list()) assert.notEqual(stat.size, body.length)
      await stillServes(s)
    })

    it('a PUT whose body does not match its CID: 400, nothing stored, no temp file', async function () {
      const s = await serve()
      const body = pseudoRandom(2 * MiB, 14)
      const r = await raw(s.url, `/ipfs/${cid}`, { method: 'PUT', body })
      assert.equal(r.status, 400)
      assert.equal(JSON.parse(r.body.toString()).error.name, 'VerificationError')
      assert.ok(!await global.has(cidOfBytes(body)))
      assert.deepEqual(await tmpFiles(), [])
      await stillServes(s)
    })

    it('POST /dstore/v1/missing with a body over 1 MiB: 413', async function () {
      const s = await serve()
      const r = await raw(s.url, '/dstore/v1/missing', { method: 'POST', body: '[' + '"x",'.repeat(300_000) + '"x"]' })
      assert.equal(r.status, 413)
      await stillServes(s)
    })
  })

  describe('slow and idle clients', function () {
    it('slowloris: a head still incomplete at headersTimeout is cut (408), even one trickling bytes; others are served meanwhile', async function () {
      const s = await serve({ headersTimeout: 400, idleTimeout: 5000 })
      const t0 = Date.now()
      const sock = connect({ port: s.port, host: '127.0.0.1' })
      sock.on('error', () => {})
      let text = ''
      sock.on('data', (b: Buffer) => { text += b.toString() })
      const closed = new Promise<void>(resolve => sock.once('close', () => { resolve() }))
      await new Promise(resolve => sock.once('connect', resolve))
      sock.write('GET /ipfs/')
      // A byte every 100 ms keeps the socket from being idle: only the header deadline stops it.
      const trickle = setInterval(() => { if (!sock.destroyed) sock.write('a') }, 100)
      await stillServes(s)
      await closed
      clearInterval(trickle)
      const elapsed = Date.now() - t0
      assert.ok(elapsed >= 350 && elapsed < 3000, `cut after ${elapsed} ms`)
      assert.ok(text === '' || statusIn(text) === 408, text)
      await stillServes(s)
    })

    it('a write whose body has all arrived is not cut by idleTimeout while the backend is still storing it', async function () {
      // The peer behind the server, slowed after it stored the value (as a long fsync or a Local's wait for Global is).
      const real = globalBackend(global)
      const s = await serve({ idleTimeout: 300, backend: { ...real, put: async (source, options) => { const key = await real.put(source, options); await new Promise(resolve => setTimeout(resolve, 900)); return key } } })
      const body = pseudoRandom(100_000, 15)
      const r = await fetch(`${s.url}/ipfs`, { method: 'POST', body })
      assert.equal(r.status, 201)
      assert.equal((await r.json() as any).cid, cidOfBytes(body).toString())
      // And the idle deadline holds again once the answer is sent.
      const idle = await rawSocket(s.port, '', 5000)
      assert.ok(idle.closed && idle.elapsed < 3000, `closed after ${idle.elapsed} ms`)
      await stillServes(s)
    })

    it('a GET whose answer takes longer than idleTimeout to start is answered, not cut', async function () {
      // A Local waiting for Global, or for the first piece of a swarm download, before its first byte.
      // Node never emits 'end' for a GET nobody reads the body of: the wait must be lifted at once.
      const real = globalBackend(global)
      const s = await serve({
        idleTimeout: 300,
        backend: { ...real, cat: (key, range, options) => (async function * () { await new Promise(resolve => setTimeout(resolve, 900)); yield * real.cat(key, range, options) })() }
      })
      const r = await fetch(`${s.url}/ipfs/${cid}?format=raw`)
      assert.equal(r.status, 200)
      assertBytes(new Uint8Array(await r.arrayBuffer()), value)
      // And the idle deadline holds again once the answer is sent.
      const idle = await rawSocket(s.port, '', 5000)
      assert.ok(idle.closed && idle.elapsed < 3000, `closed after ${idle.elapsed} ms`)
      await stillServes(s)
    })

    it('a GET whose body pauses longer than idleTimeout (the source waits, the client reads) is not cut', async function () {
      // A swarm download whose next piece in order is still coming: the server waits, not the client.
      const big = pseudoRandom(3 << 20, 16)
      const bigCid = (await global.put(big)).toString()
      const real = globalBackend(global)
      const s = await serve({
        idleTimeout: 300,
        backend: {
          ...real,
          cat: (key, range, options) => (async function * () {
            let first = true
            for await (const part of real.cat(key, range, options)) {
              if (!first) await new Promise(resolve => setTimeout(resolve, 900))
              first = false
              yield part
            }
          })()
        }
      })
      const r = await fetch(`${s.url}/ipfs/${bigCid}?format=raw`)
      assert.equal(r.status, 200)
      assertBytes(new Uint8Array(await r.arrayBuffer()), big)
      await stillServes(s)
    })

    it('an idle connection (connected, sends nothing) is closed after idleTimeout', async function () {
      const s = await serve({ idleTimeout: 300 })
      const r = await rawSocket(s.port, '', 5000)
      assert.ok(r.closed, 'closed by the server')
      assert.ok(r.elapsed >= 250 && r.elapsed < 3000, `closed after ${r.elapsed} ms`)
      await stillServes(s)
    })
  })

  describe('many requests', function () {
    it('1,000 concurrent GETs are all served (bounded: the rest wait in the queue), and the server serves on', async function () {
      const s = await serve()
      const t0 = Date.now()
      const results = await Promise.all(Array.from({ length: 1000 }, async () => {
        const r = await fetch(`${s.url}/ipfs/${cid}?format=raw`)
        return { status: r.status, bytes: new Uint8Array(await r.arrayBuffer()) }
      }))
      const elapsed = Date.now() - t0
      assert.equal(results.filter(r => r.status === 200).length, 1000)
      for (const r of results) assertBytes(r.bytes, value)
      assert.ok(elapsed < 15_000, `${elapsed} ms`)
      await stillServes(s)
    })

    it('past maxConcurrentRequests + maxQueuedRequests, a request is answered 503 with Retry-After at once; freed slots serve again', async function () {
      const s = await serve({ maxConcurrentRequests: 1, maxQueuedRequests: 1 })
      // Two writes whose bodies never come: one runs, one waits.
      const holders = [0, 1].map(() => {
        const sock = connect({ port: s.port, host: '127.0.0.1' })
        sock.on('error', () => {})
        sock.write(`POST /ipfs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n`)
        return sock
      })
      await new Promise(resolve => setTimeout(resolve, 200))
      const r = await fetch(`${s.url}/ipfs/${cid}`)
      assert.equal(r.status, 503)
      assert.equal(r.headers.get('retry-after'), '1')
      assert.equal((await r.json() as any).error.code, 'ERR_BUSY')
      for (const h of holders) h.destroy()
      await waitFor(async () => (await fetch(`${s.url}/ipfs/${cid}`, { method: 'HEAD' })).status === 200, 5000, 'served again')
      await stillServes(s)
    })
  })

  describe('connections', function () {
    it('past maxConnections a new connection is closed on arrival; once one goes, a normal GET is served', async function () {
      const s = await serve({ maxConnections: 2 })
      const held = [0, 1].map(() => { const sock = connect({ port: s.port, host: '127.0.0.1' }); sock.on('error', () => {}); return sock })
      await Promise.all(held.map(async sock => await new Promise(resolve => sock.once('connect', resolve))))
      await new Promise(resolve => setTimeout(resolve, 100))
      const extra = await rawSocket(s.port, `GET /ipfs/${cid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 3000)
      assert.ok(extra.closed, 'closed')
      assert.equal(extra.text, '', 'not served')
      held[0].destroy()
      await waitFor(async () => { try { await stillServes(s); return true } catch { return false } }, 5000, 'served again')
      held[1].destroy()
    })
  })

  describe('request targets and heads', function () {
    it('.., %2e%2e, %00, //, encoded slashes, backslashes and paths under a CID: 400 or 404, never another route, never a crash', async function () {
      const s = await serve()
      const paths = [
        '/ipfs/../status', '/ipfs/%2e%2e/status', '/ipfs/%2E%2E/%2e%2e/etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/ipfs/./x',
        `/ipfs/${cid}%00`, `/ipfs/%00${cid}`, `//ipfs/${cid}`, `/ipfs//${cid}`, `/ipfs/${cid}/`, `/ipfs/${cid}%2fx`, `/ipfs/${cid}%5c..%5cstatus`,
        '/ipfs/%zz', '/ipfs/%', `/ipfs/${cid}/../../status`, '/status/..', '/ipfs\\..\\status', `/ipfs/${cid}%0d%0aX-Evil:%201`
      ]
      for (const path of paths) {
        const r = await raw(s.url, path)
        assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status}`)
        assert.equal(r.headers['x-evil'], undefined)
      }
      await stillServes(s)
    })

    it('an overlong path is 414; a head over maxHeaderSize is 431; a non-path target is 400', async function () {
      const s = await serve({ maxHeaderSize: 8192 })
      assert.equal((await raw(s.url, '/ipfs/' + 'b'.repeat(3000))).status, 414)
      assert.equal((await raw(s.url, `/ipfs/${cid}`, { headers: { 'X-Big': 'x'.repeat(10_000) } })).status, 431)
      const star = await rawSocket(s.port, 'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
      assert.equal(statusIn(star.text), 400)
      await stillServes(s)
    })

    it('garbage bytes, a TLS ClientHello, an unknown method, a bad HTTP version: 400 and the connection closed; the server serves on', async function () {
      const s = await serve()
      const hello = Buffer.from('16030100a5010000a10303' + '00'.repeat(32), 'hex')
      for (const bytes of [pseudoRandom(4096, 21), hello, 'BREW /ipfs HTTP/1.1\r\nHost: x\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', '\r\n\r\n\r\n\r\nxx', 'GET /ipfs/x HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n']) {
        const r = await rawSocket(s.port, bytes)
        assert.ok(r.closed, 'closed')
        assert.equal(statusIn(r.text), 400, r.text.slice(0, 80))
      }
      await stillServes(s)
    })

    it('a request line with no Host header is 400', async function () {
      const s = await serve()
      const r = await rawSocket(s.port, `GET /ipfs/${cid} HTTP/1.1\r\nConnection: close\r\n\r\n`)
      assert.equal(statusIn(r.text), 400)
      await stillServes(s)
    })
  })
})
