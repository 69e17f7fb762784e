/**
 * The benchmark report's issue-#14 sections (bench/lib/report-speed.ts) on hand-made results:
 * the pinned bound is each side's own CPU (1 / max), the shared one the sum over the cores; a
 * missing pinned run reads "not run" instead of failing; targets are checked against the
 * figures (the concurrent target against the slowest repetition, not the median); and the
 * before column comes from the baseline. `--pinned` refuses on one core.
 */
import { strict as assert } from 'node:assert'
import { cpuBoundMBps, gcPolicyNote, type CompareResult, type Figure, type SystemResult, type Timed } from '../bench/lib/report.js'
import { beforeAfterSection, modesSection, speedSections, speedTargetsSection } from '../bench/lib/report-speed.js'
import { pinningUnavailable } from '../bench/lib/pinning.js'

const BIG = 256 * 2 ** 20

function f (median: number, max = median): Figure {
  return { median, min: median, max, reps: max === median ? 1 : 3 }
}

function t (MBps: number, sender?: number, receiver?: number): Timed {
  return { ms: f(BIG / 1e3 / MBps), MBps: f(MBps), ...(sender !== undefined ? { cpuPerGB: { sender: f(sender), receiver: f(receiver ?? sender) } } : {}) }
}

function result (mode: 'shared' | 'pinned', o: { get: number, cat?: number, raw: number, concurrentMax?: number, getCpu?: [number, number] }): CompareResult {
  const dstore: SystemResult = {
    system: 'dstore-tls',
    encryption: 'tls',
    available: true,
    put: { [BIG]: t(520) },
    plainWrite: { [BIG]: t(900) },
    localPut: { [BIG]: t(300, 2, 3) },
    coldGet: { [BIG]: t(o.get, ...(o.getCpu ?? [1.5, 2.5])) },
    ...(o.cat !== undefined ? { cat: { [BIG]: t(o.cat, 1.2, 1.8) } } : {}),
    callerCopy: { [BIG]: f(40) },
    warmGet: {},
    small: { n: 1000, size: 100, cold: { medianMs: 0.4, p99Ms: 2.5 }, steady: { medianMs: 0.3, p99Ms: 1.5 }, warm: { medianMs: 0.002, p99Ms: 0.004 } },
    concurrent: { n: 1000, size: 100, totalMs: f(100, o.concurrentMax ?? 100) },
    rss: {},
    checks: []
  }
  return {
    date: '2026-12-02T00:00:00.000Z',
    node: 'v20',
    platform: 'linux x64',
    cores: 2,
    cpu: 'test',
    memoryGiB: 8,
    loadavg: { before: [0, 0, 0], after: [0, 0, 0] },
    quick: false,
    mode,
    ...(mode === 'pinned' ? { pinning: { provider: 0, requester: 1 } } : {}),
    durationS: 1,
    baseSeed: 1,
    unit: '',
    sizes: [BIG],
    rawSizes: [BIG],
    systems: { 'dstore-tls': dstore },
    raw: { tls: { [BIG]: t(o.raw, 1, 1.2) } }
  }
}

/** The table row whose first cell starts with `start`, as cells. */
function row (md: string, start: string): string[] {
  const line = md.split('\n').find(l => l.startsWith(`| ${start}`))
  assert.ok(line !== undefined, `no row "${start}" in:\n${md}`)
  return line.split('|').slice(1, -1).map(c => c.trim())
}

