/**
 * Measures small-value (100-byte) get latency between two bench role processes (a Global
 * provider and a Local requester, `bench/roles/dstore.ts`), as bench/compare.ts scenarios 4–5 do:
 *
 * - sequential cold gets, first 1,000 of a fresh Local: p50, p99, max;
 * - sequential cold gets at steady state: a further 1,000 cold gets of new values on that Local;
 * - 1,000 concurrent cold gets (Promise.all) on a fresh Local, `--runs` times: the totals.
 *
 *   node dist/scripts/measure-small.js [--runs 5] [--encryption tls|noise] [--prof DIR]
 *     [--trace-gc] [--cold-process] [--pinned]
 *
 * By default the requester process first runs a Local that gets a 1 KiB and a 1 MiB value and
 * puts one, then stops it, as in the bench, where scenarios 1–3 run in the same process before
 * the small gets (each on a fresh Local); `--cold-process` skips that (a process whose first
 * Local it is). `--prof DIR` profiles both main threads over each phase (`*.cpuprofile`) and
 * prints the top self-time functions; `--trace-gc` logs both roles' GCs (gc-log.ts) to their
 * stderr, so GC pauses show between phase markers).
 */
import '../src/runtime-shim.js'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child, median, percentile } from '../bench/lib/child.js'
import { printTopSelf } from '../bench/lib/profile-top.js'

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}
const runs = Number(arg('runs', '5'))
const encryption = arg('encryption', 'tls')
const prof = arg('prof', '')
const traceGc = process.argv.includes('--trace-gc')
const coldProcess = process.argv.includes('--cold-process')
const pinned = process.argv.includes('--pinned')
const N = 1000
const SIZE = 100
if (prof !== '') await mkdir(prof, { recursive: true })

// --trace-gc writes to stdout, the roles' answer channel: a preload logs GCs to stderr instead.
const env: Record<string, string> = traceGc ? { BENCH_CHILD_NODE_ARGS: `--import ${join(dirname(fileURLToPath(import.meta.url)), 'gc-log.js')}` } : {}
const work = await mkdtemp(join(tmpdir(), 'dstore-small-'))
const provider = new Child('roles/dstore.js', ['provider'], env, pinned ? { cpu: 0 } : {})
const requester = new Child('roles/dstore.js', ['requester'], env, pinned ? { cpu: 1 } : {})
let seed = 1000
let dirs = 0
let addrs: string[] = []

const fresh = async (): Promise<void> => {
  if (dirs > 0) await requester.callWithin({ cmd: 'stop' }, 60_000)
  await requester.callWithin({ cmd: 'start', dir: join(work, `r${dirs++}`), addrs, encryption }, 60_000)
}
const putMany = async (count: number): Promise<string[]> => {
  const { cids } = await provider.callWithin<{ cids: string[] }>({ cmd: 'putMany', count, size: SIZE, seed }, 600_000)
  seed += count
  return cids
}
const mark = (what: string): void => { if (traceGc) process.stderr.write(`---- ${what}\n`) }
const cpu = async (c: Child): Promise<number> => (await c.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, 30_000)).cpuMs
/** CPU ms per get of each side, per phase (less sensitive to the machine's load than wall time). */
const cpuPerGet: Record<string, { provider: number, requester: number }> = {}
/**
 * Runs `fn` (`n` gets) with both sides profiled (when `--prof`), the profiles named `tag`, and
 * records both sides' CPU per get (the profiler's own cost included when profiling).
 */
