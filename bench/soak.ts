/**
 * Load soak: many Locals in this process against one Global in a child process (the real
 * `dstore global` binary on a fresh temp repo, on loopback), running a get/put mix for a fixed
 * time. Every get is checked byte for byte against the value that was put; every error is
 * recorded. It reports throughput over time, get and put latency percentiles, and the resident
 * memory of both processes sampled every second.
 *
 *   npm run soak [-- --seconds 60] [-- --locals 50] [-- --json]
 *
 * Other flags: --concurrency N (ops in flight per Local, default 1), --cache-mib N (each
 * Local's cache, default 16), --get-ratio R (default 0.7), --seed N, --out FILE (default
 * bench/results/soak.json). Exits 1 if any operation failed.
 *
 * `test/test-soak.spec.ts` runs the same `runSoak` for 10 s in the test suite.
 */
import '../src/runtime-shim.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createLocal, type CID, type LocalPeer } from '../src/index.js'
import { percentile } from './lib/child.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The `dstore` binary as package.json's `bin` names it (the bundled CLI). */
const BIN = join(ROOT, (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin: { dstore: string } }).bin.dstore)
const MiB = 1024 * 1024

export interface SoakOptions {
  /** How long operations are started; default 60. */
  seconds?: number
  /** Locals, all in this process; default 50. */
  locals?: number
  /** Operations in flight per Local; default 1. */
  concurrency?: number
  /** Each Local's cache budget in bytes; default 16 MiB. */
  cacheSize?: number
  /** Share of gets in the mix (the rest are puts); default 0.7. */
  getRatio?: number
  /** Seed of the operation mix and of the values; default 1. */
  seed?: number
  /** Receives a progress line every 10 s (and start-up/shut-down notes). */
  log?: (line: string) => void
}

export interface Latency { count: number, p50: number, p90: number, p99: number, max: number, mean: number }

export interface SoakError { t: number, local: number, op: string, cid?: string, size?: number, name: string, message: string }

export interface SoakSecond {
  /** Seconds since the load started (this row covers [t-1, t)). */
  t: number
  ops: number
  gets: number
  /** Gets answered from the Local's cache. */
  hits: number
  puts: number
  errors: number
  /** Bytes moved by the operations that completed in this second. */
  getMiB: number
  putMiB: number
  /** Resident memory sampled at the end of this second (MiB). */
  soakRssMiB: number
  soakHeapMiB: number
  globalRssMiB: number
  /** The Global's RSS split: its own memory (heap, buffers) and mapped file pages (lmdb's map). */
  globalAnonMiB: number
  globalFileMiB: number
}

export interface SoakResult {
  date: string
  node: string
  cores: number
  /** Load average before and after: other work on the machine skews the figures. */
  loadavg: { before: number[], after: number[] }
  options: Required<Omit<SoakOptions, 'log'>>
  /** Starting the Global child and connecting every Local (ms). */
  startupMs: number
  /** From the first operation started to the last one finished (s). */
  durationS: number
  ops: { total: number, perSecond: number, gets: number, puts: number, getsVerified: number, getsHit: number, getsCold: number, putsDeduplicated: number }
  bytes: { getMiB: number, putMiB: number }
  latencyMs: { get: Latency, getHit: Latency, getCold: Latency, put: Latency }
  /** Values put (distinct) and values Global lists at the end: they must match. */
  values: { distinct: number, listedByGlobal: number, sizes: { min: number, median: number, max: number, totalMiB: number } }
  locals: { hits: number, misses: number, evictions: number, invalidations: number, cacheMiB: number }
  rss: { soakMaxMiB: number, soakEndMiB: number, globalMaxMiB: number, globalAnonMaxMiB: number, globalEndMiB: number, globalPeakMiB: number }
  timeline: SoakSecond[]
  errorCount: number
  /** The first 100 errors. */
  errors: SoakError[]
  /** Lines the Global printed on stderr (its log: protocol errors, timed-out evictions). */
  globalLog: string[]
  globalExitCode: number | null
}

