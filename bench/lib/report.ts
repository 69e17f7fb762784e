/**
 * Reporting for the comparison bench: the result types, the markdown tables (console and
 * docs), the throughput chart (hand-written SVG), and `docs/BENCHMARKS.md`, regenerated from
 * `bench/results/latest.json` (shared cores), `pinned.json` (pinned cores), `before-14.json` (the
 * baseline of issue #14, when present) and `bench/results/hash.json`.
 *
 *   node dist/bench/run.js --only report      (rewrites the docs from the stored results)
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import type { HttpBenchResult } from '../http.js'
import { httpSection } from './report-http.js'
import type { S3BenchResult } from '../s3.js'
import { s3Section } from './report-s3.js'
import { SWARM_JSON, type SwarmBenchResult } from '../swarm.js'
import { swarmSection, swarmSvg, SWARM_SVG_NAME } from './report-swarm.js'
import { speedSections, type SpeedRuns } from './report-speed.js'
import type { GcPolicy } from './gc-policy.js'

/** The repository root (this file runs from dist/bench/lib/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const LATEST_JSON = join(ROOT, 'bench', 'results', 'latest.json')
/** The comparison in pinned mode (`--pinned`: providers on core 0, requesters on core 1). */
export const PINNED_JSON = join(ROOT, 'bench', 'results', 'pinned.json')
/** Issue #14's baselines: a shared-mode result (a copy of latest.json before the work) and, optionally, a pinned one. */
export const BEFORE_14_JSON = join(ROOT, 'bench', 'results', 'before-14.json')
export const BEFORE_14_PINNED_JSON = join(ROOT, 'bench', 'results', 'before-14-pinned.json')
export const HASH_JSON = join(ROOT, 'bench', 'results', 'hash.json')
export const HTTP_JSON = join(ROOT, 'bench', 'results', 'http.json')
export const S3_JSON = join(ROOT, 'bench', 'results', 's3.json')
export const SOAK_JSON = join(ROOT, 'bench', 'results', 'soak.json')
/** Two `--quick` runs kept side by side: before and after a change (copied there by hand). */
export const QUICK_BEFORE_JSON = join(ROOT, 'bench', 'results', 'quick-before.json')
export const QUICK_AFTER_JSON = join(ROOT, 'bench', 'results', 'quick-after.json')
export const CHART_SVG = join(ROOT, 'docs', 'benchmarks-throughput.svg')
export const SWARM_SVG = join(ROOT, 'docs', SWARM_SVG_NAME)
export const BENCHMARKS_MD = join(ROOT, 'docs', 'BENCHMARKS.md')

export interface Figure { median: number, min: number, max: number, reps: number }
/** CPU seconds each side spent per GB moved (1e9 bytes), measured around each transfer. */
export interface CpuPerGB { sender: Figure, receiver: Figure }
export interface Timed { ms: Figure, MBps: Figure, cpuPerGB?: CpuPerGB }

export interface Latency { medianMs: number, p99Ms: number }

export interface SystemResult {
  system: string
  encryption: string
  /** False when the role could not be started (then `error` says why). */
  available: boolean
  /** Why the system could not be started. */
  error?: string
  /** Scenarios that failed (the others' figures are kept). */
  errors?: string[]
  /** Requester starts that failed and were retried once in a new process. */
  retries?: string[]
  /** Provider put at the API, by size in bytes. */
  put: Record<string, Timed>
  /**
   * dstore only: Local.put over the network. Its `cpuPerGB.sender` is the Local (the
   * requester role), `receiver` the Global.
   */
  localPut?: Record<string, Timed>
  /**
   * dstore only: the plain-write reference beside the put: the same bytes written to a file on
   * the store's file system as the fs store writes them (fdatasync included), no hashing.
   */
  plainWrite?: Record<string, Timed>
  coldGet: Record<string, Timed>
  /** dstore only: cold `Local.cat` (a requester with no cache, streaming), with both sides' CPU. */
  cat?: Record<string, Timed>
  /**
   * dstore only: cold `Local.get(cid, { into })` on a fresh Local, into a buffer of the caller's
   * made and touched before the window (as one reused get after get), with both sides' CPU.
   */
  getInto?: Record<string, Timed>
  /** dstore only: ms of the caller's copy (`slice`) of what a cold `Local.get` returned, timed apart from the get. */
  callerCopy?: Record<string, Figure>
  warmGet: Record<string, Timed>
  /** `n` values a run; latencies of `runs` runs pooled. */
  /**
   * `cold`: the first `n` sequential cold gets of a fresh requester; `steady`: `n` more cold
   * gets of other values on the same requester, right after (absent in older results).
   */
  small?: { n: number, runs?: number, size: number, cold: Latency, steady?: Latency, warm: Latency }
  concurrent?: { n: number, size: number, totalMs: Figure }
  /** Peak RSS of both processes during a streamed cold get, by size in bytes. */
  rss: Record<string, { requesterPeakMiB: Figure, providerPeakMiB: Figure, get: Timed }>
  startMs?: { provider: Figure, requester: Figure }
  /** dstore only: start with the pre-bundled library (`dstore/bundle`, as the `dstore` binary). */
  startMsBundled?: { provider: Figure, requester: Figure }
  /** The correctness guards that ran. */
  checks: string[]
}

export interface CompareResult {
  date: string
  node: string
  platform: string
  cores: number
  cpu: string
  memoryGiB: number
  loadavg: { before: number[], after: number[] }
  quick: boolean
  /** `shared` (absent in older results): every process on every core; `pinned`: see `pinning`. */
  mode?: 'shared' | 'pinned'
  /** Pinned mode: the core of the provider and server roles, and of the requester and client roles. */
  pinning?: { provider: number, requester: number }
  /** Where dstore's roles set the serving GC policy (`DSTORE_BENCH_GC`, lib/gc-policy.ts); absent: not recorded (results before 2026-12-02). */
  gcPolicy?: GcPolicy
  durationS: number
  baseSeed: number
  unit: string
  sizes: number[]
  rawSizes: number[]
  systems: Record<string, SystemResult>
  /** kind → size → transfer. */
  raw: Record<string, Record<string, Timed>>
}

const KiB = 1024
const MiB = 1 << 20
const GiB = 1 << 30

const RAW_LABEL: Record<string, string> = {
  noise: 'raw libp2p stream, noise',
  plaintext: 'raw libp2p stream, plaintext',
  tls: 'raw libp2p stream, TLS',
  tcp: 'raw node:net TCP'
}

export function sizeName (size: number): string {
  return size >= GiB ? `${size / GiB} GiB` : size >= MiB ? `${size / MiB} MiB` : `${size / KiB} KiB`
}

export function num (x: number): string {
  const a = Math.abs(x)
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : a >= 0.01 ? x.toFixed(3) : x.toPrecision(2)
}

export function fig (f: Figure | undefined): string {
  if (f == null) return '–'
  return f.reps > 1 ? `${num(f.median)} (${num(f.min)}–${num(f.max)})` : num(f.median)
}

function times (x: number): string {
  return `${x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)}×`
}

function ratio (a: Figure | undefined, b: Figure | undefined): string {
  if (a == null || b == null || b.median === 0) return '–'
  return times(a.median / b.median)
}

/** Sender and receiver CPU seconds per GB, as two cells. */
function cpuPair (t: Timed | undefined): string[] {
  if (t?.cpuPerGB == null) return ['–', '–']
  return [t.cpuPerGB.sender.median.toFixed(2), t.cpuPerGB.receiver.median.toFixed(2)]
}

export function table (head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map(r => `| ${r.join(' | ')} |`)].join('\n')
}

function present (r: CompareResult): SystemResult[] {
  return Object.values(r.systems).filter(s => s.available)
}

export function unavailable (r: CompareResult): string {
  const lines = Object.values(r.systems).flatMap(s => [
    ...(s.available ? [] : [`- **${s.system}**: not available: ${s.error ?? 'unknown error'}`]),
    ...(s.errors ?? []).map(e => `- **${s.system}** failed in ${e}`),
    ...(s.retries ?? []).map(e => `- **${s.system}**: a ${e}; retried once in a new requester process (restarts are not what is measured)`)
  ])
  return lines.length > 0 ? lines.join('\n') + '\n\n' : ''
}