describe('bench report: issue #14 sections', function () {
  it('bounds a pinned transfer by the busier side, a shared one by the sum over the cores', function () {
    const cpu = { sender: f(1), receiver: f(4) }
    assert.equal(cpuBoundMBps('pinned', 2, cpu), 250)
    assert.equal(cpuBoundMBps('shared', 2, cpu), 400)
    assert.equal(cpuBoundMBps(undefined, 2, cpu), 400, 'older results (no mode) are shared')
  })

  it('says "not run" for a missing pinned run, and reports the shared one alone', function () {
    const shared = result('shared', { get: 400, cat: 500, raw: 800 })
    const md = speedSections({ shared }, {})
    assert.match(md, /\*\*Pinned mode: not run\.\*\*/)
    assert.match(md, /Not run \(no bench\/results\/pinned\.json\)/)
    assert.equal(row(md, 'cold Local.get of 256 MiB ≥ 0.6× the raw TLS stream (pinned').at(-1), 'not run (no pinned.json)')
    const modes = modesSection({ shared })
    assert.doesNotMatch(modes, /pinned MB\/s/, 'no pinned columns without a pinned run')
    // 2 cores / (1.5 + 2.5) s per GB = 500 MB/s; 400 of it is 80%.
    assert.deepEqual(row(modes, 'dstore-tls: cold Local.get').slice(1), ['400', '1.50 / 2.50', '500 MB/s, 80%'])
  })

  it('shows both modes side by side, the pinned bound per side', function () {
    const md = modesSection({ shared: result('shared', { get: 400, raw: 800 }), pinned: result('pinned', { get: 300, raw: 900 }) })
    const cells = row(md, 'dstore-tls: cold Local.get')
    // Pinned: 1 / max(1.5, 2.5) GB/s = 400 MB/s; 300 of it is 75%.
    assert.deepEqual(cells.slice(4), ['300', '1.50 / 2.50', '400 MB/s, 75%'])
  })

  it('checks each target against its run: ratios to raw TLS, CPU per GB, the slowest concurrent run', function () {
    const shared = result('shared', { get: 400, cat: 400, raw: 800, concurrentMax: 151, getCpu: [2, 2.4] })
    const pinned = result('pinned', { get: 540, raw: 900 })
    const md = speedTargetsSection({ shared, pinned }, {})
    assert.equal(row(md, 'cold get 256 MiB, shared: both sides ≤ 4.5').at(-1), '**met**', '4.4 s per GB')
    assert.equal(row(md, 'cold Local.get of 256 MiB ≥ 0.45× the raw TLS stream (shared').at(-1), '**met**', '0.5×')
    assert.equal(row(md, 'cold Local.cat of 256 MiB ≥ 0.6× the raw TLS stream (shared').at(-1), 'not met', '0.5×')
    assert.equal(row(md, 'cold Local.get of 256 MiB ≥ 0.6× the raw TLS stream (pinned').at(-1), '**met**', '540 / 900 = 0.6×')
    assert.equal(row(md, 'Local.put of 256 MiB over the network ≥ 0.5×').at(-1), 'not met', '300 / 800')
    assert.match(row(md, 'put 256 MiB at the API')[2], /520 MB\/s; plain write 900 MB\/s/)
    assert.equal(row(md, '1,000 concurrent cold gets ≤ 150 ms in every run (shared').at(-1), 'not met', 'median 100 but one run took 151 ms')
    assert.equal(row(md, '1,000 concurrent cold gets ≤ 150 ms in every run (pinned').at(-1), '**met**')
    assert.equal(row(md, '100-byte get, steady state').at(-1), '**met**')
    assert.equal(row(md, 'peak RSS').at(-1), 'not measured', 'no 1 GiB figure in the run')
  })

  it('takes the before column from the baseline, with "–" for figures the baseline lacks', function () {
    const before = result('shared', { get: 180, raw: 780 })
    delete (before as any).mode
    delete before.systems['dstore-tls'].small!.steady
    const after = result('shared', { get: 400, cat: 500, raw: 800 })
    const md = beforeAfterSection({ shared: after }, { shared: before })
    assert.deepEqual(row(md, 'cold Local.get 256 MiB (MB/s)').slice(1), ['180', '400', '2.22× (higher is better)'])
    assert.deepEqual(row(md, '100-byte get, steady state: p99 (ms)').slice(1, 3), ['–', '1.50'])
    assert.equal(row(speedTargetsSection({ shared: after }, { shared: before }), 'cold Local.get of 256 MiB ≥ 0.45×')[1], '180 MB/s = 0.23× (raw TLS 780 MB/s)')
  })

  it('names the GC policy of each run: once when the runs agree, per run when they differ or one is not recorded', function () {
    const shared = { ...result('shared', { get: 300, raw: 700 }), gcPolicy: 'both' as const }
    const pinned = { ...result('pinned', { get: 300, raw: 700 }), gcPolicy: 'both' as const }
    assert.match(gcPolicyNote({ shared, pinned }), /: set in both dstore roles, as `dstore global` and `dstore local` run, in the shared and pinned runs alike\./)
    const mixed = gcPolicyNote({ shared, pinned: { ...pinned, gcPolicy: 'global' } })
    assert.match(mixed, /shared run: set in both dstore roles[^;]*; pinned run: set in dstore's provider only/)
    const old = gcPolicyNote({ shared, pinned: { ...pinned, gcPolicy: undefined } })
    assert.match(old, /pinned run: not recorded \(results before 2026-12-02\)/)
    assert.match(gcPolicyNote({ shared }), /^the serving policy [^:]*: shared run: set in both dstore roles/)
    assert.match(gcPolicyNote({ shared }), /Helia's roles and the raw references keep V8's own/)
  })

  it('--pinned refuses on a machine with one core, in one sentence', function () {
    const why = pinningUnavailable(1)
    assert.ok(why !== undefined && /at least 2 cores/.test(why) && !why.includes('\n'), String(why))
  })
})
