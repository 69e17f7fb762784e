/**
 * Side-by-side comparison: dstore (TLS and noise) against Helia, beside the physical
 * references (raw libp2p streams with noise, plaintext and TLS; raw node:net TCP).
 *
 *   npm run bench [-- --quick] [-- --only compare] [-- --pinned]
 *
 * Two modes. Shared (the default): every process may run on every core, so both sides of a
 * transfer compete for the same cores. Pinned (`--pinned`): every provider and server role
 * runs on core 0 and every requester and client role on core 1 (`taskset`, `lib/child.ts`), as
 * two hosts would; the raw references are pinned the same way.
 *
 * Every role is its own process on 127.0.0.1, driven through the JSON-line contract of
 * `lib/roles.ts` (`roles/dstore.js`, `roles/helia.js`, `roles/raw.js`). Every cold measurement
 * uses a requester restarted on a fresh, empty store; every repetition uses fresh random data
 * (a new seed). Guards: every get must deliver exactly the value's size, and dstore's CIDs
 * must equal `cidOfBytes(data(size, seed))` (values up to 64 MiB, and all 100-byte values);
 * dstore's warm gets must be cache hits.
 *
 * Scenarios: put (1 KiB … 256 MiB; provider put for every system, plus dstore's Local put over
 * the network with both sides' CPU, and beside dstore's put a plain-write reference: the same
 * bytes written to a file as the fs store writes them), cold get (dstore: `Local.get`, then the
 * caller's copy of the result timed apart; a cold `Local.get` into a buffer of the caller's,
 * made and touched beforehand as one reused get after get, with both sides' CPU; and a cold
 * `Local.cat` on a cacheless requester, with both sides' CPU), warm get, 1000 × 100-byte values (sequential latency of the first 1000
 * cold gets of a fresh Local, then of 1000 more cold gets of new values on the same Local: the
 * steady state; warm latency; 1000 concurrent cold gets), peak RSS of both processes during a
 * streamed cold get (256 MiB, 1 GiB), start time of a fresh provider and requester process
 * (imports included).
 *
 * Results: `bench/results/latest.json` (shared) or `pinned.json` (pinned),
 * `docs/benchmarks-throughput.svg` (shared only), `docs/BENCHMARKS.md` (written by
 * `lib/report.ts`, from both), and the tables on the console.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cidOfBytes } from '../src/core/cid.js'
import { Child, median, percentile } from './lib/child.js'
import { data } from './lib/data.js'
import { markdownTables, writeReport, type CompareResult, type Figure, type SystemResult, type Timed } from './lib/report.js'
import { PINNING } from './lib/pinning.js'
import { gcPolicyInForce } from './lib/gc-policy.js'

/**
 * Starts role processes: in pinned mode a provider or server role (`args[0]`) runs on core
 * {@link PINNING}.provider, a requester or client role on {@link PINNING}.requester.
 */
type Spawn = (script: string, args: string[], env?: Record<string, string>) => Child

function spawner (pinned: boolean): Spawn {
  return (script, args, env = {}) => {
    if (!pinned) return new Child(script, args, env)
    const serving = args[0] === 'provider' || args[0] === 'server'
    return new Child(script, args, env, { cpu: serving ? PINNING.provider : PINNING.requester })
  }
}

const HERE = dirname(fileURLToPath(import.meta.url))
const KiB = 1024
const MiB = 1 << 20
const GiB = 1 << 30

export const SIZES = [KiB, MiB, 64 * MiB, 256 * MiB]
export const RAW_SIZES = [MiB, 64 * MiB, 256 * MiB]
const RAW_KINDS = ['noise', 'plaintext', 'tls', 'tcp'] as const
const SMALL_N = 1000
const SMALL_SIZE = 100
/** Sizes up to this get their dstore CID checked against `cidOfBytes(data(size, seed))`. */
const CID_CHECK_MAX = 64 * MiB