/**
 * The value for `seed`: `size` xorshift32 bytes, the state seeded through a multiplication by an
 * odd constant (a bijection), so distinct seeds below 2^31 give distinct values. Regenerated to
 * check a get, so no value has to be kept in memory.
 */
function valueOf (size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  const words = new Uint32Array(out.buffer, 0, size >>> 2)
  let x = Math.imul(seed, 0x9e3779b1) || 1
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x }
  for (let i = words.length * 4; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x }
  return out
}

/** xorshift32: the operation mix is reproducible for a seed (timing still varies). */
function rng (seed: number): () => number {
  let x = (seed * 2654435761) | 1
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32 }
}

/** Mostly small values, some up to 4 MiB: 60% 100 B–4 KiB, 25% 4–64 KiB, 12% 64 KiB–1 MiB, 3% 1–4 MiB (log-uniform in each band). */
function valueSize (r: () => number): number {
  const u = r()
  const band: [number, number] = u < 0.60 ? [100, 4096] : u < 0.85 ? [4096, 65536] : u < 0.97 ? [65536, MiB] : [MiB, 4 * MiB]
  return Math.round(band[0] * Math.pow(band[1] / band[0], r()))
}

function latency (xs: number[]): Latency {
  if (xs.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 }
  const round = (v: number): number => Math.round(v * 100) / 100
  return {
    count: xs.length,
    p50: round(percentile(xs, 50)),
    p90: round(percentile(xs, 90)),
    p99: round(percentile(xs, 99)),
    max: round(xs.reduce((a, b) => Math.max(a, b), 0)),
    mean: round(xs.reduce((a, b) => a + b, 0) / xs.length)
  }
}

async function procStatusMiB (pid: number | undefined, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): Promise<number> {
  if (pid == null) return 0
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(await readFile(`/proc/${pid}/status`, 'utf8'))
    return m != null ? Math.round(Number(m[1]) / 102.4) / 10 : 0
  } catch {
    return 0
  }
}

interface GlobalChild { proc: ChildProcess, addrs: string[], log: string[], exited: Promise<number | null> }

/** Starts `dstore global --json` on `repo` and reads its addresses from the first stdout line. */
async function startGlobal (repo: string): Promise<GlobalChild> {
  const env = { ...process.env }
  delete env.DSTORE_REPO
  delete env.DSTORE_GLOBAL
  const proc = spawn(process.execPath, [BIN, 'global', '--json', '--repo', repo, '--listen', '/ip4/127.0.0.1/tcp/0'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const log: string[] = []
  createInterface({ input: proc.stderr! }).on('line', line => { if (log.length < 1000) log.push(line) })
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => { resolve(code) }))
  const first = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! })
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('dstore global did not start within 20 s')) }, 20_000)
    rl.once('line', line => { clearTimeout(timer); resolve(line) })
    void exited.then(code => { clearTimeout(timer); reject(new Error(`dstore global exited with ${String(code)}: ${log.join(' | ')}`)) })
  })
  const info = JSON.parse(first) as { multiaddrs: string[] }
  return { proc, addrs: info.multiaddrs, log, exited }
}

async function stopGlobal (g: GlobalChild): Promise<number | null> {
  if (g.proc.exitCode !== null || g.proc.signalCode !== null) return g.proc.exitCode
  g.proc.kill('SIGTERM')
  const timer = setTimeout(() => g.proc.kill('SIGKILL'), 15_000)
  const code = await g.exited
  clearTimeout(timer)
  return code
}

interface Entry { cid: CID, size: number, seed: number }