const dstoreNames = (r: CompareResult): string[] => present(r).filter(s => s.system.startsWith('dstore')).map(s => s.system)

/** The result tables in markdown (printed on the console and embedded in BENCHMARKS.md). */
export function markdownTables (r: CompareResult): string {
  const sys = present(r)
  const helia = r.systems.helia?.available === true ? r.systems.helia : undefined
  const sizes = r.sizes
  const out: string[] = []
  out.push(unavailable(r))

  out.push(`### Put (time median; MB/s median (min–max))\n\n`)
  const putRows: string[][] = []
  for (const s of sys) {
    putRows.push([`${s.system}: provider put (${s.system.startsWith('dstore') ? 'GlobalPeer.put' : 'at the API'})`, ...sizes.map(z => s.put[z] == null ? '–' : `${num(s.put[z].ms.median)} ms; ${fig(s.put[z].MBps)}`)])
  }
  for (const s of sys) {
    if (s.plainWrite == null) continue
    putRows.push([`${s.system}: plain write beside it (same bytes through the page cache, fs write + fdatasync, no hashing)`, ...sizes.map(z => s.plainWrite?.[z] == null ? '–' : `${num(s.plainWrite[z].ms.median)} ms; ${fig(s.plainWrite[z].MBps)}`)])
  }
  for (const s of sys) {
    if (s.localPut == null) continue
    putRows.push([`${s.system}: Local.put over the network`, ...sizes.map(z => s.localPut?.[z] == null ? '–' : `${num(s.localPut[z].ms.median)} ms; ${fig(s.localPut[z].MBps)}`)])
  }
  if (helia != null) {
    for (const d of dstoreNames(r)) putRows.push([`${d} / helia (provider put MB/s)`, ...sizes.map(z => ratio(r.systems[d].put[z]?.MBps, helia.put[z]?.MBps))])
  }
  out.push(table(['', ...sizes.map(sizeName)], putRows) + '\n')

  out.push(`\n### Cold get (fresh requester, empty store; MB/s median (min–max))\n\n`)
  const getRows: string[][] = sys.map(s => [s.system + (s.cat != null ? ' (Local.get)' : ''), ...sizes.map(z => fig(s.coldGet[z]?.MBps))])
  for (const s of sys) if (s.cat != null) getRows.push([`${s.system} (Local.cat, no cache)`, ...sizes.map(z => fig(s.cat?.[z]?.MBps))])
  for (const s of sys) if (s.getInto != null) getRows.push([`${s.system} (Local.get into a reused buffer)`, ...sizes.map(z => fig(s.getInto?.[z]?.MBps))])
  for (const [kind, bySize] of Object.entries(r.raw)) getRows.push([RAW_LABEL[kind] ?? kind, ...sizes.map(z => fig(bySize[z]?.MBps))])
  for (const d of dstoreNames(r)) {
    const s = r.systems[d]
    if (helia != null) getRows.push([`${d} / helia`, ...sizes.map(z => ratio(s.coldGet[z]?.MBps, helia.coldGet[z]?.MBps))])
    const rawName = s.encryption === 'tls' ? 'tls' : 'noise'
    const rawSame = r.raw[rawName]
    if (rawSame != null) {
      getRows.push([`${d} Local.get / raw ${rawName} stream`, ...sizes.map(z => ratio(s.coldGet[z]?.MBps, rawSame[z]?.MBps))])
      if (s.cat != null) getRows.push([`${d} Local.cat / raw ${rawName} stream`, ...sizes.map(z => ratio(s.cat?.[z]?.MBps, rawSame[z]?.MBps))])
      if (s.getInto != null) getRows.push([`${d} Local.get into a reused buffer / raw ${rawName} stream`, ...sizes.map(z => ratio(s.getInto?.[z]?.MBps, rawSame[z]?.MBps))])
    }
    if (rawName !== 'noise' && r.raw.noise != null) getRows.push([`${d} Local.get / raw noise stream`, ...sizes.map(z => ratio(s.coldGet[z]?.MBps, r.raw.noise[z]?.MBps))])
  }
  if (helia != null && r.raw.noise != null) getRows.push(['helia / raw noise stream', ...sizes.map(z => ratio(helia.coldGet[z]?.MBps, r.raw.noise[z]?.MBps))])
  out.push(table(['', ...sizes.map(sizeName)], getRows) + '\n')

  const cpuSizes = sizes.filter(z => z >= 64 * MiB)
  const cpuRows: string[][] = []
  for (const s of sys) cpuRows.push([s.system + (s.cat != null ? ' Local.get' : ''), ...cpuSizes.flatMap(z => cpuPair(s.coldGet[z]))])
  for (const s of sys) if (s.cat != null) cpuRows.push([`${s.system} Local.cat`, ...cpuSizes.flatMap(z => cpuPair(s.cat?.[z]))])
  for (const s of sys) if (s.getInto != null) cpuRows.push([`${s.system} Local.get into a reused buffer`, ...cpuSizes.flatMap(z => cpuPair(s.getInto?.[z]))])
  for (const [kind, bySize] of Object.entries(r.raw)) cpuRows.push([RAW_LABEL[kind] ?? kind, ...cpuSizes.flatMap(z => cpuPair(bySize[z]))])
  for (const s of sys) if (s.localPut != null) cpuRows.push([`${s.system} Local.put over the network (sender: the Local; receiver: the Global)`, ...cpuSizes.flatMap(z => cpuPair(s.localPut?.[z]))])
  if (cpuRows.some(row => row.slice(1).some(c => c !== '–'))) {
    out.push(`\n### CPU per GB moved (seconds of CPU, all threads, per 10^9 bytes; median)\n\n`)
    out.push(r.mode === 'pinned'
      ? `Pinned: each side has a core of its own, so the busier side bounds throughput: at most 1 / max(sender, receiver) GB/s. In a get the sender is the provider, in a Local.put the Local.\n\n`
      : `Both processes share the same cores, so the sum of the two columns bounds throughput: with ${r.cores} cores, at most ${r.cores} / (sender + receiver) GB/s. In a get the sender is the provider, in a Local.put the Local.\n\n`)
    out.push(table(['', ...cpuSizes.flatMap(z => [`${sizeName(z)} sender`, `${sizeName(z)} receiver`])], cpuRows) + '\n')
  }

  const copyRows = sys.filter(s => s.callerCopy != null).map(s => [s.system, ...sizes.map(z => {
    const c = s.callerCopy?.[z]
    return c == null ? '–' : `${fig(c)} ms = ${num(c.median / 1000 / (z / 1e9))} s/GB`
  })])
  if (copyRows.length > 0) {
    out.push(`\n### The caller's copy of a cold Local.get's result (\`slice\` into fresh memory, timed apart from the get; ms and CPU s per GB)\n\n`)
    out.push(table(['', ...sizes.map(sizeName)], copyRows) + '\n')
  }

  out.push(`\n### Warm get (dstore: Local cache hit; Helia: blocks in the requester's blockstore; MB/s)\n\n`)
  const warmRows: string[][] = sys.map(s => [s.system, ...sizes.map(z => fig(s.warmGet[z]?.MBps))])
  if (helia != null) for (const d of dstoreNames(r)) warmRows.push([`${d} / helia`, ...sizes.map(z => ratio(r.systems[d].warmGet[z]?.MBps, helia.warmGet[z]?.MBps))])
  out.push(table(['', ...sizes.map(sizeName)], warmRows) + '\n')

  const withSmall = sys.filter(s => s.small != null)
  if (withSmall.length > 0) {
    const n = withSmall[0].small?.n ?? 1000
    const size = withSmall[0].small?.size ?? 100
    const runs = withSmall[0].small?.runs ?? 1
    out.push(`\n### ${n} × ${size}-byte values (sequential latency in ms${runs > 1 ? `, ${runs} runs pooled` : ''}; concurrent: total ms, median (min–max); a ratio below 1 means dstore is faster)\n\n`)
    const lat = (l: Latency | undefined): string[] => l == null ? ['–', '–'] : [num(l.medianMs), num(l.p99Ms)]
    const rows = withSmall.map(s => [s.system, ...lat(s.small!.cold), ...lat(s.small!.steady), ...lat(s.small!.warm), fig(s.concurrent?.totalMs)])
    if (helia?.small != null) {
      for (const d of dstoreNames(r)) {
        const a = r.systems[d]
        if (a.small == null) continue
        const q = (x: Latency | undefined, y: Latency | undefined): string[] => x == null || y == null ? ['–', '–'] : [times(x.medianMs / y.medianMs), times(x.p99Ms / y.p99Ms)]
        rows.push([`${d} / helia`, ...q(a.small.cold, helia.small.cold), ...q(a.small.steady, helia.small.steady), ...q(a.small.warm, helia.small.warm), ratio(a.concurrent?.totalMs, helia.concurrent?.totalMs)])
      }
    }
    out.push(`"First ${n}": sequential cold gets on a fresh requester; "steady state": ${n} further cold gets of other values on the same requester, right after.\n\n`)
    out.push(table(['', `first ${n} cold: median`, 'p99', 'steady-state cold: median', 'p99', 'warm median', 'warm p99', `${n} concurrent cold gets`], rows) + '\n')
  }

  const rssRows: string[][] = []
  for (const s of sys) {
    for (const [size, m] of Object.entries(s.rss)) rssRows.push([s.system, sizeName(Number(size)), fig(m.requesterPeakMiB), fig(m.providerPeakMiB), fig(m.get.MBps)])
  }
  if (rssRows.length > 0) {
    out.push(`\n### Peak RSS during a streamed cold get (MiB; fresh requester and provider processes, the provider serving the value from its store)\n\n`)
    out.push(table(['', 'value', 'requester peak', 'provider peak', 'cold get MB/s'], rssRows) + '\n')
  }

  const startRows = sys.filter(s => s.startMs != null).flatMap(s => [
    [s.system, fig(s.startMs!.provider), fig(s.startMs!.requester)],
    ...(s.startMsBundled != null ? [[`${s.system} (dstore/bundle, as the CLI)`, fig(s.startMsBundled.provider), fig(s.startMsBundled.requester)]] : [])
  ])
  if (startRows.length > 0) {
    out.push(`\n### Start time of a fresh process, imports included (ms, until started / connected)\n\n`)
    out.push(table(['', 'provider', 'requester'], startRows) + '\n')
  }
  return out.join('')
}

