/**
 * The HTTP bench: the Local daemon (`dstore local`) over HTTP, beside the libp2p path.
 *
 *   npm run bench -- --only http [--quick]
 *
 * Processes, all on 127.0.0.1: a Global (`roles/dstore.js provider`, TLS), a Local daemon
 * (`dstore local`, the real CLI) connected to it, and the clients: `curl` for throughput (a
 * separate process, as a user would run it), `autocannon` (its own process) for requests per
 * second, and a Local (`roles/dstore.js requester`) as the reference for a cold read at the API.
 * Every cold measurement uses a freshly started daemon (empty cache); every value is checked for
 * its size (curl's size_download).
 *
 * Figures: warm 256 MiB GET throughput (cached in the daemon), cold 256 MiB GET through the
 * daemon vs `Local.cat` and `Local.get` cold (the same Global, the same value; `Local.get` also
 * fills a cache, as the daemon does), 100-byte GET latency p50/p99
 * warm and cold (a keep-alive client in its own process), and warm 1 KiB GETs per second.
 * Results: `bench/results/http.json`; `docs/BENCHMARKS.md` gets them through `lib/report.ts`.
 */
import { spawn, execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Child, median, percentile } from './lib/child.js'
import { figure } from './compare.js'
import type { Figure } from './lib/report.js'

const run = promisify(execFile)
const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = join(HERE, '..', '..')
const CLI = join(ROOT, 'dist', 'bin', 'dstore.mjs')
const MiB = 1 << 20
const BIG = 256 * MiB

export interface HttpBenchResult {
  date: string
  machine: { cpus: number, model: string, load: number[] }
  quick: boolean
  /** MB/s (10^6 bytes per second) of a cached 256 MiB GET, by client. */
  warmBig: { curl: Figure }
  /** MB/s of a cold 256 MiB read: curl through a fresh daemon, and Local.cat in a fresh Local. */
  coldBig: { daemonCurl: Figure, localCat: Figure, localGet: Figure, ratio: number }
  /** 100-byte GETs, one after another on one keep-alive connection (ms). */
  small: { n: number, cold: { p50: number, p99: number }, warm: { p50: number, p99: number } }
  /** autocannon, warm 1 KiB GETs of one cached value. */
  rps: { connections: number, seconds: number, requestsPerSec: Figure, p99Ms: number, errors: number, non2xx: number }
}

interface Daemon { url: string, stop: () => Promise<void> }

/** Starts `dstore local` on a fresh repository and waits until its HTTP answers with Global connected. */
async function startDaemon (globalAddrs: string[], cacheSize: number): Promise<Daemon> {
  const repo = await mkdtemp(join(tmpdir(), 'dstore-bench-daemon-'))
  const args = [CLI, 'local', '--repo', repo, '--http', '127.0.0.1:0', '--cache-size', String(cacheSize), '--listen', 'off']
  for (const a of globalAddrs) args.push('--global', a)
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise<void>(resolve => proc.once('exit', () => { resolve() }))
  const stop = async (): Promise<void> => {
    proc.kill('SIGTERM')
    await exited
    await rm(repo, { recursive: true, force: true })
  }
  const file = join(repo, 'local.http')
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      const url = (await readFile(file, 'utf8')).trim()
      try {
        const status = await (await fetch(`${url}/status`)).json() as { global?: { connected?: boolean }, connected?: boolean }
        if (status.global?.connected === true || status.connected === true) return { url, stop }
      } catch {}
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  await stop()
  throw new Error('the Local daemon did not come up within 20 s')
}

/** curl's own figures for one GET: bytes and seconds (total time, connect included). */
async function curl (url: string): Promise<{ bytes: number, seconds: number }> {
  const { stdout } = await run('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url], { maxBuffer: 1 << 20 })
  const [bytes, seconds] = stdout.trim().split(' ').map(Number)
  return { bytes, seconds }
}

async function curlMBps (url: string, size: number): Promise<number> {
  const r = await curl(url)
  if (r.bytes !== size) throw new Error(`curl got ${r.bytes} bytes of ${url}, expected ${size}`)
  return size / r.seconds / 1e6
}

/** A client in its own process: sequential GETs on one keep-alive connection; ms per GET. */
const LATENCY_CLIENT = `
const [url, ...cids] = JSON.parse(process.argv[1])
const ms = []
for (const cid of cids) {
  const t0 = performance.now()
  const res = await fetch(url + '/ipfs/' + cid)
  const body = new Uint8Array(await res.arrayBuffer())
  if (res.status !== 200 || body.length !== 100) throw new Error('bad answer ' + res.status + ' ' + body.length)
  ms.push(performance.now() - t0)
}
process.stdout.write(JSON.stringify(ms))
`

async function latencies (url: string, cids: string[]): Promise<number[]> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', LATENCY_CLIENT, JSON.stringify([url, ...cids])], { maxBuffer: 16 << 20 })
  return JSON.parse(stdout) as number[]
}