/** Runs the soak and returns its figures; it never throws for a failed operation (see `errors`). */
export async function runSoak (options: SoakOptions = {}): Promise<SoakResult> {
  const opts = {
    seconds: options.seconds ?? 60,
    locals: options.locals ?? 50,
    concurrency: options.concurrency ?? 1,
    cacheSize: options.cacheSize ?? 16 * MiB,
    getRatio: options.getRatio ?? 0.7,
    seed: options.seed ?? 1
  }
  const log = options.log ?? (() => {})
  const repo = await mkdtemp(join(tmpdir(), 'dstore-soak-'))
  const locals: LocalPeer[] = []
  let global: GlobalChild | undefined
  const loadBefore = loadavg()
  const t0 = performance.now()
  try {
    global = await startGlobal(repo)
    const addrs = global.addrs
    locals.push(...await Promise.all(Array.from({ length: opts.locals }, async () => await createLocal({ global: addrs, cacheSize: opts.cacheSize }))))
    await Promise.all(locals.map(async l => { await l.ready() }))
    const startupMs = Math.round(performance.now() - t0)
    log(`Global pid ${String(global.proc.pid)} on ${global.addrs[0]}; ${opts.locals} Locals connected in ${startupMs} ms; running ${opts.seconds} s`)

    const registry: Entry[] = []
    const seen = new Set<string>()
    let nextSeed = (opts.seed % 200) * 10_000_000 + 1
    const getLat: number[] = []
    const getHitLat: number[] = []
    const getColdLat: number[] = []
    const putLat: number[] = []
    const counts = { gets: 0, puts: 0, verified: 0, hits: 0, cold: 0, dedup: 0, getBytes: 0, putBytes: 0 }
    const errors: SoakError[] = []
    let errorCount = 0
    const timeline: SoakSecond[] = []
    let bucket = { ops: 0, gets: 0, hits: 0, puts: 0, errors: 0, getBytes: 0, putBytes: 0 }

    const start = performance.now()
    const deadline = start + opts.seconds * 1000
    const now = (): number => (performance.now() - start) / 1000
    const fail = (local: number, op: string, err: unknown, entry?: { cid?: CID, size: number }): void => {
      errorCount++
      bucket.errors++
      const e = err as Error
      if (errors.length < 100) errors.push({ t: Math.round(now() * 100) / 100, local, op, cid: entry?.cid?.toString(), size: entry?.size, name: e?.name ?? 'Error', message: String(e?.message ?? err) })
    }

    // One sample a second: this process's RSS and heap, the Global's RSS from /proc/<pid>/status.
    let sampling = true
    const sampler = (async () => {
      let t = 1
      while (sampling) {
        const wait = start + t * 1000 - performance.now()
        if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
        if (!sampling) break
        const mem = process.memoryUsage()
        const b = bucket
        bucket = { ops: 0, gets: 0, hits: 0, puts: 0, errors: 0, getBytes: 0, putBytes: 0 }
        const row: SoakSecond = {
          t,
          ops: b.ops,
          gets: b.gets,
          hits: b.hits,
          puts: b.puts,
          errors: b.errors,
          getMiB: Math.round(b.getBytes / MiB * 10) / 10,
          putMiB: Math.round(b.putBytes / MiB * 10) / 10,
          soakRssMiB: Math.round(mem.rss / MiB * 10) / 10,
          soakHeapMiB: Math.round(mem.heapUsed / MiB * 10) / 10,
          globalRssMiB: await procStatusMiB(global?.proc.pid, 'VmRSS'),
          globalAnonMiB: await procStatusMiB(global?.proc.pid, 'RssAnon'),
          globalFileMiB: await procStatusMiB(global?.proc.pid, 'RssFile')
        }
        timeline.push(row)
        if (t % 10 === 0) log(`t=${t}s ops/s=${row.ops} get=${row.gets} put=${row.puts} errors=${errorCount} rss soak=${row.soakRssMiB} MiB global=${row.globalRssMiB} MiB`)
        t++
      }
    })()

    async function worker (index: number, lane: number): Promise<void> {
      const local = locals[index]
      const r = rng(opts.seed * 7919 + index * 131 + lane * 17 + 1)
      // What this Local put or got lately: gets from here are mostly cache hits.
      const recent: Entry[] = []
      const touch = (e: Entry): void => { recent.push(e); if (recent.length > 32) recent.shift() }
      while (performance.now() < deadline) {
        if (registry.length === 0 || r() >= opts.getRatio) {
          // A put: a new value, or now and then one that is already stored (deduplicated).
          const again = registry.length > 0 && r() < 0.05
          const entry: { cid?: CID, size: number, seed: number } = again ? registry[Math.floor(r() * registry.length)] : { size: valueSize(r), seed: nextSeed++ }
          const value = valueOf(entry.size, entry.seed)
          const t1 = performance.now()
          try {
            const cid = await local.put(value)
            const ms = performance.now() - t1
            if (entry.cid != null && !cid.equals(entry.cid)) throw new Error(`put of a stored value returned ${cid.toString()}, expected ${String(entry.cid)}`)
            putLat.push(ms)
            counts.puts++
            counts.putBytes += entry.size
            bucket.ops++
            bucket.puts++
            bucket.putBytes += entry.size
            if (again) counts.dedup++
            const stored: Entry = { cid, size: entry.size, seed: entry.seed }
            if (!seen.has(cid.toString())) { seen.add(cid.toString()); registry.push(stored) }
            touch(stored)
          } catch (err) {
            fail(index, 'put', err, entry)
          }
        } else {
          // A get: half from what this Local touched lately (likely cached), half from anything any Local put.
          const entry = recent.length > 0 && r() < 0.5 ? recent[Math.floor(r() * recent.length)] : registry[Math.floor(r() * registry.length)]
          const t1 = performance.now()
          try {
            const cached = await local.cache.has(entry.cid)
            const got = await local.get(entry.cid)
            const ms = performance.now() - t1
            if (got.length !== entry.size) throw new Error(`got ${got.length} bytes, expected ${entry.size}`)
            const expected = valueOf(entry.size, entry.seed)
            if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.length), Buffer.from(expected.buffer, expected.byteOffset, expected.length)) !== 0) {
              throw new Error(`got ${got.length} bytes that differ from the value put`)
            }
            counts.verified++
            getLat.push(ms)
            ;(cached ? getHitLat : getColdLat).push(ms)
            if (cached) { counts.hits++; bucket.hits++ } else counts.cold++
            counts.gets++
            counts.getBytes += entry.size
            bucket.ops++
            bucket.gets++
            bucket.getBytes += entry.size
            touch(entry)
          } catch (err) {
            fail(index, 'get', err, entry)
          }
        }
      }
    }

    const workers: Array<Promise<void>> = []
    for (let i = 0; i < opts.locals; i++) for (let lane = 0; lane < opts.concurrency; lane++) workers.push(worker(i, lane))
    await Promise.all(workers)
    const durationS = (performance.now() - start) / 1000
    sampling = false
    await sampler
    // The partial last second, if any operation finished in it.
    if (bucket.ops > 0 || bucket.errors > 0) {
      const mem = process.memoryUsage()
      timeline.push({
        t: Math.round(durationS * 100) / 100, ops: bucket.ops, gets: bucket.gets, hits: bucket.hits, puts: bucket.puts, errors: bucket.errors,
        getMiB: Math.round(bucket.getBytes / MiB * 10) / 10, putMiB: Math.round(bucket.putBytes / MiB * 10) / 10,
        soakRssMiB: Math.round(mem.rss / MiB * 10) / 10, soakHeapMiB: Math.round(mem.heapUsed / MiB * 10) / 10,
        globalRssMiB: await procStatusMiB(global.proc.pid, 'VmRSS'),
        globalAnonMiB: await procStatusMiB(global.proc.pid, 'RssAnon'),
        globalFileMiB: await procStatusMiB(global.proc.pid, 'RssFile')
      })
    }

    // Global must list exactly the distinct values put.
    let listed = 0
    try {
      for await (const _ of locals[0].list()) listed++
    } catch (err) {
      fail(0, 'list', err)
    }
    if (listed !== registry.length) fail(0, 'list', new Error(`Global lists ${listed} values, ${registry.length} distinct values were put`))

    const stats = locals.map(l => l.stats())
    const sum = (f: (s: ReturnType<LocalPeer['stats']>) => number): number => stats.reduce((a, s) => a + f(s), 0)
    const globalPeakMiB = await procStatusMiB(global.proc.pid, 'VmHWM')
    const globalEndMiB = await procStatusMiB(global.proc.pid, 'VmRSS')
    const sizes = registry.map(e => e.size).sort((a, b) => a - b)
    const mem = process.memoryUsage()

    await Promise.all(locals.splice(0).map(async l => { await l.stop() }))
    const globalExitCode = await stopGlobal(global)
    if (globalExitCode !== 0) fail(-1, 'global-exit', new Error(`dstore global exited with ${String(globalExitCode)}`))
    log(`done: ${counts.gets + counts.puts} ops in ${durationS.toFixed(1)} s, ${errorCount} errors`)

    return {
      date: new Date().toISOString(),
      node: process.version,
      cores: availableParallelism(),
      loadavg: { before: loadBefore.map(l => Math.round(l * 100) / 100), after: loadavg().map(l => Math.round(l * 100) / 100) },
      options: opts,
      startupMs,
      durationS: Math.round(durationS * 100) / 100,
      ops: {
        total: counts.gets + counts.puts,
        perSecond: Math.round((counts.gets + counts.puts) / durationS * 10) / 10,
        gets: counts.gets,
        puts: counts.puts,
        getsVerified: counts.verified,
        getsHit: counts.hits,
        getsCold: counts.cold,
        putsDeduplicated: counts.dedup
      },
      bytes: { getMiB: Math.round(counts.getBytes / MiB * 10) / 10, putMiB: Math.round(counts.putBytes / MiB * 10) / 10 },
      latencyMs: { get: latency(getLat), getHit: latency(getHitLat), getCold: latency(getColdLat), put: latency(putLat) },
      values: {
        distinct: registry.length,
        listedByGlobal: listed,
        sizes: { min: sizes[0] ?? 0, median: sizes[Math.floor(sizes.length / 2)] ?? 0, max: sizes[sizes.length - 1] ?? 0, totalMiB: Math.round(sizes.reduce((a, b) => a + b, 0) / MiB * 10) / 10 }
      },
      locals: {
        hits: sum(s => s.hits),
        misses: sum(s => s.misses),
        evictions: sum(s => s.evictions),
        invalidations: sum(s => s.invalidations),
        cacheMiB: Math.round(sum(s => s.cacheBytes) / MiB * 10) / 10
      },
      rss: {
        soakMaxMiB: Math.max(0, ...timeline.map(s => s.soakRssMiB)),
        soakEndMiB: Math.round(mem.rss / MiB * 10) / 10,
        globalMaxMiB: Math.max(0, ...timeline.map(s => s.globalRssMiB)),
        globalAnonMaxMiB: Math.max(0, ...timeline.map(s => s.globalAnonMiB)),
        globalEndMiB,
        globalPeakMiB
      },
      timeline,
      errorCount,
      errors,
      globalLog: global.log.slice(0, 200),
      globalExitCode
    }
  } finally {
    await Promise.all(locals.map(async l => { await l.stop().catch(() => {}) }))
    if (global != null) await stopGlobal(global).catch(() => {})
    await rm(repo, { recursive: true, force: true })
  }
}