// ---- chart ------------------------------------------------------------------------------

interface Series { label: string, color: string, dashed: boolean, points: Array<{ x: number, y: Figure }> }

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Cold-get throughput against value size (log–log), hand-written SVG. */
export function throughputSvg (r: CompareResult): string {
  const colors: Record<string, string> = { 'dstore-tls': '#1f6feb', 'dstore-noise': '#8250df', helia: '#d1242f', noise: '#57606a', plaintext: '#9a6700', tls: '#1a7f37', tcp: '#0a3069' }
  const series: Series[] = []
  for (const s of present(r)) {
    series.push({ label: s.system, color: colors[s.system] ?? '#000', dashed: false, points: r.sizes.filter(z => s.coldGet[z] != null).map(z => ({ x: z, y: s.coldGet[z].MBps })) })
  }
  for (const [kind, bySize] of Object.entries(r.raw)) {
    series.push({ label: RAW_LABEL[kind] ?? kind, color: colors[kind] ?? '#666', dashed: true, points: r.rawSizes.filter(z => bySize[z] != null).map(z => ({ x: z, y: bySize[z].MBps })) })
  }
  const W = 820
  const H = 480
  const L = 70
  const R = 250
  const T = 50
  const B = 60
  const xs = [...new Set(series.flatMap(s => s.points.map(p => p.x)))].sort((a, b) => a - b)
  const ys = series.flatMap(s => s.points.flatMap(p => [p.y.min, p.y.max, p.y.median])).filter(y => y > 0)
  if (xs.length === 0 || ys.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="80"><text x="10" y="40">no data</text></svg>\n`
  const x0 = Math.log2(xs[0])
  const x1 = Math.log2(xs[xs.length - 1])
  const y0 = Math.floor(Math.log10(Math.min(...ys)))
  const y1 = Math.ceil(Math.log10(Math.max(...ys)))
  const px = (x: number): number => L + (x1 === x0 ? 0.5 : (Math.log2(x) - x0) / (x1 - x0)) * (W - L - R)
  const py = (y: number): number => T + (1 - (Math.log10(y) - y0) / (y1 - y0)) * (H - T - B)
  const el: string[] = []
  el.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`)
  el.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  el.push(`<text x="${L}" y="24" font-size="15" font-weight="600">Cold get throughput by value size (MB/s, log–log)</text>`)
  el.push(`<text x="${L}" y="40" fill="#57606a">two processes on 127.0.0.1, ${r.cores} cores, Node ${esc(r.node)}, ${r.date.slice(0, 10)}${r.quick ? ' (quick run)' : ''}; bars: min–max</text>`)
  for (let e = y0; e <= y1; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e
      if (Math.log10(v) > y1 + 1e-9) continue
      const y = py(v)
      el.push(`<line x1="${L}" x2="${W - R}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${m === 1 ? '#d0d7de' : '#eef1f4'}"/>`)
      if (m === 1 || y1 - y0 <= 2) el.push(`<text x="${L - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end" fill="#57606a">${v >= 1 ? v.toFixed(0) : v}</text>`)
    }
  }
  for (const x of xs) {
    const X = px(x)
    el.push(`<line x1="${X.toFixed(1)}" x2="${X.toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#eef1f4"/>`)
    el.push(`<text x="${X.toFixed(1)}" y="${H - B + 18}" text-anchor="middle" fill="#57606a">${sizeName(x)}</text>`)
  }
  el.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#8c959f"/>`)
  el.push(`<text x="${(L + (W - R)) / 2}" y="${H - 18}" text-anchor="middle">value size</text>`)
  el.push(`<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">MB/s (10^6 bytes per second)</text>`)
  series.forEach((s, i) => {
    const pts = s.points.map(p => `${px(p.x).toFixed(1)},${py(p.y.median).toFixed(1)}`).join(' ')
    el.push(`<g stroke="${s.color}" fill="${s.color}">`)
    el.push(`<polyline points="${pts}" fill="none" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`)
    for (const p of s.points) {
      const X = px(p.x)
      if (p.y.max > p.y.min) el.push(`<line x1="${X.toFixed(1)}" x2="${X.toFixed(1)}" y1="${py(p.y.max).toFixed(1)}" y2="${py(p.y.min).toFixed(1)}" stroke-width="1.5"/>`)
      el.push(`<circle cx="${X.toFixed(1)}" cy="${py(p.y.median).toFixed(1)}" r="3.5"><title>${esc(s.label)}, ${sizeName(p.x)}: ${num(p.y.median)} MB/s (${num(p.y.min)}–${num(p.y.max)})</title></circle>`)
    }
    el.push('</g>')
    const ly = T + 10 + i * 22
    el.push(`<line x1="${W - R + 20}" x2="${W - R + 50}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`)
    el.push(`<text x="${W - R + 58}" y="${ly + 4}">${esc(s.label)}</text>`)
  })
  for (const s of Object.values(r.systems).filter(s => !s.available)) {
    el.push(`<text x="${W - R + 20}" y="${T + 10 + series.length * 22 + 4}" fill="#57606a">${esc(s.system)}: not available</text>`)
  }
  el.push('</svg>')
  return el.join('\n') + '\n'
}

// ---- BENCHMARKS.md ----------------------------------------------------------------------