async function autocannon (url: string, connections: number, seconds: number): Promise<{ rps: number, p99: number, errors: number, non2xx: number }> {
  const bin = join(ROOT, 'node_modules', 'autocannon', 'autocannon.js')
  const { stdout } = await run(process.execPath, [bin, '-c', String(connections), '-d', String(seconds), '-j', url], { maxBuffer: 64 << 20 })
  const r = JSON.parse(stdout) as { requests: { average: number }, latency: { p99: number }, errors: number, non2xx: number }
  return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx }
}

/** Puts `data(size, seed)` through the provider role; returns the CID. */
async function put (provider: Child, size: number, seed: number): Promise<string> {
  return (await provider.call<{ cid: string }>({ cmd: 'put', size, seed })).cid
}

export async function runHttpBench (opts: { quick?: boolean } = {}): Promise<HttpBenchResult> {
  const quick = opts.quick === true
  const reps = quick ? 3 : 7
  const smallN = quick ? 200 : 1000
  const log = (line: string): void => { console.log(`[http] ${line}`) }
  const dir = await mkdtemp(join(tmpdir(), 'dstore-bench-http-'))
  const provider = new Child('roles/dstore.js', ['provider'])
  const daemons: Daemon[] = []
  try {
    const { addrs } = await provider.call<{ addrs: string[] }>({ cmd: 'start', dir: join(dir, 'global'), encryption: 'tls' })
    const big = await put(provider, BIG, 9001)
    const kib = await put(provider, 1024, 9002)
    const small = (await provider.call<{ cids: string[] }>({ cmd: 'putMany', count: smallN, size: 100, seed: 9100 })).cids

    // Cold: a fresh daemon per repetition (empty cache), and a fresh Local for the reference.
    const coldCurl: number[] = []
    const coldCat: number[] = []
    const coldGet: number[] = []
    for (let i = 0; i < reps; i++) {
      const d = await startDaemon(addrs, 512 * MiB)
      try {
        coldCurl.push(await curlMBps(`${d.url}/ipfs/${big}`, BIG))
      } finally { await d.stop() }
      for (const stream of [true, false]) {
        const requester = new Child('roles/dstore.js', ['requester'])
        try {
          await requester.call({ cmd: 'start', dir: join(dir, `req-${i}-${String(stream)}`), addrs, encryption: 'tls', stream })
          const r = await requester.call<{ ms: number, bytes: number }>({ cmd: 'get', cid: big, size: BIG })
          ;(stream ? coldCat : coldGet).push(BIG / (r.ms / 1000) / 1e6)
          await requester.call({ cmd: 'exit' })
        } finally { if (requester.running) await requester.kill() }
      }
      log(`cold 256 MiB: daemon+curl ${coldCurl[i].toFixed(0)} MB/s, Local.cat ${coldCat[i].toFixed(0)} MB/s, Local.get ${coldGet[i].toFixed(0)} MB/s`)
    }

    // Warm: one long-lived daemon; the first GET fills its cache.
    const d = await startDaemon(addrs, 512 * MiB)
    daemons.push(d)
    await curlMBps(`${d.url}/ipfs/${big}`, BIG)
    const warm: number[] = []
    for (let i = 0; i < reps; i++) warm.push(await curlMBps(`${d.url}/ipfs/${big}`, BIG))
    log(`warm 256 MiB: curl ${median(warm).toFixed(0)} MB/s`)

    const cold100 = await latencies(d.url, small)
    const warm100 = await latencies(d.url, small)
    log(`100 B: cold p50 ${median(cold100).toFixed(2)} ms p99 ${percentile(cold100, 99).toFixed(2)}; warm p50 ${median(warm100).toFixed(2)} p99 ${percentile(warm100, 99).toFixed(2)}`)

    await curl(`${d.url}/ipfs/${kib}`)
    const connections = 32
    const seconds = quick ? 3 : 5
    const rps: number[] = []
    let p99 = 0
    let errors = 0
    let non2xx = 0
    for (let i = 0; i < (quick ? 2 : 3); i++) {
      const r = await autocannon(`${d.url}/ipfs/${kib}`, connections, seconds)
      rps.push(r.rps)
      p99 = Math.max(p99, r.p99)
      errors += r.errors
      non2xx += r.non2xx
    }
    log(`warm 1 KiB: ${median(rps).toFixed(0)} requests/s (${connections} connections), errors ${errors}, non-2xx ${non2xx}`)

    const result: HttpBenchResult = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', load: loadavg() },
      quick,
      warmBig: { curl: figure(warm) },
      coldBig: { daemonCurl: figure(coldCurl), localCat: figure(coldCat), localGet: figure(coldGet), ratio: median(coldCurl) / median(coldCat) },
      small: {
        n: smallN,
        cold: { p50: median(cold100), p99: percentile(cold100, 99) },
        warm: { p50: median(warm100), p99: percentile(warm100, 99) }
      },
      rps: { connections, seconds, requestsPerSec: figure(rps), p99Ms: p99, errors, non2xx }
    }
    await writeFile(join(ROOT, 'bench', 'results', 'http.json'), JSON.stringify(result, null, 2) + '\n')
    return result
  } finally {
    for (const d of daemons) await d.stop()
    if (provider.running) {
      try { await provider.callWithin({ cmd: 'exit' }, 10_000) } catch {}
    }
    await rm(dir, { recursive: true, force: true })
  }
}