interface SystemDef {
  name: string
  script: string
  encryption: 'tls' | 'noise'
  /** dstore: CIDs are BLAKE3 and can be checked; Local put over the network exists. */
  dstore: boolean
}

const SYSTEMS: SystemDef[] = [
  { name: 'dstore-tls', script: 'roles/dstore.js', encryption: 'tls', dstore: true },
  { name: 'dstore-noise', script: 'roles/dstore.js', encryption: 'noise', dstore: true },
  { name: 'helia', script: 'roles/helia.js', encryption: 'noise', dstore: false }
]

export function figure (xs: number[]): Figure {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), reps: xs.length }
}

function timed (size: number, ms: number[], cpu?: CpuSamples): Timed {
  const t: Timed = { ms: figure(ms), MBps: figure(ms.map(m => size / 1e6 / (m / 1000))) }
  if (cpu != null && cpu.sender.length > 0) t.cpuPerGB = { sender: figure(cpu.sender), receiver: figure(cpu.receiver) }
  return t
}

/** CPU seconds per GB of each side, one sample per transfer. */
interface CpuSamples { sender: number[], receiver: number[] }

/** Throws unless a pinned child runs on its core alone (a guard of the pinned mode). */
async function checkPinned (c: Child): Promise<void> {
  if (c.cpu === undefined) return
  const allowed = await c.allowedCpus()
  if (allowed !== String(c.cpu)) throw new Error(`a role pinned to core ${c.cpu} may run on cores ${String(allowed)}`)
}

/** Runs `transfer` of `size` bytes, adding both processes' CPU seconds per GB to `samples`. */
async function withCpu<T> (sender: Child, receiver: Child, size: number, samples: CpuSamples, transfer: () => Promise<T>): Promise<T> {
  const cpu = async (c: Child): Promise<number> => (await c.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, budget())).cpuMs
  const [s0, r0] = [await cpu(sender), await cpu(receiver)]
  await checkPinned(sender)
  await checkPinned(receiver)
  const out = await transfer()
  const [s1, r1] = [await cpu(sender), await cpu(receiver)]
  samples.sender.push((s1 - s0) / 1000 / (size / 1e9))
  samples.receiver.push((r1 - r0) / 1000 / (size / 1e9))
  return out
}

/**
 * Time allowed for one command: 30 s, plus the transfer at 10 MB/s (a fifth of the slowest
 * system's normal rate): a role that hangs costs a bounded time, and is reported.
 */
function budget (size = 0): number {
  return 30_000 + size / 1e4
}

/** Time allowed for a command on `n` small values: 30 s plus 100 ms a value. */
function budgetMany (n: number): number {
  return 30_000 + n * 100
}

function sizeName (size: number): string {
  return size >= GiB ? `${size / GiB} GiB` : size >= MiB ? `${size / MiB} MiB` : `${size / KiB} KiB`
}

/** Stops a role (10 s for its exit, then killed), saying so when it had to be killed. */
async function close (child: Child): Promise<void> {
  if (await child.stop(10_000) === 'killed') log('a role did not exit within 10 s of being asked, and was killed')
}

class Seeds {
  constructor (private next: number) {}
  take (n = 1): number { const s = this.next; this.next += n; return s }
}

interface Plan {
  reps: (size: number) => number
  smallReps: number
  concurrentReps: number
  rss: Array<{ size: number, reps: number }>
  startReps: number
}

function plan (quick: boolean): Plan {
  return quick
    ? { reps: size => size <= MiB ? 2 : 1, smallReps: 1, concurrentReps: 1, rss: [{ size: 256 * MiB, reps: 1 }], startReps: 1 }
    : { reps: size => size <= 64 * MiB ? 5 : 3, smallReps: 2, concurrentReps: 3, rss: [{ size: 256 * MiB, reps: 2 }, { size: GiB, reps: 2 }], startReps: 5 }
}