function hashSection (hash: any): string {
  if (hash == null) return 'No hashing figures yet: run `npm run bench -- --only hash`.\n'
  const sizes = ['1024', '65536', '1048576']
  const names = Object.keys(hash.results)
  const version = (pkg: string): string => {
    try {
      return ' ' + String(JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version)
    } catch { return '' }
  }
  const label = (name: string): string => {
    if (name.startsWith('dstore (')) return `**dstore (${name === 'dstore (wasm-simd)' ? 'WebAssembly SIMD' : /^dstore \(native-simd\d+\)$/.test(name) ? `native C, ${name.slice(19, -1)} lanes` : name.slice(8, -1)})**`
    if (name === 'dstore js') return 'dstore portable TypeScript'
    if (name === 'dstore wasm-simd') return 'dstore WebAssembly SIMD (the fallback)'
    return name + version(name)
  }
  let b3sum = 'b3sum'
  try { b3sum = execFileSync('b3sum', ['--version'], { encoding: 'utf8' }).trim() } catch {}
  const rows = names.map(name => {
    const bold = name.startsWith('dstore (')
    return [label(name), ...sizes.map(z => {
      const f = hash.results[name][z] as Figure | undefined
      if (f == null) return '–'
      return bold ? `**${num(f.median)}** (${num(f.min)}–${num(f.max)})` : num(f.median)
    })]
  })
  if (hash.b3sum?.singleThread != null) {
    rows.push([`${b3sum} (native, ${hash.b3sum.fileBytes / MiB} MiB file, 1 thread / default threads)`, '', '', `${num(hash.b3sum.singleThread.median)} / ${num(hash.b3sum.defaultThreads.median)}`])
  }
  const atMiB = hash.results[names[0]]?.['1048576']?.median as number | undefined
  return `\`bench/hash.ts\`, MB/s. Every implementation's digest is checked against dstore's before timing.
Measured ${String(hash.date).slice(0, 10)}, Node ${String(hash.node)}, ${String(hash.cpu)}, backend ${String(hash.backend)}.

${table(['implementation', '1 KiB', '64 KiB', '1 MiB'], rows)}

dstore needs subtree chaining values (chunk counter offset, non-root finalisation, parent
merges) for verified streaming, which none of the npm packages exposes; its own implementation
is also the fastest of them${atMiB != null ? `: ${(atMiB / 1000).toFixed(1)} GB/s at 1 MiB` : ''} against a 500 MB/s requirement.
`
}

/** The whole of docs/BENCHMARKS.md. */
/**
 * The issue's targets, checked against this run: what was measured and whether it met the
 * target. Computed from the results, so the document can never claim more than the data shows.
 */
export function targetsSection (r: CompareResult): string {
  const rows: string[][] = []
  const mark = (ok: boolean | undefined): string => ok === undefined ? 'not measured' : ok ? '**met**' : 'not met'
  for (const name of ['dstore-tls', 'dstore-noise']) {
    const s = r.systems[name]
    if (s?.available !== true) continue
    const rawName = name === 'dstore-tls' ? 'tls' : 'noise'
    for (const size of [64 * MiB, 256 * MiB]) {
      const get = s.coldGet[size]?.MBps.median
      const rawNoise = r.raw.noise?.[size]?.MBps.median
      const rawSame = r.raw[rawName]?.[size]?.MBps.median
      const ratio = get !== undefined && rawNoise !== undefined ? get / rawNoise : undefined
      rows.push([`${name}: cold get ${sizeName(size)} ≥ 90% of the raw noise stream${rawName === 'tls' ? ' (and of raw TLS)' : ''}`,
        get === undefined ? '–' : `${num(get)} MB/s = ${ratio !== undefined ? times(ratio) : '?'} raw noise${rawName === 'tls' && rawSame !== undefined ? `, ${times(get / rawSame)} raw TLS` : ''}`,
        mark(ratio === undefined ? undefined : ratio >= 0.9)])
    }
    if (s.small !== undefined) {
      rows.push([`${name}: 100-byte cold get median ≤ 0.6 ms`, `${num(s.small.cold.medianMs)} ms`, mark(s.small.cold.medianMs <= 0.6)])
      rows.push([`${name}: 100-byte cold get p99 ≤ 3 ms`, `${num(s.small.cold.p99Ms)} ms`, mark(s.small.cold.p99Ms <= 3)])
      rows.push([`${name}: warm get median ≤ 10 µs`, `${num(s.small.warm.medianMs * 1000)} µs`, mark(s.small.warm.medianMs * 1000 <= 10)])
    }
    if (s.concurrent !== undefined) {
      rows.push([`${name}: 1000 concurrent cold gets ≤ 150 ms`, `${num(s.concurrent.totalMs.median)} ms`, mark(s.concurrent.totalMs.median <= 150)])
    }
    const put = s.put[256 * MiB]?.MBps.median
    rows.push([`${name}: put 256 MiB at the API ≥ 500 MB/s`, put === undefined ? '–' : `${num(put)} MB/s`, mark(put === undefined ? undefined : put >= 500)])
    for (const [size, v] of Object.entries(s.rss)) {
      const worst = Math.max(v.requesterPeakMiB.median, v.providerPeakMiB.median)
      rows.push([`${name}: peak RSS ≤ 200 MiB on either side, ${sizeName(Number(size))}`, `requester ${num(v.requesterPeakMiB.median)}, provider ${num(v.providerPeakMiB.median)} MiB`, mark(worst <= 200)])
    }
    if (s.startMs !== undefined) {
      const lib = Math.max(s.startMs.provider.median, s.startMs.requester.median)
      rows.push([`${name}: peer start ≤ 400 ms, imports included (library, unbundled)`, `${num(lib)} ms`, mark(lib <= 400)])
    }
    if (s.startMsBundled !== undefined) {
      const b = Math.max(s.startMsBundled.provider.median, s.startMsBundled.requester.median)
      rows.push([`${name}: peer start ≤ 400 ms (dstore/bundle, as the CLI)`, `${num(b)} ms`, mark(b <= 400)])
    }
  }
  if (rows.length === 0) return ''
  return `## Targets (issue #5), checked against this run

${table(['target', 'measured', ''], rows)}
`
}

const GC_POLICY_TEXT: Record<GcPolicy, string> = {
  both: 'in both dstore roles, as `dstore global` and `dstore local` run',
  global: 'in dstore\'s provider only, as an application\'s own `createLocal` runs',
  default: 'in neither dstore role (V8\'s own policy)'
}

/** Where each stored run's dstore roles set the serving GC policy, and that the others do not. */
export function gcPolicyNote (modes: SpeedRuns): string {
  const runs = ([['shared', modes.shared], ['pinned', modes.pinned]] as const).filter(([, run]) => run !== undefined)
  const text = (run: CompareResult | undefined): string => run?.gcPolicy !== undefined ? `set ${GC_POLICY_TEXT[run.gcPolicy]}` : 'not recorded (results before 2026-12-02)'
  const texts = runs.map(([, run]) => text(run))
  const where = runs.length > 1 && new Set(texts).size === 1
    ? `${texts[0]}, in the ${runs.map(([mode]) => mode).join(' and ')} runs alike`
    : runs.map(([mode], i) => `${mode} run: ${texts[i]}`).join('; ')
  return `the serving policy (\`tuneGcForServing\`, src/peers/serving-gc.ts; \`DSTORE_BENCH_GC\`): ${where}.
  Helia's roles and the raw references keep V8's own: the policy makes no consistent
  difference to a raw TLS stream (\`scripts/measure-serving-gc.ts --raw --pinned --gets 6
  --rounds 2\`, 2026-12-02, six 256 MiB gets per process pair, two pairs per policy: median
  606 MB/s under V8's policy against 623 with the policy's flag; the same sequence run
  earlier that day from a scratch script, 750 against 708). Helia was not measured with it.`
}