/** The console summary of a result. */
export function formatSoak (r: SoakResult): string {
  const lat = (name: string, l: Latency): string =>
    `${name.padEnd(9)} ${String(l.count).padStart(7)} ${l.p50.toFixed(2).padStart(8)} ${l.p90.toFixed(2).padStart(8)} ${l.p99.toFixed(2).padStart(8)} ${l.max.toFixed(2).padStart(9)}`
  const lines = [
    `dstore soak: ${r.options.locals} Locals x ${r.options.concurrency} in flight, ${Math.round(r.options.getRatio * 100)}/${Math.round((1 - r.options.getRatio) * 100)} get/put, ${r.durationS} s (node ${r.node}, ${r.cores} cores, load ${r.loadavg.before[0]} -> ${r.loadavg.after[0]}; start-up ${r.startupMs} ms)`,
    `ops: ${r.ops.total} (${r.ops.perSecond}/s): ${r.ops.gets} gets (${r.ops.getsVerified} verified byte for byte; ${r.ops.getsHit} cache hits, ${r.ops.getsCold} from Global), ${r.ops.puts} puts (${r.ops.putsDeduplicated} of stored values)`,
    `bytes: got ${r.bytes.getMiB} MiB, put ${r.bytes.putMiB} MiB; ${r.values.distinct} distinct values (${r.values.sizes.min} B to ${(r.values.sizes.max / MiB).toFixed(2)} MiB, median ${r.values.sizes.median} B, ${r.values.sizes.totalMiB} MiB), Global lists ${r.values.listedByGlobal}`,
    '',
    'latency   count    p50 ms   p90 ms   p99 ms    max ms',
    lat('get', r.latencyMs.get),
    lat(' hit', r.latencyMs.getHit),
    lat(' cold', r.latencyMs.getCold),
    lat('put', r.latencyMs.put),
    '',
    '     t  ops/s   get   hit   put  err  get MiB  put MiB  soak RSS  Global RSS (anon + file) MiB',
    ...r.timeline.map(s => `${String(s.t).padStart(6)} ${String(s.ops).padStart(6)} ${String(s.gets).padStart(5)} ${String(s.hits).padStart(5)} ${String(s.puts).padStart(5)} ${String(s.errors).padStart(4)} ${s.getMiB.toFixed(1).padStart(8)} ${s.putMiB.toFixed(1).padStart(8)} ${s.soakRssMiB.toFixed(1).padStart(9)} ${s.globalRssMiB.toFixed(1).padStart(11)} (${s.globalAnonMiB.toFixed(1)} + ${s.globalFileMiB.toFixed(1)})`),
    '',
    `RSS: soak max ${r.rss.soakMaxMiB} MiB (end ${r.rss.soakEndMiB}); Global max sampled ${r.rss.globalMaxMiB} MiB (anonymous max ${r.rss.globalAnonMaxMiB}), peak (VmHWM) ${r.rss.globalPeakMiB} MiB, end ${r.rss.globalEndMiB} MiB`,
    `Locals: ${r.locals.hits} hits, ${r.locals.misses} misses, ${r.locals.evictions} evictions, ${r.locals.cacheMiB} MiB cached`,
    `Global exit code ${String(r.globalExitCode)}; ${r.globalLog.length} log lines`,
    `errors: ${r.errorCount}`,
    ...r.errors.map(e => `  t=${e.t}s Local ${e.local} ${e.op}${e.cid != null ? ' ' + e.cid : ''}${e.size != null ? ` (${e.size} B)` : ''}: ${e.name}: ${e.message}`)
  ]
  return lines.join('\n')
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      locals: { type: 'string', default: '50' },
      concurrency: { type: 'string', default: '1' },
      'cache-mib': { type: 'string', default: '16' },
      'get-ratio': { type: 'string', default: '0.7' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string', default: join(ROOT, 'bench', 'results', 'soak.json') },
      json: { type: 'boolean', default: false }
    }
  })
  const num = (name: string, v: string, min: number, max = Infinity): number => {
    const n = Number(v)
    if (!Number.isFinite(n) || n < min || n > max) { console.error(`soak: --${name} must be a number from ${min}${Number.isFinite(max) ? ` to ${max}` : ''}, got ${v}`); process.exit(2) }
    return n
  }
  const result = await runSoak({
    seconds: num('seconds', values.seconds, 1),
    locals: Math.floor(num('locals', values.locals, 1)),
    concurrency: Math.floor(num('concurrency', values.concurrency, 1)),
    cacheSize: Math.floor(num('cache-mib', values['cache-mib'], 1) * MiB),
    getRatio: num('get-ratio', values['get-ratio'], 0, 1),
    seed: Math.floor(num('seed', values.seed, 1)),
    log: line => { process.stderr.write(`soak: ${line}\n`) }
  })
  await mkdir(dirname(values.out), { recursive: true })
  await writeFile(values.out, JSON.stringify(result, null, 2) + '\n')
  if (values.json) process.stdout.write(JSON.stringify(result) + '\n')
  else process.stdout.write(formatSoak(result) + `\n\nwritten to ${values.out}\n`)
  process.exitCode = result.errorCount > 0 ? 1 : 0
}

if (process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await main()
  } catch (err) {
    console.error('soak failed:', err)
    process.exitCode = 1
  }
  // libp2p may leave timers behind; the work is done.
  process.exit(process.exitCode ?? 0)
}