const T0 = performance.now()
function log (line: string): void {
  process.stderr.write(`[compare ${((performance.now() - T0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)
}

/** The physical references: one server and one client process, each kind in turn. */
async function runRaw (p: Plan, spawn: Spawn): Promise<CompareResult['raw']> {
  const out: CompareResult['raw'] = {}
  const server = spawn('roles/raw.js', ['server'])
  const client = spawn('roles/raw.js', ['client'])
  try {
    for (const kind of RAW_KINDS) {
      const { addrs } = await server.callWithin({ cmd: 'start', kind }, budget())
      await client.callWithin({ cmd: 'start', kind, addrs }, budget())
      await client.callWithin({ cmd: 'get', size: MiB }, budget(MiB)) // warm-up, not counted
      out[kind] = {}
      for (const size of RAW_SIZES) {
        const ms: number[] = []
        const cpu: CpuSamples = { sender: [], receiver: [] }
        for (let r = 0; r < p.reps(size); r++) {
          const g = await withCpu(server, client, size, cpu, async () => await client.callWithin<{ ms: number, bytes: number }>({ cmd: 'get', size }, budget(size)))
          if (g.bytes !== size) throw new Error(`raw ${kind}: ${g.bytes} bytes for ${size}`)
          ms.push(g.ms)
        }
        out[kind][size] = timed(size, ms, cpu)
      }
      log(`raw ${kind}: ${RAW_SIZES.map(s => `${sizeName(s)} ${out[kind][s].MBps.median.toFixed(0)} MB/s`).join(', ')}`)
      await client.callWithin({ cmd: 'stop' }, budget())
    }
  } finally {
    await close(client)
    await close(server)
  }
  return out
}

function checkCid (sys: SystemDef, cid: string, size: number, seed: number, checks: Set<string>): void {
  if (!sys.dstore || size > CID_CHECK_MAX) return
  const expected = cidOfBytes(data(size, seed)).toString()
  if (cid !== expected) throw new Error(`${sys.name}: CID ${cid} of ${size} bytes (seed ${seed}) is not cidOfBytes(data) = ${expected}`)
  checks.add(`CID = cidOfBytes(data(size, seed)) for ${sizeName(size)}`)
}

function checkBytes (sys: SystemDef, what: string, got: number | undefined, expected: number, checks: Set<string>, optional = false): void {
  if (got === undefined && optional) return
  if (got !== expected) throw new Error(`${sys.name}: ${what} delivered ${String(got)} bytes, expected ${expected}`)
  checks.add(`byte count of ${what}`)
}

async function runSystem (sys: SystemDef, p: Plan, work: string, seeds: Seeds, spawn: Spawn): Promise<SystemResult> {
  const res: SystemResult = { system: sys.name, encryption: sys.encryption, available: false, put: {}, coldGet: {}, warmGet: {}, rss: {}, checks: [] }
  if (sys.dstore) {
    res.localPut = {}
    res.plainWrite = {}
    res.cat = {}
    res.callerCopy = {}
    res.getInto = {}
  }
  const checks = new Set<string>()
  const script = join(HERE, sys.script)
  if (!existsSync(script)) {
    res.error = `${sys.script} not found (dist/bench/${sys.script})`
    return res
  }
  const base = join(work, sys.name)
  const provider = spawn(sys.script, ['provider'])
  let requester = spawn(sys.script, ['requester'])
  let requesterDir: string | undefined
  let dirs = 0
  let addrs: string[] = []
  /** Runs one scenario; a failure is recorded (and the next scenario runs on a fresh requester). */
  const scenario = async (name: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn()
    } catch (err) {
      const msg = `${name}: ${(err as Error).message}`
      ;(res.errors ??= []).push(msg)
      log(`${sys.name} failed: ${msg}`)
    }
  }
  const fresh = async (stream = false): Promise<void> => {
    if (requesterDir !== undefined) {
      // A failed stop (after a failed scenario) must not block the next start.
      await requester.callWithin({ cmd: 'stop' }, budget()).catch(err => { log(`${sys.name}: requester stop failed: ${(err as Error).message}`) })
      await rm(requesterDir, { recursive: true, force: true })
    }
    if (!requester.running) {
      log(`${sys.name}: the requester process died; starting a new one`)
      requester = spawn(sys.script, ['requester'])
    }
    const start = async (): Promise<void> => {
      requesterDir = join(base, `requester-${dirs++}`)
      await requester.callWithin({ cmd: 'start', dir: requesterDir, addrs, encryption: sys.encryption, ...(stream ? { stream: true } : {}) }, budget())
    }
    try {
      await start()
    } catch (err) {
      // Restarting is not what is measured: one more try, in a new process, and say so.
      const msg = `requester start: ${(err as Error).message}`
      ;(res.retries ??= []).push(msg)
      log(`${sys.name}: ${msg}; retrying in a new process`)
      await close(requester)
      requester = spawn(sys.script, ['requester'])
      await start()
    }
  }
  try {
    try {
      ({ addrs } = await provider.callWithin<{ addrs: string[] }>({ cmd: 'start', dir: join(base, 'provider'), encryption: sys.encryption }, budget()))
      await fresh()
    } catch (err) {
      res.error = `failed to start: ${(err as Error).message}`
      return res
    }
    res.available = true

    // 1–3: put, cold get, warm get (and dstore's Local put over the network).
    const bigCids: string[] = []
    for (const size of SIZES) {
      await scenario(`put/get ${sizeName(size)}`, async () => {
        const puts: number[] = []
        const colds: number[] = []
        const coldCpu: CpuSamples = { sender: [], receiver: [] }
        const warms: number[] = []
        const localPuts: number[] = []
        const localPutCpu: CpuSamples = { sender: [], receiver: [] }
        const plainWrites: number[] = []
        const copies: number[] = []
        const cats: number[] = []
        const catCpu: CpuSamples = { sender: [], receiver: [] }
        const intos: number[] = []
        const intoCpu: CpuSamples = { sender: [], receiver: [] }
        for (let r = 0; r < p.reps(size); r++) {
          const seed = seeds.take()
          const put = await provider.callWithin<{ cid: string, ms: number }>({ cmd: 'put', size, seed }, budget(size))
          checkCid(sys, put.cid, size, seed, checks)
          puts.push(put.ms)
          if (size === 256 * MiB) bigCids.push(put.cid)
          if (sys.dstore) {
            // The same bytes, written as the fs store writes them but with no hashing or index:
            // what the disk and page cache allow, measured in the same run as the put.
            const w = await provider.callWithin<{ ms: number, bytes: number }>({ cmd: 'plainWrite', size, seed }, budget(size))
            checkBytes(sys, 'plain write', w.bytes, size, checks)
            plainWrites.push(w.ms)
          }
          await fresh()
          const cold = await withCpu(provider, requester, size, coldCpu, async () =>
            await requester.callWithin<{ ms: number, bytes: number, hit?: boolean }>({ cmd: 'get', cid: put.cid, size, ...(sys.dstore ? { keep: true } : {}) }, budget(size)))
          checkBytes(sys, 'cold get', cold.bytes, size, checks)
          if (cold.hit === true) throw new Error(`${sys.name}: a cold get was a cache hit`)
          colds.push(cold.ms)
          if (sys.dstore) {
            // The caller's copy of what Local.get returned, outside the get's time and CPU.
            const c = await requester.callWithin<{ ms: number, bytes: number }>({ cmd: 'copy' }, budget(size))
            checkBytes(sys, "caller's copy of a cold get", c.bytes, size, checks)
            copies.push(c.ms)
          }
          const warm = await requester.callWithin<{ ms: number, bytes: number, hit?: boolean }>({ cmd: 'get', cid: put.cid, size }, budget(size))
          checkBytes(sys, 'warm get', warm.bytes, size, checks)
          if (sys.dstore) {
            if (warm.hit !== true) throw new Error(`${sys.name}: the warm get of ${sizeName(size)} was not a cache hit`)
            checks.add('warm gets are Local cache hits')
          }
          warms.push(warm.ms)
          if (sys.dstore) {
            // Local.get into a buffer of the caller's, cold (a fresh Local): the buffer is made
            // and touched outside the window, as one reused get after get would be, and freed after.
            await fresh()
            await requester.callWithin({ cmd: 'into', size }, budget(size))
            const into = await withCpu(provider, requester, size, intoCpu, async () =>
              await requester.callWithin<{ ms: number, bytes: number, hit?: boolean }>({ cmd: 'getInto', cid: put.cid, size }, budget(size)))
            await requester.callWithin({ cmd: 'into', size: 0 }, budget())
            checkBytes(sys, 'cold Local.get into a buffer', into.bytes, size, checks)
            if (into.hit === true) throw new Error(`${sys.name}: a cold Local.get into a buffer was a cache hit`)
            intos.push(into.ms)
          }
          if (sys.dstore) {
            const lseed = seeds.take()
            // A put's sender is the Local (the requester role), its receiver the Global.
            // The value is generated first (prepare), outside the CPU window of the put.
            await requester.callWithin({ cmd: 'prepare', size, seed: lseed }, budget(size))
            const lput = await withCpu(requester, provider, size, localPutCpu, async () =>
              await requester.callWithin<{ cid: string, ms: number }>({ cmd: 'putPrepared' }, budget(size)))
            checkCid(sys, lput.cid, size, lseed, checks)
            localPuts.push(lput.ms)
            // Local.cat, cold: a requester with no cache, streaming the value just put by the provider.
            await fresh(true)
            const cat = await withCpu(provider, requester, size, catCpu, async () =>
              await requester.callWithin<{ ms: number, bytes: number, hit?: boolean }>({ cmd: 'get', cid: put.cid, size }, budget(size)))
            checkBytes(sys, 'cold Local.cat', cat.bytes, size, checks)
            if (cat.hit === true) throw new Error(`${sys.name}: a cold Local.cat was a cache hit`)
            cats.push(cat.ms)
          }
        }
        res.put[size] = timed(size, puts)
        res.coldGet[size] = timed(size, colds, coldCpu)
        res.warmGet[size] = timed(size, warms)
        if (res.localPut != null) res.localPut[size] = timed(size, localPuts, localPutCpu)
        if (res.plainWrite != null) res.plainWrite[size] = timed(size, plainWrites)
        if (res.cat != null) res.cat[size] = timed(size, cats, catCpu)
        if (res.getInto != null) res.getInto[size] = timed(size, intos, intoCpu)
        if (res.callerCopy != null) res.callerCopy[size] = figure(copies)
        log(`${sys.name} ${sizeName(size)}: put ${res.put[size].MBps.median.toFixed(1)}, cold ${res.coldGet[size].MBps.median.toFixed(1)}, warm ${res.warmGet[size].MBps.median.toFixed(1)} MB/s` +
          (res.localPut != null ? `, Local put ${res.localPut[size].MBps.median.toFixed(1)} MB/s` : '') +
          (res.cat != null ? `, cold Local.cat ${res.cat[size].MBps.median.toFixed(1)} MB/s` : '') +
          (res.getInto != null ? `, cold Local.get into a buffer ${res.getInto[size].MBps.median.toFixed(1)} MB/s` : '') +
          (res.plainWrite != null ? `; plain write ${res.plainWrite[size].MBps.median.toFixed(1)} MB/s` : '') +
          (res.callerCopy != null ? `; caller's copy ${res.callerCopy[size].median.toFixed(2)} ms` : ''))
      })
    }

    // 4: 1000 × 100 bytes, sequential: the first 1000 cold gets of a fresh requester, then 1000
    // cold gets of other values on the same requester (the steady state), then the first 1000 again, warm.
    await scenario('sequential small gets', async () => {
      const cold: number[] = []
      const steady: number[] = []
      const warm: number[] = []
      const putSmall = async (): Promise<string[]> => {
        const seed = seeds.take(SMALL_N)
        const { cids } = await provider.callWithin<{ cids: string[] }>({ cmd: 'putMany', count: SMALL_N, size: SMALL_SIZE, seed }, budgetMany(SMALL_N))
        if (cids.length !== SMALL_N) throw new Error(`${sys.name}: putMany returned ${cids.length} CIDs`)
        if (sys.dstore) {
          cids.forEach((cid, i) => { checkCid(sys, cid, SMALL_SIZE, seed + i, checks) })
        }
        return cids
      }
      for (let r = 0; r < p.smallReps; r++) {
        const cids = await putSmall()
        const later = await putSmall()
        await fresh()
        const c = await requester.callWithin<{ ms: number[], bytes?: number, hits?: number }>({ cmd: 'getSeq', cids, size: SMALL_SIZE }, budgetMany(SMALL_N))
        checkBytes(sys, 'sequential small gets', c.bytes, SMALL_N * SMALL_SIZE, checks, !sys.dstore)
        const st = await requester.callWithin<{ ms: number[], bytes?: number, hits?: number }>({ cmd: 'getSeq', cids: later, size: SMALL_SIZE }, budgetMany(SMALL_N))
        checkBytes(sys, 'sequential small gets', st.bytes, SMALL_N * SMALL_SIZE, checks, !sys.dstore)
        if (sys.dstore && st.hits !== 0) throw new Error(`${sys.name}: ${String(st.hits)} of the steady-state cold small gets were cache hits`)
        if (st.ms.length !== SMALL_N) throw new Error(`${sys.name}: getSeq returned the wrong number of latencies`)
        steady.push(...st.ms)
        const w = await requester.callWithin<{ ms: number[], bytes?: number, hits?: number }>({ cmd: 'getSeq', cids, size: SMALL_SIZE }, budgetMany(SMALL_N))
        checkBytes(sys, 'sequential small gets', w.bytes, SMALL_N * SMALL_SIZE, checks, !sys.dstore)
        if (sys.dstore && w.hits !== SMALL_N) throw new Error(`${sys.name}: ${String(w.hits)} of ${SMALL_N} warm small gets were cache hits`)
        if (c.ms.length !== SMALL_N || w.ms.length !== SMALL_N) throw new Error(`${sys.name}: getSeq returned the wrong number of latencies`)
        cold.push(...c.ms)
        warm.push(...w.ms)
      }
      res.small = {
        n: SMALL_N,
        runs: p.smallReps,
        size: SMALL_SIZE,
        cold: { medianMs: median(cold), p99Ms: percentile(cold, 99) },
        steady: { medianMs: median(steady), p99Ms: percentile(steady, 99) },
        warm: { medianMs: median(warm), p99Ms: percentile(warm, 99) }
      }
      log(`${sys.name} ${SMALL_N} × ${SMALL_SIZE} B: first-1000 cold median ${res.small.cold.medianMs.toFixed(3)} ms p99 ${res.small.cold.p99Ms.toFixed(3)} ms; steady-state cold median ${res.small.steady!.medianMs.toFixed(3)} ms p99 ${res.small.steady!.p99Ms.toFixed(3)} ms; warm median ${res.small.warm.medianMs.toFixed(4)} ms p99 ${res.small.warm.p99Ms.toFixed(4)} ms`)

    })

    // 5: 1000 cold gets at once.
    await scenario('concurrent small gets', async () => {
      const totals: number[] = []
      for (let r = 0; r < p.concurrentReps; r++) {
        const seed = seeds.take(SMALL_N)
        const { cids } = await provider.callWithin<{ cids: string[] }>({ cmd: 'putMany', count: SMALL_N, size: SMALL_SIZE, seed }, budgetMany(SMALL_N))
        if (sys.dstore) checkCid(sys, cids[SMALL_N - 1], SMALL_SIZE, seed + SMALL_N - 1, checks)
        await fresh()
        const c = await requester.callWithin<{ totalMs: number, bytes?: number }>({ cmd: 'getConcurrent', cids, size: SMALL_SIZE }, budgetMany(SMALL_N))
        checkBytes(sys, 'concurrent small gets', c.bytes, SMALL_N * SMALL_SIZE, checks, !sys.dstore)
        totals.push(c.totalMs)
      }
      res.concurrent = { n: SMALL_N, size: SMALL_SIZE, totalMs: figure(totals) }
      log(`${sys.name} ${SMALL_N} concurrent cold gets: ${res.concurrent.totalMs.median.toFixed(0)} ms (max ${res.concurrent.totalMs.max.toFixed(0)})`)

    })

    // 6: peak RSS of both processes during a streamed cold get.
    for (const { size, reps } of p.rss) {
      await scenario(`RSS ${sizeName(size)}`, async () => {
        const reqPeak: number[] = []
        const provPeak: number[] = []
        const ms: number[] = []
        for (let r = 0; r < reps; r++) {
          let cid = size === 256 * MiB ? bigCids[r] : undefined
          if (cid === undefined) {
            cid = (await provider.callWithin<{ cid: string }>({ cmd: 'put', size, seed: seeds.take() }, budget(size))).cid
          }
          // Fresh processes on both sides, so each peak is that of the transfer alone: the main
          // provider has just generated and stored the value (and the requester cached 256 MiB
          // values in earlier scenarios), and a process keeps much of what it once used.
          // The serving provider opens the same store (`keep`), so it serves the stored value.
          const providerDir = join(base, 'provider')
          await provider.callWithin({ cmd: 'stop' }, budget())
          const server = spawn(sys.script, ['provider'])
          try {
            ({ addrs } = await server.callWithin<{ addrs: string[] }>({ cmd: 'start', dir: providerDir, encryption: sys.encryption, keep: true }, budget()))
            await requester.stop()
            requester = spawn(sys.script, ['requester'])
            requesterDir = undefined
            await fresh(true)
            await server.callWithin({ cmd: 'reset-rss' }, budget())
            await requester.callWithin({ cmd: 'reset-rss' }, budget())
            const g = await requester.callWithin<{ ms: number, bytes: number }>({ cmd: 'get', cid, size }, budget(size))
            checkBytes(sys, 'streamed cold get', g.bytes, size, checks)
            reqPeak.push((await requester.callWithin<{ peakMiB: number }>({ cmd: 'rss' }, budget())).peakMiB)
            provPeak.push((await server.callWithin<{ peakMiB: number }>({ cmd: 'rss' }, budget())).peakMiB)
            ms.push(g.ms)
          } finally {
            await close(server)
            ;({ addrs } = await provider.callWithin<{ addrs: string[] }>({ cmd: 'start', dir: providerDir, encryption: sys.encryption, keep: true }, budget()))
          }
        }
        res.rss[size] = { requesterPeakMiB: figure(reqPeak), providerPeakMiB: figure(provPeak), get: timed(size, ms) }
        log(`${sys.name} RSS ${sizeName(size)}: requester ${res.rss[size].requesterPeakMiB.median.toFixed(0)} MiB, provider ${res.rss[size].providerPeakMiB.median.toFixed(0)} MiB, ${res.rss[size].get.MBps.median.toFixed(0)} MB/s`)
      })
    }
  } finally {
    await close(requester)
    await close(provider)
    await rm(base, { recursive: true, force: true })
  }

  // 7: start time of fresh processes, imports included.
  await scenario('start time', async () => {
    /** Starts a fresh provider and a fresh requester process `reps` times; their start times. */
    const measure = async (tag: string, env: Record<string, string> = {}): Promise<{ provider: Figure, requester: Figure }> => {
      const prov: number[] = []
      const req: number[] = []
      for (let r = 0; r < p.startReps; r++) {
        const dir = join(base, `start-${tag}-${r}`)
        const pc = spawn(sys.script, ['provider'], env)
        let rc: Child | undefined
        try {
          const ps = await pc.callWithin<{ addrs: string[], startMs: number }>({ cmd: 'start', dir: join(dir, 'provider'), encryption: sys.encryption }, budget())
          rc = spawn(sys.script, ['requester'], env)
          const rs = await rc.callWithin<{ startMs: number }>({ cmd: 'start', dir: join(dir, 'requester'), addrs: ps.addrs, encryption: sys.encryption }, budget())
          prov.push(ps.startMs)
          req.push(rs.startMs)
        } finally {
          if (rc != null) await close(rc)
          await close(pc)
          await rm(dir, { recursive: true, force: true })
        }
      }
      return { provider: figure(prov), requester: figure(req) }
    }
    res.startMs = await measure('lib')
    log(`${sys.name} start: provider ${res.startMs.provider.median.toFixed(0)} ms, requester ${res.startMs.requester.median.toFixed(0)} ms`)
    if (sys.script === 'roles/dstore.js') {
      // The same with the pre-bundled library (`dstore/bundle`, what the `dstore` binary uses).
      res.startMsBundled = await measure('bundle', { DSTORE_BENCH_IMPORT: 'bundle' })
      log(`${sys.name} start (bundled): provider ${res.startMsBundled.provider.median.toFixed(0)} ms, requester ${res.startMsBundled.requester.median.toFixed(0)} ms`)
    }
  })
  await rm(base, { recursive: true, force: true })
  res.checks = [...checks]
  return res
}