export function benchmarksMarkdown (r: CompareResult, hash: any, modes: SpeedRuns = { shared: r.mode === 'pinned' ? undefined : r, pinned: r.mode === 'pinned' ? r : undefined }, before: SpeedRuns = {}): string {
  const la = (xs: number[]): string => xs.map(x => x.toFixed(2)).join(', ')
  const heliaNote = r.systems.helia?.available === true
    ? 'Helia: helia + @helia/unixfs + @helia/bitswap, fs blockstore, TCP + noise + yamux, no bootstrap, no DHT (`bench/roles/helia.ts`); its CIDs are UnixFS (SHA-256), so only byte counts are checked for it.'
    : `Helia: not available in this run (${r.systems.helia?.error ?? 'not run'}).`
  return `# Benchmarks

<!-- Generated by bench/lib/report.ts from bench/results/latest.json, pinned.json, before-14.json,
     hash.json and soak.json: edit the generator, not this file. -->

${r.mode === 'pinned' ? `**No shared-cores run stored (bench/results/latest.json): the tables below are the pinned run's.**

` : ''}Measured ${r.date.slice(0, 10)} on ${r.cores} cores (${r.cpu}), ${r.memoryGiB} GiB, ${r.platform},
Node ${r.node}, 127.0.0.1${r.quick ? ' (**quick run**: fewer repetitions, no 1 GiB)' : ''}. Load average
before / after the run: ${la(r.loadavg.before)} / ${la(r.loadavg.after)} (a shared machine: expect about ±30%).
Figures are medians with min–max over repetitions (one figure alone: a single run);
1 MB = 10^6 bytes, 1 MiB = 2^20 bytes. The comparison run took ${r.durationS.toFixed(0)} s.

## Reproduce

\`\`\`sh
npm run bench                       # hash + comparison on shared cores + http (about 15 minutes on 2 cores)
npm run bench -- --pinned           # the comparison alone, pinned: providers on core 0, requesters on core 1
npm run bench -- --quick            # fewer repetitions, no 1 GiB (about 3 minutes); --quick --pinned too
npm run bench -- --only compare     # or: hash, http, network (the older dstore-only bench), report
\`\`\`

\`--only report\` rewrites this file and the chart from the stored results. Raw figures:
\`bench/results/latest.json\` (comparison, shared cores), \`pinned.json\` (comparison, pinned),
\`before-14.json\` and \`before-14-pinned.json\` (issue #14's baselines, when present: the
before column of its tables) and \`bench/results/hash.json\` (hashing). \`--pinned\` needs
\`taskset\` (util-linux) and at least 2 cores, and refuses in one line without them.

## dstore beside Helia and the physical references

\`bench/compare.ts\`. Every role is its own process on 127.0.0.1 (provider and requester;
\`bench/roles/*.ts\`), driven over JSON lines on stdin/stdout. Each repetition uses fresh random
data; each cold get uses a requester restarted on an empty store.

- dstore: the provider is a Global (fs store, fsync on; its put is \`GlobalPeer.put\`: hash,
  verify, durable store); the requester is a Local with a 512 MiB cache, fetching with
  \`Local.get\` (verified, cached), so a warm get is a cache hit. \`Local.put\` over the network
  is shown too. In the RSS rows the Local has no cache and streams with \`Local.cat\`.
- ${heliaNote}
- GC policy: ${gcPolicyNote(modes)}
- Physical references (\`bench/roles/raw.ts\`): a bare libp2p node (TCP + noise, plaintext or
  TLS, + yamux) sending N bytes on one stream in 1 MiB writes with backpressure, and the same
  over a plain \`node:net\` socket: what the path can carry with no store, hashing or protocol.
- Guards: every get must deliver exactly the value's size; dstore's CIDs must equal
  \`cidOfBytes(data(size, seed))\` (values up to 64 MiB and all 100-byte values); dstore's warm
  gets must be cache hits. A run that fails a guard reports the error instead of figures.

![Cold get throughput by value size](benchmarks-throughput.svg)

${speedSections(modes, before)}
${targetsSection(r)}
${analysis(r)}
${markdownTables(r)}
## BLAKE3 hashing (one thread)

${hashSection(hash)}`
}

/**
 * The CPU bound of a transfer, in MB/s, from both sides' CPU seconds per GB. Shared cores: the
 * sides compete for `cores`, so `cores / (sender + receiver)`. Pinned: each side has a core of
 * its own, so the busier side bounds it: `1 / max(sender, receiver)`.
 */
export function cpuBoundMBps (mode: CompareResult['mode'], cores: number, cpu: CpuPerGB): number {
  const s = cpu.sender.median
  const rcv = cpu.receiver.median
  return mode === 'pinned' ? 1000 / Math.max(s, rcv) : cores / (s + rcv) * 1000
}

/** CPU bound of each system's cold get at `size` ({@link cpuBoundMBps}), beside what it reached. */
export function cpuBoundRows (r: CompareResult, size: number): string[][] {
  const rows: string[][] = []
  const add = (name: string, t: Timed | undefined): void => {
    if (t?.cpuPerGB == null) return
    const bound = cpuBoundMBps(r.mode, r.cores, t.cpuPerGB)
    const perGB = r.mode === 'pinned'
      ? `${t.cpuPerGB.sender.median.toFixed(2)} / ${t.cpuPerGB.receiver.median.toFixed(2)}`
      : (t.cpuPerGB.sender.median + t.cpuPerGB.receiver.median).toFixed(2)
    rows.push([name, perGB, `${bound.toFixed(0)} MB/s`, `${t.MBps.median.toFixed(0)} MB/s`, `${(100 * t.MBps.median / bound).toFixed(0)}%`])
  }
  for (const s of present(r)) {
    add(s.system + (s.cat != null ? ' Local.get' : ''), s.coldGet[size])
    if (s.cat != null) add(`${s.system} Local.cat`, s.cat[size])
    if (s.getInto?.[size] != null) add(`${s.system} Local.get into a reused buffer`, s.getInto[size])
  }
  for (const [kind, bySize] of Object.entries(r.raw)) add(RAW_LABEL[kind] ?? kind, bySize[size])
  for (const s of present(r)) if (s.localPut?.[size]?.cpuPerGB != null) add(`${s.system} Local.put over the network`, s.localPut[size])
  return rows
}

