/**
 * The status page at GET / (src/http/status-page.ts) in a real browser: Debian's chromium,
 * driven by playwright-core, against a real Global and a real Local on 127.0.0.1, each behind
 * the real HTTP server. The page must render what a put and a get change (values, bytes in,
 * hits, recent transfers), put a file given to its file input under the file's real CID, look
 * up a CID, show Global's connected Locals, and make no request to any other origin (its CSP
 * must let its own script and style run: a blocked script would render nothing).
 *
 * `DSTORE_SCREENSHOT=1` also writes docs/status-page.png (the README's screenshot).
 */
import { strict as assert } from 'node:assert'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { Registry } from 'prom-client'
import { cidOfBytes, createGlobal, createLocal, type GlobalPeer, type LocalPeer } from '../src/index.js'
import { globalBackend } from '../src/http/backend-global.js'
import { localBackend } from '../src/http/backend-local.js'
import { createMetrics, globalMetricsSource, localMetricsSource } from '../src/http/metrics.js'
import { startHttpServer, type HttpServer } from '../src/http/server.js'
import { localStatus } from '../src/http/status.js'
import { pseudoRandom } from './helpers.js'
import { Cleanup, KiB, MiB } from './net.js'

const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOT = fileURLToPath(new URL('../../docs/status-page.png', import.meta.url))

