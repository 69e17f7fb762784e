/**
 * GET /metrics and GET /status, read from real peers on 127.0.0.1 (src/http/metrics.ts,
 * src/http/status.ts): the counters move by what a put and a get moved, the text parses as the
 * Prometheus exposition format, libp2p's own series are there, a Local and a Global in one
 * process each have their own registry, and a value that does not verify is counted.
 */
import { strict as assert } from 'node:assert'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { cidOfBytes, createGlobal, createLocal, type GlobalPeer, type LocalPeer } from '../src/index.js'
import { createMetrics, globalMetricsSource, localMetricsSource, type HttpMetrics } from '../src/http/metrics.js'
import { globalBackend } from '../src/http/backend-global.js'
import { startHttpServer } from '../src/http/server.js'
import { globalStatus, localStatus } from '../src/http/status.js'
import { pseudoRandom } from './helpers.js'
import { parseProm } from './prom.js'
import { Cleanup, KiB, MiB, rejectsWith } from './net.js'

const value = (series: Map<string, number>, name: string): number => series.get(name) ?? 0

describe('metrics and status', function () {
  this.timeout(60_000)
  const c = new Cleanup()
  let global: GlobalPeer
  let local: LocalPeer
  let gm: HttpMetrics
  let lm: HttpMetrics
  let repo: string

  before(async function () {
    repo = await c.dir('dstore-metrics-')
    const gReg = new Registry()
    global = await createGlobal({ repo, sync: false, metricsRegistry: gReg })
    c.add(async () => { await global.stop() })
    gm = createMetrics({ role: 'global', source: globalMetricsSource(global), registry: gReg, version: '0.0.0-test', peerId: global.peerId })
    const lReg = new Registry()
    local = await createLocal({ global: global.multiaddrs, cacheSize: 8 * MiB, metricsRegistry: lReg })
    c.add(async () => { await local.stop() })
    lm = createMetrics({ role: 'local', source: localMetricsSource(local), registry: lReg, version: '0.0.0-test', peerId: local.peerId })
    await local.ready()
  })
  after(async function () { await c.run() })

  describe('createMetrics', function () {
    it('moves the cache, byte and store counters by what a put, a miss and a hit moved', async function () {
      const data = pseudoRandom(300 * KiB, 31)
      const l0 = parseProm(await lm.text())
      const g0 = parseProm(await gm.text())
      const cid = await local.put(data)
      // A put caches what it sent; drop it so the first get is a miss.
      await local.cache.delete(cid)
      assert.deepEqual(await local.get(cid), data)
      assert.deepEqual(await local.get(cid), data)
      const l1 = parseProm(await lm.text())
      const g1 = parseProm(await gm.text())

      assert.equal(value(l1, 'dstore_cache_misses_total') - value(l0, 'dstore_cache_misses_total'), 1)
      assert.equal(value(l1, 'dstore_cache_hits_total') - value(l0, 'dstore_cache_hits_total'), 1)
      assert.equal(value(l1, 'dstore_bytes_served_total') - value(l0, 'dstore_bytes_served_total'), 2 * data.length)
      assert.equal(value(l1, 'dstore_bytes_received_total{source="client"}') - value(l0, 'dstore_bytes_received_total{source="client"}'), data.length)
      // From Global: the value plus its verification tree and the rpc messages, so a little more.
      const fromGlobal = value(l1, 'dstore_bytes_received_total{source="global"}') - value(l0, 'dstore_bytes_received_total{source="global"}')
      assert.ok(fromGlobal >= data.length && fromGlobal < data.length * 1.05, `received from global: ${fromGlobal}`)
      assert.equal(value(l1, 'dstore_cache_bytes'), data.length)
      assert.equal(value(l1, 'dstore_cache_limit_bytes'), 8 * MiB)
      assert.equal(value(l1, 'dstore_global_connected'), 1)

      assert.equal(value(g1, 'dstore_store_values') - value(g0, 'dstore_store_values'), 1)
      assert.equal(value(g1, 'dstore_store_bytes') - value(g0, 'dstore_store_bytes'), data.length)
      assert.equal(value(g1, 'dstore_bytes_received_total{source="local"}') - value(g0, 'dstore_bytes_received_total{source="local"}'), data.length)
      assert.equal(value(g1, 'dstore_bytes_served_total') - value(g0, 'dstore_bytes_served_total'), data.length)
      assert.equal(value(g1, 'dstore_connected_locals'), 1)
      // The store's kind; the fs store talks to no remote service, so no S3 request series.
      assert.equal(value(g1, 'dstore_store_info{kind="fs"}'), 1)
      assert.equal([...g1.keys()].some(k => k.startsWith('dstore_s3_')), false)
      // A re-put of a stored value changes neither count.
      await global.put(data)
      const g2 = parseProm(await gm.text())
      assert.equal(value(g2, 'dstore_store_values'), value(g1, 'dstore_store_values'))
      assert.equal(value(g2, 'dstore_store_bytes'), value(g1, 'dstore_store_bytes'))
      // A delete takes it off.
      assert.equal(await local.delete(cid), true)
      const g3 = parseProm(await gm.text())
      assert.equal(value(g3, 'dstore_store_values'), value(g0, 'dstore_store_values'))
      assert.equal(value(g3, 'dstore_store_bytes'), value(g0, 'dstore_store_bytes'))
    })

    it('counts HTTP requests by method and status, and their durations in a histogram', async function () {
      const before = parseProm(await lm.text())
      lm.observeRequest('GET', 200, 0.002, 'ipfs')
      lm.observeRequest('GET', 200, 0.2, 'ipfs')
      lm.observeRequest('BREW', 418, 0.001, 'other')
      const after = parseProm(await lm.text())
      const d = (name: string): number => value(after, name) - value(before, name)
      assert.equal(d('dstore_http_requests_total{method="GET",status="200"}'), 2)
      assert.equal(d('dstore_http_requests_total{method="OTHER",status="418"}'), 1, 'an unknown method is one bounded label')
      assert.equal(d('dstore_http_request_duration_seconds_count{method="GET",route="ipfs"}'), 2)
      assert.equal(d('dstore_http_request_duration_seconds_bucket{le="0.0025",method="GET",route="ipfs"}'), 1)
      assert.ok(Math.abs(d('dstore_http_request_duration_seconds_sum{method="GET",route="ipfs"}') - 0.202) < 1e-9)
    })

    it("includes libp2p's series, and a Local and a Global in one process keep their own", async function () {
      const l = await lm.text()
      const g = await gm.text()
      for (const [what, text] of [['local', l], ['global', g]]) {
        assert.match(text, /^libp2p_/m, `${what} has libp2p_ series`)
        assert.match(text, /^process_resident_memory_bytes /m, `${what} has the process metrics`)
        parseProm(text)
      }
      // Only the Local has the cache, only Global the store: the registries are separate.
      assert.match(l, /^dstore_cache_hits_total /m)
      assert.doesNotMatch(g, /^dstore_cache_hits_total /m)
      assert.match(g, /^dstore_store_values /m)
      assert.doesNotMatch(l, /^dstore_store_values /m)
      assert.match(l, new RegExp(`^dstore_build_info\\{role="local",version="0.0.0-test",peer_id="${local.peerId}"\\} 1$`, 'm'))
      assert.match(g, new RegExp(`^dstore_build_info\\{role="global",version="0.0.0-test",peer_id="${global.peerId}"\\} 1$`, 'm'))
      // libp2p counts its connections in each registry: each peer has one, to the other.
      const lc = parseProm(l)
      const gc = parseProm(g)
      assert.ok([...lc.keys()].some(k => k.startsWith('libp2p_connection_manager_connections')), 'libp2p connection gauges on the Local')
      assert.ok([...gc.keys()].some(k => k.startsWith('libp2p_connection_manager_connections')), 'libp2p connection gauges on Global')
    })

    it('counts a value that fails verification, on the Local that fetched it and on Global for a put', async function () {
      const bad = pseudoRandom(MiB + 999, 32) // a file on Global, not inline
      const cid = await global.put(bad)
      const hex = Buffer.from(cid.multihash.digest).toString('hex')
      const handle = await open(join(repo, 'store', 'blobs', hex.slice(0, 2), hex), 'r+')
      const one = Buffer.alloc(1)
      await handle.read(one, 0, 1, 500_000)
      one[0] ^= 0x01
      await handle.write(one, 0, 1, 500_000)
      await handle.close()
      const l0 = value(parseProm(await lm.text()), 'dstore_verification_failures_total')
      await rejectsWith(local.get(cid), 'VerificationError')
      assert.equal(value(parseProm(await lm.text()), 'dstore_verification_failures_total') - l0, 1)

      const g0 = value(parseProm(await gm.text()), 'dstore_verification_failures_total')
      await rejectsWith(global.put(pseudoRandom(10, 1), { expected: cidOfBytes(pseudoRandom(10, 2)) }), 'VerificationError')
      await rejectsWith(local.put(pseudoRandom(2 * MiB, 3), { expected: cidOfBytes(pseudoRandom(10, 2)) }), 'VerificationError')
      assert.equal(value(parseProm(await gm.text()), 'dstore_verification_failures_total') - g0, 1, 'the direct put; the Local refused its own mismatch before sending')
    })
  })

  describe('GET /metrics and GET /status on the HTTP server', function () {
    it('serves the registry as Prometheus text, counting its own requests and the GETs it answered', async function () {
      const http = await startHttpServer({ host: '127.0.0.1', port: 0, backend: globalBackend(global, { version: '0.0.0-test' }), metrics: gm })
      c.add(async () => { await http.close() })
      const data = pseudoRandom(1000, 61)
      const cid = await global.put(data)
      const scrape = async (): Promise<Map<string, number>> => {
        const res = await fetch(`${http.url}/metrics`)
        assert.equal(res.status, 200)
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
        return parseProm(await res.text())
      }
      const before = await scrape()
      for (let i = 0; i < 3; i++) assert.equal((await fetch(`${http.url}/ipfs/${cid.toString()}`)).status, 200)
      assert.equal((await fetch(`${http.url}/ipfs/${cidOfBytes(pseudoRandom(5, 62)).toString()}`)).status, 404)
      const after = await scrape()
      const d = (name: string): number => value(after, name) - value(before, name)
      assert.equal(d('dstore_http_requests_total{method="GET",status="200"}'), 3 + 1, 'three GETs and the first scrape')
      assert.equal(d('dstore_http_requests_total{method="GET",status="404"}'), 1)
      assert.equal(d('dstore_http_request_duration_seconds_count{method="GET",route="ipfs"}'), 4)
      assert.equal(d('dstore_bytes_served_total'), 3 * data.length, 'reads over HTTP are counted as served')
      const status = await (await fetch(`${http.url}/status`)).json() as any
      assert.equal(status.role, 'global')
      assert.deepEqual(status.store, { kind: 'fs', ...global.storeUsage() })
      assert.equal(status.recentTransfers[0].source, 'api')
    })
  })

  describe('status', function () {
    it('a Local reports its cache, Global connection, bytes by source and recent transfers', async function () {
      const data = pseudoRandom(5000, 41)
      const cid = await local.put(data)
      await local.get(cid)
      const s = await localStatus(local, { version: '0.0.0-test', url: 'http://127.0.0.1:1' }) as any
      assert.equal(s.role, 'local')
      assert.equal(s.peerId, local.peerId)
      assert.equal(s.version, '0.0.0-test')
      assert.deepEqual(s.global, { connected: true, addrs: global.multiaddrs, count: 1, connectedCount: 1 })
      assert.equal(s.cache.limit, 8 * MiB)
      assert.equal(s.cache.entries, local.stats().cacheEntries)
      assert.ok(s.cache.hits >= 1 && s.cache.hitRate > 0 && s.cache.hitRate <= 1)
      assert.ok(s.uptimeSeconds >= 0)
      assert.ok(s.bytes.received.client >= data.length)
      const [last, prev] = s.recentTransfers
      assert.deepEqual([last.cid, last.op, last.source, last.bytes, last.ok], [cid.toString(), 'get', 'cache', data.length, true])
      assert.deepEqual([prev.cid, prev.op, prev.source, prev.bytes], [cid.toString(), 'put', 'client', data.length])
      assert.ok(!Number.isNaN(Date.parse(last.at)))
      JSON.stringify(s)
    })

    it('Global reports its store, the connected Locals and recent transfers', async function () {
      const data = pseudoRandom(7000, 42)
      const cid = await local.put(data)
      const s = await globalStatus(global, { version: '0.0.0-test' }) as any
      assert.equal(s.role, 'global')
      assert.equal(s.peerId, global.peerId)
      assert.deepEqual(s.store, { kind: 'fs', ...global.storeUsage() })
      assert.ok(s.store.values >= 1)
      assert.equal(s.locals.count, 1)
      assert.equal(s.locals.connected[0].peerId, local.peerId)
      assert.match(s.locals.connected[0].addr, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
      const [last] = s.recentTransfers
      assert.deepEqual([last.cid, last.op, last.source, last.bytes, last.ok], [cid.toString(), 'put', 'local', data.length, true])
    })

    it('keeps the recent transfers bounded (the last 50)', async function () {
      for (let i = 0; i < 60; i++) await local.get(await local.put(pseudoRandom(100, 1000 + i)))
      const s = await localStatus(local, { version: 'x' }) as any
      assert.equal(s.recentTransfers.length, 50)
    })
  })
})