/** What the figures mean and where the remaining gaps come from (measured, see the text). */
function analysis (r: CompareResult): string {
  const size = r.sizes.includes(256 * MiB) ? 256 * MiB : r.sizes[r.sizes.length - 1]
  const rows = cpuBoundRows(r, size)
  const bound = rows.length === 0
    ? ''
    : `On this machine every system's large cold get is bound by CPU: both processes share ${r.cores} cores, so
throughput cannot pass ${r.cores} / (CPU seconds per GB of sender + receiver). For ${sizeName(size)} in this run:

${table(['', 'CPU s per GB (both sides)', 'bound', 'measured', 'of bound'], rows)}

(The pinned mode, one core a side, is in "Shared and pinned cores" above: there the bound is 1 / max(sender, receiver).)
`
  return `### Where the time goes (the cold-get gap)

${bound}
Every system reaches most of its bound, so the gap to the raw stream is CPU per byte, not waiting.
The raw noise stream needs about 2.5 s of CPU per GB in all; 90% of it would leave dstore about
2.8 s per GB for everything, while BLAKE3 alone costs 0.22 s per GB on one core with the native
backend (the official C code, AVX-512 here: 4.4–4.5 GB/s over 64 MiB of group CVs, 6.3–6.4 in the stored hash bench; 0.61 s per GB with the WebAssembly
SIMD fallback, about 1.6 GB/s; see "BLAKE3 hashing" below), and in this VM touching fresh memory costs
about 0.6 s per GB per copy (allocating and filling 64 MiB takes 37–45 ms the first time, 2.8 ms
when the memory is reused: page faults; see \`Local.put\` below for why they may be so dear on
this VM). So on 2 shared cores the 90% target is out of reach for
any implementation that verifies what it receives; the question is how close to the bound it gets.

Where dstore's CPU goes now (issue #14; \`scripts/profile-transfer.ts\`, which profiles each
role's main thread over one transfer, 256 MiB, TLS; note that a profile's own thread adds about
0.7 s per GB to the CPU it reports, so its CPU figures are taken with \`--no-profile\`):

- Receiver, since the native BLAKE3 backend (2026-12-03, \`profile-transfer --op get-into
  --pinned\`, 256 MiB): TLS decryption (\`readBuffer\`) is 26% of the main thread's busy time,
  BLAKE3 9% (58 ms, 0.22 s per GB, against 22–23% with WebAssembly), garbage collection 5%, the
  decoder's copy of each group into the caller's buffer 5%, and the rest (about half) is spread
  over yamux, libp2p's stream, the TLS socket's JavaScript stream and our framing, credit and
  decoder loops, none above 2%. A/B on one day (\`profile-transfer --no-profile\`, shared cores,
  two runs each, \`DSTORE_BLAKE3=wasm\` against the native default): the receiver of a get into
  a buffer 3.14–3.49 → 2.49–2.96 s per GB, of \`Local.cat\` 3.11–3.42 → 2.80–2.88, and the Local
  of a \`Local.put\` 4.32–4.83 → 2.82–3.25 with its Global 5.12–5.23 → 4.09–4.60.
- \`Local.get(cid, { into })\` decodes into a buffer the caller reuses, which takes away the page
  faults of a fresh value buffer: 0.84 s per GB of the receiver's CPU with the WebAssembly
  backend (2026-12-03, \`profile-transfer --no-profile\`, shared cores: a cold get 3.87, a get
  into a buffer 3.03; 0.71–0.96 in the two comparison runs with the native backend that day; \`scripts/measure-into.ts\` alternates the two gets in one Local). Kernel
  zeroing is most of that cost: in C, a fresh 256 MiB \`mmap\` filled by \`memcpy\` took 127 ms
  against 22 ms into touched memory, and \`MAP_POPULATE\` saved only 26 ms of the difference.
- Pinned, where each side has one core (2026-12-04, \`profile-transfer --op get --pinned\`,
  256 MiB, against \`--op raw --pinned\` in the same minutes): the receiver's CPU was 2.99–3.04 s
  per GB against the raw stream's 1.46–1.59 (\`--no-profile\`, two runs each: 308–310 MB/s
  against 498–514, 0.61×; the stored pinned run's raw stream read 781 MB/s). In the profile,
  TLS decryption (\`readBuffer\`) took 297 ms against the raw receiver's 260; backing the fresh
  value buffer (\`prefault\`, the kernel zeroing 256 MiB and, on this VM, the host faulting in
  memory the guest had given back) 190 ms; BLAKE3 102 ms; the decoder's copies 44 ms; garbage
  collection 44 ms; the rest is yamux, libp2p's stream and our framing and decoder loops. The
  fresh buffer is what \`Local.get\` returns and caches, so it cannot be reused; a get into a
  buffer of the caller's (\`into\`) skips it, and its pinned receiver is at about 1.9 s per GB.
  The next step for a cold \`Local.get\` is the rest: pooling the per-frame buffers of TLS,
  yamux and the decoder (not done; TLS's are Node's own), and hashing on a worker where a core
  is free (pinned mode gives each process one core, so none is).
- Since 2026-12-04 the decoder has the kernel back each batch's slice of a fresh value buffer
  in one call before it copies groups into it (\`madvise(MADV_POPULATE_WRITE)\`,
  src/core/prefault.ts): in node, filling a fresh 256 MiB buffer in 16 KiB copies took 142–165 ms
  (CPU median 157 ms) without it and 75–102 ms (CPU median 93 ms) with it (12 rounds each, in
  alternating processes); a cold 256 MiB get's
  receiver took 3.39–3.93 s per GB without it and 3.05–3.40 with it (\`profile-transfer --op get
  --no-profile\`, 4 rounds, alternating). Transparent huge pages, which this VM offers by
  \`madvise\`, were worse: the first fill of a fresh 256 MiB took 554–580 ms, as this VM's
  balloon reports freed 2 MiB blocks to the host (free page reporting, order 9), so every fresh
  huge page faults on the host too; only memory reused within a process filled fast (30–50 ms).
- Receiver, cold \`Local.get\` (before the native backend): copying verified groups into the fresh value buffer 19–34% of
  the busy time (mostly page faults: this VM's transparent huge pages are \`madvise\`, which Node
  cannot ask for itself, so a 256 MiB buffer takes 65,536 faults; the addon can, and lost: see
  the prefault bullet above), TLS decryption 15–18%, BLAKE3 11–13%,
  garbage collection 4%. Our per-record layers between yamux and the decoder (framing, credit
  counting, the decoder's pull loop, the abort wrapper) are 4–5% together: measured in one
  process (\`scripts/measure-chain.ts\`), 16 KiB records cost 1.18 s per GB against 0.99 for
  1 MiB records, and a fresh target adds 0.4–0.6. The caller's copy is gone: \`Local.get\`
  returns the cache's bytes (shared, read-only; README), which removed 15% of the receiver's
  busy time; the table above times the copy a caller that needs its own array makes.
- Sender (the Global): TLS encryption is its largest cost, and the encoder no longer copies
  (the fs store scatter-reads each piece's data straight into its slots between the parents,
  and a GET's pieces are reused once the Local's CREDIT proves it consumed them). Its cost used
  to double after its first gets (2.4–3.8 s per GB for the first get of a provider process,
  3.8–5.3 for every later one). The cause is V8's heap policy: V8 (before 12; Node 24's V8
  accounts differently, with the same outcome here) counts the external memory
  allocated since its last mark-compact against the old generation's limit, which it sets at
  about twice the live heap (25 MB here: a 49 MB limit), and TLS (node's TLSSocket over a
  JavaScript stream, as @libp2p/tls runs it) hands every record's ciphertext to JavaScript in
  a fresh buffer. So once the limit had been set from the live heap, V8 started a full
  incremental marking every ~17 MiB sent, before a scavenge could free those buffers: 15
  mark-compacts per 256 MiB (\`--trace-gc --trace-incremental-marking\`: "Start (allocation
  limit)" and "Start (task)" with 25 of 49 MB used). \`dstore global\` and the provider role
  were the first to grow the heap at V8's largest dynamic factor (\`tuneGcForServing\`,
  src/peers/serving-gc.ts): in \`scripts/measure-serving-gc.ts --pinned\` (3–4 gets in one
  provider process, two runs), the sender's later gets went from 2.90–4.09 to 1.62–1.77 s per
  GB with 10–16 mark-compacts a get against none, and on Node 24 (the same sequence) from
  3.05–4.19 to 1.20–1.70, with no change to the peak RSS of a 1 GiB streamed get
  (fresh processes, requester/provider MiB: 157/175 with V8's policy, 162/177 with the serving
  policy in both). The receiver suffers the same way (its TCP reads and TLS cleartext are
  fresh buffers too), so \`dstore local\` sets the policy as well, and so does the bench's
  requester (the raw references keep V8's own: see the GC policy bullet above). In
  \`measure-serving-gc.ts --pinned --one-local --gets 6\` (2026-12-02: one Local getting six
  256 MiB values in turn, as a daemon does; figures for gets 2–6, since the first is cheap
  either way)
  the requester ran 9–15 mark-compacts a get under V8's policy and 1 under the serving one;
  its CPU was 4.20–5.55 s per GB (median 4.63) at a median 174 MB/s under V8's policy on both
  sides, 4.48–5.43 (median 4.66) at 213 MB/s with the policy in the provider only (an
  application's own \`createLocal\`, which leaves the process's flags alone), and 3.27–3.77
  (median 3.63) at 273 MB/s with it in both. What the policy costs a Local is memory that
  waits longer: evicted values and a stopped Local's cache are freed only by a mark-compact,
  and there are fewer of those. That Local's RSS after each get (its cache holds two 256 MiB
  values) was 932–937 MiB from the third get on with V8's policy on both sides and 927–930
  with the serving one, but once 1,187 (two dead values instead of one); a full collection
  left 672–681 either way. With a fresh Local per get (\`--pinned --gets 4\`), the RSS after
  each Local stopped was 406–418 MiB with V8's policy in the requester (one stopped cache
  still mapped) and up to 925–931 with the serving one (three; two runs), and a full
  collection brought it back to 157–160 either way: nothing leaks.
- A signal shared by many calls (the CLI's, the bench roles') kept the value of the first call
  that raced it reachable for as long as it lived: \`onAbort\`'s one listener per signal shared
  the first call's scope. Fixed (test-abort checks it with WeakRefs).
- Hashing on a worker thread was tried for \`Local.put\` and measured slower on 2 shared cores
  (the copy into shared memory that a worker needs comes before the first byte is sent), so a
  put hashes on the main thread, and its cache copy is made while the value is being sent.

The 100-byte p99 is partly warm-up, and the steady state is not at its target either (in the
2026-12-04 runs the first-1000 and steady-state p99s were 3.73 and 2.50 ms in one shared run
and 3.36 and 3.27 in the stored one, pinned 4.17 and 3.38). Tried that day without a gain:
\`--single-threaded-gc\` in both roles (\`scripts/measure-small.ts\`, two runs each, alternating:
first-1000 p99 5.4–6.0 ms against 4.8–4.9, steady 3.8–3.9 against 3.0–3.6, on a noisy
evening). The next step is fewer allocations per small get on both sides (each scavenge a get
meets is a spike), which needs an allocation profile of a small get; it was not taken.
The harness times the first 1000 gets of a fresh Local, then 1000 more. On 2026-12-03, with
the native backend and the yamux window rule (src/peers/yamux-window.ts: a window update per
half window instead of per frame, which cut a small get's CPU by about 15% on the Global and
8% on the Local), the morning's shared run read first-1000 p99 4.05 ms and steady-state 2.30
(p50 0.40 and 0.35), its pinned run 4.50 and 3.64; a run earlier that day without the rule,
3.92 and 2.84 (that afternoon's runs were on a machine about twice as slow per get; the tables
above are the latest run's). Spikes over 2 ms come with scavenges on either side or with the other process being
scheduled (\`scripts/measure-small.ts --trace-gc\`: in the morning 5 collections of 2–8 ms
fell among 12 spikes in one run; in the afternoon 27–33 of a run's 48–50 scavenges took over
3 ms, the longest 33 ms, most of them in the Local), and a semi-space of 1 or 64 MiB instead of V8's default changed nothing beyond
the spread of the day. Measured apart on an earlier day (one Local, three runs of 1000 cold
gets of other values): p99 3.8–4.0 ms in the first run, 2.8–3.4 in the second, 1.65–1.94 in
the third (median 0.48, then 0.33 ms). A raw libp2p TLS stream echoing 100 bytes behaves the
same: p99 3.3 ms over its first 1000 round trips, then 0.8–1.6 ms. Nor is the serving GC
policy in the requester the cause of a worse run: \`scripts/measure-small.ts\` with
\`DSTORE_BENCH_GC=global\` (the policy in the provider only) and \`both\`, two runs each,
interleaved on 2026-12-02, read a first-1000 p99 of 4.4–4.9 ms and a steady-state p99 of
3.4–3.8 against 4.7–4.9 and 3.0–3.8: the same within the spread of the day.

\`Local.put\` over the network is bound by both sides' CPU (2026-12-03: the Local 2.4–3.5 s per
GB, the Global 3.9–4.6 in the morning's runs and 5.14 in the afternoon's, before direct writes;
see below for since). \`profile-transfer --op put --pinned\`: on the Global, TLS decryption
is 15% of the main thread, BLAKE3 9% and the copy into staging slots 4.5%, and the thread
pool's page-cache writes and fdatasyncs share its core (they show as time in \`writeBuffer\`,
preempted); on the Local, TLS encryption 17% and the cache's copy of the value
(\`put-copy.ts\`, fresh memory) 10%.

Since then (2026-12-03, later): a put keeps a value for the cache only up to a quarter of the
cache's budget, in hand or streamed, so a 256 MiB put makes no copy: the Local's CPU went from
2.85–3.11 to 2.33–2.55 s per GB (\`profile-transfer --op put --no-profile\`, shared, three runs
each). The next step, writing network pieces to the file without the slot copy, is not done.

Before direct writes (2026-12-03), the Global's side was where the time was, nearly half of it
the kernel's. Its CPU per
thread (\`/proc/<pid>/task/*/stat\`, five 256 MiB puts from a Local in another process, sync on
in three and off in two, alike): the main thread 0.53–0.70 s, V8's four helper threads about
0.2 s, and the four thread-pool threads 0.61–0.78 s of *kernel* time (2.3–2.9 s per GB) for the
65 positioned writes of 4 MiB into the page cache; 1.3–1.7 s in all, 4.9–6.3 s per GB. The same
writes from a plain Node script (each round a new file, the last one deleted) took 0.06–0.12 s
per 256 MiB when a round followed the one before within a second, and 0.53–0.87 s when it
followed 3 s of rest; \`dd bs=4M\` behaves the same. The likely reason is this VM: its balloon
device reports free pages to the host (\`/sys/module/page_reporting\`; its \`reported_kib\`
rose by 62 MiB in the 4 s after a 256 MiB file was deleted), so memory the guest freed a moment
ago is given back, and the next touch of it faults on the host. So here the Global's page-cache
writes cost more CPU than the whole raw TLS receiver (1.1–1.9 s per GB), and 2 shared cores
bound \`Local.put\` at about 2 / (Local 2.3–2.6 + Global 4.9–6.3) = 225–280 MB/s, against a
target of 0.5× raw TLS, 250–365 MB/s over the day's three runs: reachable only at the bottom of
that range. A host that keeps its free memory should not pay this (not measured here).

Since 2026-12-04 the fs store writes large values with \`O_DIRECT\` (docs/STORAGE.md, "Direct
I/O"): aligned slots, the last one padded, then truncated. The Global's CPU for a 256 MiB
\`Local.put\` went from 5.05–6.07 to 2.82–3.54 s per GB (\`profile-transfer --op put
--no-profile\`, three runs each, alternating with the previous commit), and the put at the API
now passes the plain write through the page cache beside it. A value of 4 MiB or more just put
is then not in the page cache, so a read of such a file the page cache does not hold is direct
too (a bounce
buffer, then a copy), and a value's second whole read within a minute goes through the page
cache, which then keeps it: in the comparison, the "get into a buffer" step is that second
read, and its sender pays the page cache's fill that the put paid before. Values under 4 MiB
are written and read through the page cache (\`DIRECT_MIN_SIZE\`): with direct I/O the first
get of a 1 MiB value just put waited on the disk, a median of 19.8 ms against 16.9 through the
page cache (a fresh Local per get, 15 alternating rounds), which is why the 1 MiB cold get of
the comparison fell at first (41 MB/s at 127e085, 38.5 in a run on 433592d) and was 51 MB/s in
the stored run after the rule. Also tried on 2026-12-04 and dropped: a floor of 1 ms under
yamux's measured round trip, so that its window growth rule (double when a window is used
within 4 round trips) could hold on loopback, where the round trip reads 0 ms: 1 MiB and
4 MiB cold gets did not change (19.5 against 21.7 ms and 37.5 against 39.4, 15 alternating
rounds, within the spread).

What was fixed on the way (each measured): a Promise.race and timer per chunk for idle
timeouts (−15–25%), a second hash of every fetched value on its way into the cache, and
unbounded buffering below libp2p: without the blob streams' credit-based flow control
(docs/PROTOCOL.md), a Global receiving or serving 512 MiB reached 370–550 MiB RSS.

Puts: dstore's \`GlobalPeer.put\` is durable when it resolves (fdatasync, rename, directory
fsync, index commit: docs/STORAGE.md). Helia's blockstore-fs writes each block with \`steno\`
(\`writeFile\` then \`rename\`, no fsync), so its put is not durable across a power loss. In this
VM, writing new data into the page cache was the limit of a put until the store wrote directly
(the plain write beside the put in the tables above is that page-cache reference): plain \`FileHandle.write\` of 256 MiB
in 4 MiB pieces runs at 1.8–3.0 GB/s into pages freed by deleting earlier files, but at
0.4–3.0 GB/s when earlier files are kept (as a store keeps them), and a put writes about 9.5 ms
per 4 MiB piece under \`strace\` against 1–2 ms for freed pages. The same store measured
0.75–1.07 GB/s in \`scripts/measure-put.ts\` on an earlier day and 300–620 MB/s on 2026-12-03,
through the page cache; written directly, the put at the API is the tables' figure.
`
}