export async function runCompare (opts: { quick?: boolean, pinned?: boolean } = {}): Promise<CompareResult> {
  const quick = opts.quick === true
  const pinned = opts.pinned === true
  // What the dstore roles spawned below will run.
  const gcPolicy = gcPolicyInForce()
  const spawn = spawner(pinned)
  const p = plan(quick)
  const t0 = performance.now()
  const loadBefore = loadavg()
  const baseSeed = 1 + Math.floor(Math.random() * 1_000_000)
  const seeds = new Seeds(baseSeed)
  const work = await mkdtemp(join(tmpdir(), 'dstore-compare-'))
  const systems: Record<string, SystemResult> = {}
  let raw: CompareResult['raw'] = {}
  try {
    log(`quick=${String(quick)}, ${pinned ? `pinned (providers and servers on core ${PINNING.provider}, requesters and clients on core ${PINNING.requester})` : 'shared cores'}, base seed ${baseSeed}, work dir ${work}`)
    raw = await runRaw(p, spawn)
    for (const sys of SYSTEMS) {
      systems[sys.name] = await runSystem(sys, p, work, seeds, spawn)
      if (!systems[sys.name].available) log(`${sys.name}: not available: ${String(systems[sys.name].error)}`)
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  const result: CompareResult = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / GiB),
    loadavg: { before: loadBefore, after: loadavg() },
    quick,
    mode: pinned ? 'pinned' : 'shared',
    ...(pinned ? { pinning: { ...PINNING } } : {}),
    gcPolicy,
    durationS: (performance.now() - t0) / 1000,
    baseSeed,
    unit: 'MB/s = 10^6 bytes per second; ms; MiB = 2^20 bytes. Keys of per-size records are sizes in bytes.',
    sizes: SIZES,
    rawSizes: RAW_SIZES,
    systems,
    raw
  }
  console.log('\n' + markdownTables(result))
  await writeReport(result)
  return result
}
