/**
 * /metrics, /status and the status page of the real daemons: a `dstore global --http` child and
 * a `dstore local` child (the CLI wiring of src/http/metrics.ts and status.ts). Each daemon's
 * /metrics has dstore's series and libp2p's, and both move with a put and two GETs over HTTP.
 */
import assert from 'node:assert/strict'
import { pseudoRandom, tempDir } from './helpers.js'
import { blake3Cid, startGlobal, startLocal, stopGlobal, stopLocal, VERSION, type Daemon, type LocalDaemon } from './proc.js'
import { parseProm } from './prom.js'

describe('the daemons serve /metrics, /status and the status page', function () {
  this.timeout(60_000)
  let dir: { path: string, cleanup: () => Promise<void> }
  let global: Daemon
  let globalUrl: string
  let local: LocalDaemon

  before(async function () {
    dir = await tempDir('dstore-daemon-metrics-')
    global = await startGlobal(['--repo', `${dir.path}/g`, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0'])
    globalUrl = /^HTTP: (http:\/\/\S+) \(URL in /m.exec(global.stdout())?.[1] ?? ''
    assert.ok(globalUrl, global.stdout())
    local = await startLocal(['--repo', `${dir.path}/l`, '--global', global.addr, '--http', '127.0.0.1:0'])
  })
  after(async function () {
    if (local !== undefined) await stopLocal(local)
    if (global !== undefined) await stopGlobal(global)
    await dir?.cleanup()
  })

  const scrape = async (url: string): Promise<{ text: string, series: Map<string, number> }> => {
    const res = await fetch(`${url}/metrics`)
    assert.equal(res.status, 200)
    const text = await res.text()
    return { text, series: parseProm(text) }
  }

  it('counts a put and two GETs through the Local daemon, on both daemons, beside libp2p_ series', async function () {
    const data = pseudoRandom(100_000, 81)
    const l0 = await scrape(local.url)
    const g0 = await scrape(globalUrl)
    const put = await fetch(`${local.url}/ipfs`, { method: 'POST', body: data })
    assert.equal(put.status, 201)
    const cid = (await put.json() as { cid: string }).cid
    assert.equal(cid, blake3Cid(data))
    for (let i = 0; i < 2; i++) assert.deepEqual(new Uint8Array(await (await fetch(`${local.url}/ipfs/${cid}`)).arrayBuffer()), data)
    const l1 = await scrape(local.url)
    const g1 = await scrape(globalUrl)
    const d = (a: Map<string, number>, b: Map<string, number>, k: string): number => (b.get(k) ?? 0) - (a.get(k) ?? 0)
    // The put leaves the value cached: both GETs are hits.
    assert.equal(d(l0.series, l1.series, 'dstore_cache_hits_total'), 2)
    assert.equal(d(l0.series, l1.series, 'dstore_bytes_served_total'), 2 * data.length)
    assert.equal(d(l0.series, l1.series, 'dstore_bytes_received_total{source="client"}'), data.length)
    assert.equal(d(l0.series, l1.series, 'dstore_http_requests_total{method="POST",status="201"}'), 1)
    assert.equal(d(l0.series, l1.series, 'dstore_http_requests_total{method="GET",status="200"}'), 2 + 1, 'two GETs and the first scrape')
    assert.equal(l1.series.get('dstore_global_connected'), 1)
    assert.equal(d(g0.series, g1.series, 'dstore_store_values'), 1)
    assert.equal(d(g0.series, g1.series, 'dstore_store_bytes'), data.length)
    assert.equal(g1.series.get('dstore_connected_locals'), 1)
    for (const [what, s] of [['local', l1], ['global', g1]] as const) {
      assert.match(s.text, /^libp2p_/m, `${what}: libp2p_ series`)
      assert.match(s.text, new RegExp(`^dstore_build_info\\{role="${what}",version="${VERSION}",peer_id="12D3KooW`, 'm'))
    }
  })

  it('answers /status with each role, and / with the status page under its CSP', async function () {
    const ls = await (await fetch(`${local.url}/status`)).json() as any
    assert.equal(ls.role, 'local')
    assert.equal(ls.version, VERSION)
    assert.equal(ls.url, local.url)
    assert.equal(ls.global.connected, true)
    const gs = await (await fetch(`${globalUrl}/status`)).json() as any
    assert.equal(gs.role, 'global')
    assert.equal(gs.url, globalUrl, "Global's /status names its own URL, as a Local's does")
    assert.equal(gs.peerId, global.peerId)
    assert.equal(gs.locals.count, 1)
    // The default store: the fs store, which counts no remote requests.
    assert.equal(gs.store.kind, 'fs')
    assert.equal(gs.store.requests, undefined)
    assert.equal(gs.locals.connected[0].peerId, ls.peerId)
    for (const url of [local.url, globalUrl]) {
      const page = await fetch(`${url}/`)
      assert.equal(page.status, 200)
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
      assert.match(page.headers.get('content-security-policy') ?? '', /^default-src 'none'; script-src 'sha256-/)
      assert.match(await page.text(), /<title>dstore<\/title>/)
    }
  })

  it("the swarm: /status has LocalStats.swarm and GlobalStats.swarm, and /metrics the same figures", async function () {
    const ls = await (await fetch(`${local.url}/status`)).json() as { peerId: string, swarm: Record<string, unknown> }
    assert.deepEqual(Object.keys(ls.swarm).sort(), ['active', 'addrs', 'badRanges', 'bytesFromGlobal', 'bytesFromPeers', 'bytesToPeers', 'downloads', 'enabled', 'peersDropped', 'peersUsed'])
    assert.equal(ls.swarm.enabled, true)
    // The test helper's --listen /ip4/127.0.0.1/tcp/0: a real port, dialable with this PeerId.
    const addrs = ls.swarm.addrs as string[]
    assert.equal(addrs.length, 1, String(addrs))
    assert.match(addrs[0], new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/[1-9]\\d*/p2p/${ls.peerId}$`))
    const gs = await (await fetch(`${globalUrl}/status`)).json() as { swarm: Record<string, unknown> }
    assert.deepEqual(Object.keys(gs.swarm).sort(), ['badPeerReports', 'egressLimit', 'egressWaitMs', 'sources', 'values'])
    const l = (await scrape(local.url)).series
    const g = (await scrape(globalUrl)).series
    const sw = ls.swarm as Record<string, number>
    assert.deepEqual({
      peer: l.get('dstore_swarm_bytes_total{source="peer"}'),
      global: l.get('dstore_swarm_bytes_total{source="global"}'),
      served: l.get('dstore_swarm_served_bytes_total'),
      bad: l.get('dstore_swarm_bad_ranges_total'),
      used: l.get('dstore_swarm_peers_used'),
      dropped: l.get('dstore_swarm_peers_dropped_total')
    }, { peer: sw.bytesFromPeers, global: sw.bytesFromGlobal, served: sw.bytesToPeers, bad: sw.badRanges, used: sw.peersUsed, dropped: sw.peersDropped })
    const tr = gs.swarm as Record<string, number | null>
    assert.deepEqual({
      values: g.get('dstore_tracker_values'),
      sources: g.get('dstore_tracker_sources'),
      reports: g.get('dstore_tracker_bad_peer_reports_total'),
      limit: g.get('dstore_egress_limit_bytes_per_second')
    }, { values: tr.values, sources: tr.sources, reports: tr.badPeerReports, limit: tr.egressLimit ?? 0 })
    // Each role has only its own series.
    assert.equal(g.get('dstore_swarm_served_bytes_total'), undefined)
    assert.equal(l.get('dstore_tracker_values'), undefined)
  })

  it('dstore global --max-egress: the cap in the banner, /status swarm.egressLimit and /metrics (bad rates: test-cli-egress)', async function () {
    const g = await startGlobal(['--repo', `${dir.path}/capped`, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0', '--max-egress', '40Mbit'])
    try {
      assert.match(g.stdout(), /^Egress: at most 4\.8 MiB\/s \(5000000 bytes\/s\)/m)
      const url = /^HTTP: (http:\/\/\S+) \(URL in /m.exec(g.stdout())?.[1] ?? ''
      const gs = await (await fetch(`${url}/status`)).json() as { swarm: { egressLimit: number | null } }
      assert.equal(gs.swarm.egressLimit, 5_000_000)
      assert.equal((await scrape(url)).series.get('dstore_egress_limit_bytes_per_second'), 5_000_000)
    } finally {
      assert.equal((await stopGlobal(g)).code, 0)
    }
    // Without the flag: no cap, null in /status (the suite's Global), 0 in /metrics.
    const gs = await (await fetch(`${globalUrl}/status`)).json() as { swarm: { egressLimit: number | null } }
    assert.equal(gs.swarm.egressLimit, null)
    assert.equal((await scrape(globalUrl)).series.get('dstore_egress_limit_bytes_per_second'), 0)
  })
})