/** Writes latest.json (shared mode) or pinned.json (pinned mode), the SVG chart and docs/BENCHMARKS.md. */
export async function writeReport (r: CompareResult): Promise<void> {
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
  const file = r.mode === 'pinned' ? PINNED_JSON : LATEST_JSON
  await writeFile(file, JSON.stringify(r, null, 2) + '\n')
  await writeDocs(r)
  console.log(`wrote ${file}, ${CHART_SVG}, ${BENCHMARKS_MD}`)
}

async function readResult (path: string): Promise<CompareResult | undefined> {
  return existsSync(path) ? JSON.parse(await readFile(path, 'utf8')) as CompareResult : undefined
}

/**
 * Writes the chart and BENCHMARKS.md from a result (shared or pinned; the other mode, the #14
 * baselines and the hashing figures are read from bench/results/ when there). The document's
 * main tables and the chart are the shared run's; without one (only a pinned run so far), the
 * pinned run's.
 */
export async function writeDocs (r?: CompareResult): Promise<void> {
  const shared = r != null && r.mode !== 'pinned' ? r : await readResult(LATEST_JSON)
  const pinned = r?.mode === 'pinned' ? r : await readResult(PINNED_JSON)
  const result = shared ?? pinned
  if (result == null) throw new Error(`no results to report: neither ${LATEST_JSON} nor ${PINNED_JSON} exists (run npm run bench first)`)
  const before: SpeedRuns = { shared: await readResult(BEFORE_14_JSON), pinned: await readResult(BEFORE_14_PINNED_JSON) }
  const hash = existsSync(HASH_JSON) ? JSON.parse(await readFile(HASH_JSON, 'utf8')) : undefined
  const soak = existsSync(SOAK_JSON) ? JSON.parse(await readFile(SOAK_JSON, 'utf8')) : undefined
  const http = existsSync(HTTP_JSON) ? JSON.parse(await readFile(HTTP_JSON, 'utf8')) as HttpBenchResult : undefined
  const s3 = existsSync(S3_JSON) ? JSON.parse(await readFile(S3_JSON, 'utf8')) as S3BenchResult : undefined
  const swarm = existsSync(SWARM_JSON) ? JSON.parse(await readFile(SWARM_JSON, 'utf8')) as SwarmBenchResult : undefined
  const quick = existsSync(QUICK_BEFORE_JSON) && existsSync(QUICK_AFTER_JSON)
    ? [JSON.parse(await readFile(QUICK_BEFORE_JSON, 'utf8')), JSON.parse(await readFile(QUICK_AFTER_JSON, 'utf8'))] as [CompareResult, CompareResult]
    : undefined
  await mkdir(join(ROOT, 'docs'), { recursive: true })
  await writeFile(CHART_SVG, throughputSvg(result))
  if (swarm != null) await writeFile(SWARM_SVG, swarmSvg(swarm))
  await writeFile(BENCHMARKS_MD, benchmarksMarkdown(result, hash, { shared, pinned }, before) + (http != null ? httpSection(http) : '') + (s3 != null ? s3Section(s3) : '') + (swarm != null ? swarmSection(swarm) : '') + (soak != null ? soakSection(soak) : '') + (quick != null ? quickSection(...quick) : ''))
}