const profiled = async <T>(tag: string, n: number, fn: () => Promise<T>): Promise<T> => {
  if (prof !== '') for (const c of [provider, requester]) await c.callWithin({ cmd: 'profile-start' }, 30_000)
  const [p0, r0] = [await cpu(provider), await cpu(requester)]
  try {
    return await fn()
  } finally {
    const [p1, r1] = [await cpu(provider), await cpu(requester)]
    cpuPerGet[tag] = { provider: (p1 - p0) / n, requester: (r1 - r0) / n }
    if (prof !== '') {
      await provider.callWithin({ cmd: 'profile-stop', path: join(prof, `${tag}-provider.cpuprofile`) }, 60_000)
      await requester.callWithin({ cmd: 'profile-stop', path: join(prof, `${tag}-requester.cpuprofile`) }, 60_000)
    }
  }
}
const cpuOf = (tag: string): string => `; CPU/get provider ${cpuPerGet[tag].provider.toFixed(3)} requester ${cpuPerGet[tag].requester.toFixed(3)} ms`
const stats = (ms: number[]): string =>
  `p50 ${median(ms).toFixed(3)} p99 ${percentile(ms, 99).toFixed(3)} max ${Math.max(...ms).toFixed(2)} ms`
const tail = (ms: number[]): string => {
  // Where the slow ones are: the index of each get over 2 ms (first 20).
  const slow = ms.map((m, i) => [i, m]).filter(([, m]) => m > 2).slice(0, 20)
  return slow.length === 0 ? '' : `  over 2 ms: ${slow.map(([i, m]) => `#${i} ${m.toFixed(1)}`).join(', ')}`
}

try {
  ({ addrs } = await provider.callWithin<{ addrs: string[] }>({ cmd: 'start', dir: join(work, 'p'), encryption }, 60_000))
  if (!coldProcess) {
    // As in the bench: earlier scenarios ran in this requester process, on other Locals.
    await fresh()
    for (const size of [1024, 2 ** 20]) {
      const { cid } = await provider.callWithin<{ cid: string }>({ cmd: 'put', size, seed: seed++ }, 60_000)
      await requester.callWithin({ cmd: 'get', cid, size }, 60_000)
      await requester.callWithin({ cmd: 'put', size, seed: seed++ }, 60_000)
    }
  }
  const cids = await putMany(2 * N)
  await fresh()
  mark('first 1000')
  const first = await profiled('first', N, async () => await requester.callWithin<{ ms: number[] }>({ cmd: 'getSeq', cids: cids.slice(0, N), size: SIZE }, 600_000))
  mark('steady 1000')
  const steady = await profiled('steady', N, async () => await requester.callWithin<{ ms: number[] }>({ cmd: 'getSeq', cids: cids.slice(N), size: SIZE }, 600_000))
  console.log(`first 1000 cold:  ${stats(first.ms)}${cpuOf('first')}${tail(first.ms)}`)
  console.log(`steady 1000 cold: ${stats(steady.ms)}${cpuOf('steady')}${tail(steady.ms)}`)
  const totals: number[] = []
  for (let r = 0; r < runs; r++) {
    const batch = await putMany(N)
    await fresh()
    mark(`concurrent ${r}`)
    const c = await profiled(`concurrent${r}`, N, async () => await requester.callWithin<{ totalMs: number, bytes: number }>({ cmd: 'getConcurrent', cids: batch, size: SIZE }, 600_000))
    if (c.bytes !== N * SIZE) throw new Error(`concurrent gets delivered ${c.bytes} bytes`)
    totals.push(c.totalMs)
  }
  const conc = Object.keys(cpuPerGet).filter(k => k.startsWith('concurrent'))
  const cpuMed = (side: 'provider' | 'requester'): string => median(conc.map(k => cpuPerGet[k][side])).toFixed(3)
  console.log(`1000 concurrent:  ${totals.map(t => t.toFixed(0)).join(', ')} ms (median ${median(totals).toFixed(0)}, max ${Math.max(...totals).toFixed(0)}); CPU/get provider ${cpuMed('provider')} requester ${cpuMed('requester')} ms`)
} finally {
  for (const c of [requester, provider]) await c.stop()
  await rm(work, { recursive: true, force: true })
}

if (prof !== '') {
  for (const tag of ['first-provider', 'first-requester', 'concurrent0-provider', 'concurrent0-requester']) {
    await printTopSelf(join(prof, `${tag}.cpuprofile`), tag, 20)
  }
}