describe('status page', function () {
  this.timeout(120_000)
  const c = new Cleanup()
  let global: GlobalPeer
  let local: LocalPeer
  let gHttp: HttpServer
  let lHttp: HttpServer
  let browser: Browser
  /** Every request any page made, and what went wrong in it (CSP refusals, script errors). */
  const requests: string[] = []
  const problems: string[] = []

  before(async function () {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`)
    const gReg = new Registry()
    global = await createGlobal({ repo: await c.dir('dstore-page-'), sync: false, metricsRegistry: gReg })
    c.add(async () => { await global.stop() })
    gHttp = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      backend: globalBackend(global, { version: '0.0.0-test' }),
      metrics: createMetrics({ role: 'global', source: globalMetricsSource(global), registry: gReg, peerId: global.peerId })
    })
    c.add(async () => { await gHttp.close() })
    const lReg = new Registry()
    // Listening for other Locals, so the swarm panel has an address to show.
    local = await createLocal({ global: global.multiaddrs, cacheSize: 16 * MiB, metricsRegistry: lReg, listen: ['/ip4/127.0.0.1/tcp/0'] })
    c.add(async () => { await local.stop() })
    await local.ready()
    let url = ''
    lHttp = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      backend: localBackend(local, { status: async () => await localStatus(local, { version: '0.0.0-test', url }) }),
      metrics: createMetrics({ role: 'local', source: localMetricsSource(local), registry: lReg, peerId: local.peerId })
    })
    url = lHttp.url
    c.add(async () => { await lHttp.close() })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
    })
    c.add(async () => { await browser.close() })
  })
  after(async function () { await c.run() })

  async function open (url: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.on('request', (r) => { requests.push(r.url()) })
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()) })
    page.on('pageerror', (e) => { problems.push(e.message) })
    await page.goto(url)
    return page
  }

  const text = async (page: Page, id: string): Promise<string> => (await page.textContent(`#${id}`)) ?? ''
  /** Waits until `#id`'s text satisfies `ok` (the page refreshes every 2 s). */
  async function until (page: Page, id: string, ok: (t: string) => boolean, what: string): Promise<string> {
    const deadline = Date.now() + 10_000
    for (;;) {
      const t = await text(page, id)
      if (ok(t)) return t
      if (Date.now() > deadline) throw new Error(`#${id} never showed ${what}; it shows ${JSON.stringify(t)}`)
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }

  it("a Local's page shows its role, PeerId and Global, and the figures a put and a get change", async function () {
    const page = await open(lHttp.url)
    await until(page, 'role', t => t === 'local', 'the role')
    assert.equal(await text(page, 'peer-id'), local.peerId)
    assert.equal(await text(page, 'global-state'), 'Global reachable')
    assert.equal(await text(page, 'values'), '0')
    assert.equal(await text(page, 'hit-rate'), '\u2013', 'no lookups yet: no hit rate')

    // A put through the page's file input: the CID shown is the file's own.
    const file = Buffer.from(pseudoRandom(300 * KiB, 51))
    await page.setInputFiles('#file-input', { name: 'photo.bin', mimeType: 'application/octet-stream', buffer: file })
    await page.waitForSelector('#put-cid', { timeout: 10_000 })
    const cid = cidOfBytes(file).toString()
    assert.equal(await text(page, 'put-cid'), cid)
    assert.equal(await page.getAttribute('#put-cid', 'href'), `/ipfs/${cid}`)
    assert.equal(await global.has(cid), true, 'the put reached Global')
    await until(page, 'values', t => t === '1', 'one cached value')
    await until(page, 'bytes-in', t => t === '300 KiB', 'the 300 KiB put')
    await until(page, 'transfers', t => t.includes('put') && t.includes('client'), 'the put in the recent transfers')

    // A GET of it over HTTP is a cache hit; one of a value only Global has is a miss.
    assert.deepEqual(Buffer.from(await (await fetch(`${lHttp.url}/ipfs/${cid}`)).arrayBuffer()), file)
    const other = pseudoRandom(200 * KiB, 52)
    const otherCid = (await global.put(other)).toString()
    assert.deepEqual(new Uint8Array(await (await fetch(`${lHttp.url}/ipfs/${otherCid}`)).arrayBuffer()), other)
    await until(page, 'hits', t => t === String(local.stats().hits) && t !== '0', 'the hit')
    await until(page, 'misses', t => t === String(local.stats().misses) && t !== '0', 'the miss')
    await until(page, 'hit-rate', t => t.endsWith('%'), 'a hit rate')
    await until(page, 'values', t => t === '2', 'two cached values')
    const rows = await page.$$eval('#transfers tr', trs => trs.map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent)))
    // Newest first: the miss (from global), the hit (from cache), then the put.
    assert.deepEqual(rows.slice(0, 3).map(r => [r[1], r[2], r[3], r[4]]), [
      ['get', otherCid, '200 KiB', 'global'],
      ['get', cid, '300 KiB', 'cache'],
      ['put', cid, '300 KiB', 'client']
    ])
    assert.match(rows[0][5] ?? '', /\/s$|^\u2013$/, 'a throughput')
    const fill = await page.$eval('#cache-fill', el => (el as unknown as { style: { width: string } }).style.width)
    assert.equal(fill, `${(100 * (500 * KiB) / (16 * MiB)).toFixed(1)}%`, 'the cache bar shows 500 KiB of 16 MiB')

    // CID lookup: found (with its size and a link), not found, not a dstore CID.
    await page.fill('#cid-input', otherCid)
    await page.click('#lookup-form button')
    await until(page, 'lookup-result', t => t.startsWith('Found'), 'the lookup')
    assert.match(await text(page, 'lookup-result'), /^Found: 200 KiB \(cached here\)/)
    assert.equal(await page.getAttribute('#lookup-link', 'href'), `/ipfs/${otherCid}`)
    await page.fill('#cid-input', cidOfBytes(pseudoRandom(10, 53)).toString())
    await page.click('#lookup-form button')
    await until(page, 'lookup-result', t => t === 'Not found', 'not found')
    await page.fill('#cid-input', 'not-a-cid')
    await page.click('#lookup-form button')
    await until(page, 'lookup-result', t => t.startsWith('Not a dstore CID'), 'the refusal')

    await page.close()
  })

  it("Global's page shows its store and the connected Locals", async function () {
    const page = await open(gHttp.url)
    await until(page, 'role', t => t === 'global', 'the role')
    assert.equal(await text(page, 'peer-id'), global.peerId)
    assert.equal(await text(page, 'global-state'), 'This is Global')
    await until(page, 'values', t => t === String(global.storeUsage().values), 'the store count')
    assert.equal(await text(page, 'locals-count'), '1')
    assert.match(await text(page, 'locals'), new RegExp(local.peerId))
    assert.equal(await page.isVisible('#cache-fill'), false, 'no cache on Global')
    // A put through Global's page adds a value and shows in its transfers.
    const before = global.storeUsage().values
    // This time a drop on the drop zone, as a person's drag and drop delivers it.
    const file = Buffer.from('hello from the status page test\n')
    const dropped = await page.evaluateHandle((body) => {
      const g = globalThis as any
      const dt = new g.DataTransfer()
      dt.items.add(new g.File([body], 'hello.txt', { type: 'text/plain' }))
      return dt
    }, file.toString())
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped })
    await page.waitForSelector('#put-cid', { timeout: 10_000 })
    assert.equal(await text(page, 'put-cid'), cidOfBytes(file).toString())
    await until(page, 'values', t => t === String(before + 1), 'one more value')
    await until(page, 'transfers', t => t.includes(cidOfBytes(file).toString()), 'the put in the transfers')
    await page.close()
  })

  /** The page's byte format (fmtBytes in src/http/status-page.ts), for comparing with /status. */
  const fmtBytes = (n: number): string => {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
    let i = 0
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
    let t = i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)
    if (t.includes('.')) t = t.replace(/0+$/, '').replace(/[.]$/, '')
    return `${t} ${units[i]}`
  }

  it("a Local's swarm panel shows /status's swarm figures and addresses; Global's shows the tracker and the egress cap", async function () {
    // Another Local holds a 5 MiB value (swarm size) and serves it: the page's Local takes it from that peer.
    const peer = await createLocal({ global: global.multiaddrs, cacheSize: 32 * MiB, listen: ['/ip4/127.0.0.1/tcp/0'] })
    c.add(async () => { await peer.stop() })
    await peer.ready()
    const big = pseudoRandom(5 * MiB, 54)
    const bigCid = (await peer.put(big)).toString()
    const deadline = Date.now() + 10_000
    while (global.stats().swarm.sources < 1) {
      assert.ok(Date.now() < deadline, "Global's tracker never learnt that the peer holds it")
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    assert.deepEqual(new Uint8Array(await (await fetch(`${lHttp.url}/ipfs/${bigCid}`)).arrayBuffer()), big)
    assert.equal(local.stats().swarm.bytesFromPeers, big.length, 'the value came from the peer')

    const page = await open(lHttp.url)
    await until(page, 'role', t => t === 'local', 'the role')
    await until(page, 'swarm-from-peers', t => t === '5 MiB', 'the 5 MiB from the peer')
    const ls = await (await fetch(`${lHttp.url}/status`)).json() as { swarm: { enabled: boolean, addrs: string[], bytesFromPeers: number, bytesFromGlobal: number, bytesToPeers: number, peersUsed: number, badRanges: number, peersDropped: number, downloads: number, active: number } }
    const sw = ls.swarm
    assert.equal(sw.enabled, true)
    assert.equal(sw.addrs.length, 1, String(sw.addrs))
    await until(page, 'swarm-state', t => t === 'on, serving other Locals', 'the swarm on')
    assert.equal(await page.isVisible('#swarm'), true)
    assert.equal(await page.isVisible('#tracker'), false, 'no tracker on a Local')
    assert.deepEqual({
      fromPeers: await text(page, 'swarm-from-peers'),
      fromGlobal: await text(page, 'swarm-from-global'),
      toPeers: await text(page, 'swarm-to-peers'),
      peersUsed: await text(page, 'swarm-peers-used'),
      badRanges: await text(page, 'swarm-bad-ranges'),
      dropped: await text(page, 'swarm-peers-dropped'),
      downloads: await text(page, 'swarm-downloads'),
      addrs: await text(page, 'swarm-addrs')
    }, {
      fromPeers: fmtBytes(sw.bytesFromPeers),
      fromGlobal: fmtBytes(sw.bytesFromGlobal),
      toPeers: fmtBytes(sw.bytesToPeers),
      peersUsed: String(sw.peersUsed),
      badRanges: String(sw.badRanges),
      dropped: String(sw.peersDropped),
      downloads: sw.active > 0 ? `${sw.downloads} + ${sw.active} now` : String(sw.downloads),
      addrs: sw.addrs.join('\n')
    })
    assert.match(await text(page, 'swarm-addrs'), new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${local.peerId}$`))
    assert.equal(await text(page, 'swarm-peers-used'), '1')
    assert.equal(await text(page, 'swarm-peer-share'), '(100.0%)')
    if (process.env.DSTORE_SCREENSHOT === '1') {
      await page.fill('#cid-input', bigCid)
      await page.click('#lookup-form button')
      await until(page, 'lookup-result', t => t.startsWith('Found'), 'the lookup')
      await page.screenshot({ path: SCREENSHOT, fullPage: true })
    }
    await page.close()

    const gpage = await open(gHttp.url)
    await until(gpage, 'role', t => t === 'global', 'the role')
    const gs = await (await fetch(`${gHttp.url}/status`)).json() as { swarm: { values: number, sources: number, badPeerReports: number, egressLimit: number | null, egressWaitMs: number } }
    assert.equal(gs.swarm.values, 1, 'the big value is tracked')
    assert.equal(gs.swarm.sources, 2, 'the peer holds it, and now the page\'s Local too')
    await until(gpage, 'tracker-values', t => t === String(gs.swarm.values), "the tracker's values")
    assert.equal(await gpage.isVisible('#tracker'), true)
    assert.equal(await gpage.isVisible('#swarm'), false, "no Local's swarm panel on Global")
    assert.deepEqual({
      sources: await text(gpage, 'tracker-sources'),
      reports: await text(gpage, 'tracker-bad-reports'),
      limit: await text(gpage, 'egress-limit'),
      wait: await text(gpage, 'egress-wait')
    }, {
      sources: String(gs.swarm.sources),
      reports: String(gs.swarm.badPeerReports),
      limit: gs.swarm.egressLimit === null ? 'none' : `${fmtBytes(gs.swarm.egressLimit)}/s`,
      wait: `${(gs.swarm.egressWaitMs / 1000).toFixed(1)} s`
    })
    await gpage.close()
  })

  it('made no request to any other origin, and nothing was refused or failed in the pages', async function () {
    assert.ok(requests.length > 5, `requests seen: ${requests.length}`)
    const origins = new Set([new URL(lHttp.url).origin, new URL(gHttp.url).origin])
    const foreign = requests.filter(u => !u.startsWith('data:') && !origins.has(new URL(u).origin))
    assert.deepEqual(foreign, [])
    // The lookups of a missing and of a malformed CID log their 404 and 400 as console errors.
    const unexpected = problems.filter(p => !/status of (404|400)/.test(p))
    assert.deepEqual(unexpected, [])
  })
})