/** Two `--quick` runs side by side (bench/results/quick-before.json and quick-after.json). */
function quickSection (before: CompareResult, after: CompareResult): string {
  const M = 2 ** 20
  const pick: Array<[string, (s: any, r: CompareResult) => number | undefined, string]> = [
    ['put 256 MiB at the API (MB/s)', s => s.put?.[256 * M]?.MBps.median, 'higher'],
    ['Local.put 256 MiB over the network (MB/s)', s => s.localPut?.[256 * M]?.MBps.median, 'higher'],
    ['cold get 64 MiB (MB/s)', s => s.coldGet?.[64 * M]?.MBps.median, 'higher'],
    ['cold get 256 MiB (MB/s)', s => s.coldGet?.[256 * M]?.MBps.median, 'higher'],
    ['cold get 256 MiB: CPU s/GB, sender', s => s.coldGet?.[256 * M]?.cpuPerGB?.sender.median, 'lower'],
    ['cold get 256 MiB: CPU s/GB, receiver', s => s.coldGet?.[256 * M]?.cpuPerGB?.receiver.median, 'lower'],
    ['warm get 64 MiB (MB/s)', s => s.warmGet?.[64 * M]?.MBps.median, 'higher'],
    ['100-byte cold get, median (ms)', s => s.small?.cold.medianMs, 'lower'],
    ['100-byte cold get, p99 (ms)', s => s.small?.cold.p99Ms, 'lower'],
    ['1000 concurrent cold gets (ms)', s => s.concurrent?.totalMs.median, 'lower'],
    ['streamed cold get 256 MiB: requester peak RSS (MiB)', s => s.rss?.[256 * M]?.requesterPeakMiB.median, 'lower'],
    ['streamed cold get 256 MiB: provider peak RSS (MiB)', s => s.rss?.[256 * M]?.providerPeakMiB.median, 'lower'],
    ['start, bundled: requester (ms)', s => s.startMsBundled?.requester?.median, 'lower']
  ]
  const rows: string[][] = []
  for (const name of ['dstore-tls', 'dstore-noise']) {
    const b = before.systems[name]
    const a = after.systems[name]
    if (b == null || a == null) continue
    for (const [what, get] of pick) {
      const x = get(b, before)
      const y = get(a, after)
      if (typeof x !== 'number' || typeof y !== 'number') continue
      rows.push([name, what, num(x), num(y), (y / x).toFixed(2)])
    }
  }
  const raw = (r: CompareResult): string => {
    const tls = (r as any).raw?.tls?.[256 * M]?.MBps?.median
    return typeof tls === 'number' ? `${num(tls)} MB/s` : 'not measured'
  }
  return `
## Before and after: two \`--quick\` runs

\`npm run bench -- --quick\` (one repetition of most scenarios, so single runs, noisier than the
full tables above), on ${String(before.date).slice(0, 10)} before and ${String(after.date).slice(0, 10)} after this change. Nothing else ran during
either run, but the after run started soon after other work (1-, 5- and 15-minute load averages at the start: ${before.loadavg.before.map((x: number) => x.toFixed(2)).join(', ')} before; ${after.loadavg.before.map((x: number) => x.toFixed(2)).join(', ')} after).
The raw libp2p TLS stream moved 256 MiB at ${raw(before)} in the first run and ${raw(after)} in the second.
Kept as \`bench/results/quick-before.json\` and \`quick-after.json\`. "Put at the API" is bound by this
VM's disk and page cache and swings more than anything else between runs (the full tables above
discuss it); a single run of it is not evidence either way.

${table(['system', 'figure', 'before', 'after', 'after / before'], rows)}
`
}

/** The last `npm run soak` (bench/results/soak.json), summarised. */
function soakSection (k: any): string {
  const lat = (name: string, l: any): string[] => [name, String(l.count), num(l.p50), num(l.p90), num(l.p99), num(l.max)]
  const rows = [lat('get', k.latencyMs.get), lat('get, cache hit', k.latencyMs.getHit), lat('get, from Global', k.latencyMs.getCold), lat('put', k.latencyMs.put)]
  return `
## Load soak (\`npm run soak\`)

\`bench/soak.ts\`, run ${String(k.date).slice(0, 10)} on Node ${k.node}, ${k.cores} cores (load average ${k.loadavg.before.map((x: number) => x.toFixed(2)).join(', ')} before):
${k.options.locals} Locals in one process against one \`dstore global\` child on 127.0.0.1, a
${Math.round(k.options.getRatio * 100)}/${Math.round((1 - k.options.getRatio) * 100)} get/put mix of values from 100 B to 4 MiB for ${k.durationS.toFixed(0)} s, every get checked byte for byte.
Raw figures, per second: \`bench/results/soak.json\`.

- ${k.ops.total} operations (${k.ops.perSecond.toFixed(0)}/s), **${k.errorCount} errors**; ${k.ops.getsVerified} of ${k.ops.gets} gets verified
  (${k.ops.getsHit} cache hits, ${k.ops.getsCold} from Global), ${k.ops.puts} puts.
- RSS: Global at most ${k.rss.globalMaxMiB.toFixed(0)} MiB sampled (anonymous memory at most ${k.rss.globalAnonMaxMiB.toFixed(0)} MiB; the rest is the
  index's memory map, which grows with what is stored), the soak process at most ${k.rss.soakMaxMiB.toFixed(0)} MiB (${k.options.locals} caches of
  ${(k.options.cacheSize / 2 ** 20).toFixed(0)} MiB and their heaps).

${table(['latency (ms)', 'count', 'p50', 'p90', 'p99', 'max'], rows)}
`
}
