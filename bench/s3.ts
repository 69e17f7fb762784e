/**
 * The S3 bench: a Global on the S3 store, beside the same Global on the fs store and beside the
 * AWS SDK moving the same bytes straight to the server.
 *
 *   npm run bench -- --only s3 [--quick]
 *
 * Processes, all on 127.0.0.1: the S3 server (OpenStack Swift with s3api, test/s3-server.ts:
 * memcached and four Swift processes, 1-replica rings, data in a temp folder), a Global (the
 * real CLI, `dstore global`, on `--store s3://…` or on its fs store) and a Local (the bench's
 * requester role, `stream: true`: no cache, values streamed and counted, never held) that puts
 * and gets over libp2p (TLS). The direct figure is the SDK in the bench process: lib-storage's
 * `Upload` for a put (parts of 8 MiB, 4 at once) and one streamed `GetObject` for a get.
 *
 * Figures: put and get MB/s (10^6 bytes per second) of 64 MiB and 256 MiB; every get is cold
 * for dstore (the Local has no cache and a Global on S3 keeps no values; the fs store's reads
 * come from the page cache, as a warm disk would); the S3 server's own caches are whatever
 * Swift and the kernel keep, the same for dstore and the SDK. The peak RSS of a freshly started
 * Global on S3 (VmHWM, reset before each transfer through /proc/PID/clear_refs) for a 1 GiB put
 * and get. Time to
 * the first byte of a 256 MiB value: curl's time_starttransfer on Global's HTTP gateway, and
 * the SDK's GetObject until its first body chunk.
 * Results: `bench/results/s3.json`; `docs/BENCHMARKS.md` gets them through `lib/report-s3.ts`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { Readable } from 'node:stream'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { Child, median } from './lib/child.js'
import { dataPieces } from './lib/data.js'
import { figure } from './compare.js'
import type { Figure } from './lib/report.js'
import { startS3Server, type S3Server } from '../test/s3-server.js'

const run = promisify(execFile)
const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = join(HERE, '..', '..')
const CLI = join(ROOT, 'dist', 'bin', 'dstore.mjs')
const MiB = 1 << 20
const SIZES = [64 * MiB, 256 * MiB]
const RSS_SIZE = 1024 * MiB

/** MB/s of puts and gets of one size, through one path. */
export interface Throughput { put: Figure, get: Figure }

export interface S3BenchResult {
  date: string
  machine: { cpus: number, model: string, load: number[] }
  quick: boolean
  /** By size in MiB ("64", "256"): the Global on S3, on fs, and the SDK straight to the server. */
  throughput: Record<string, { s3: Throughput, fs: Throughput, sdk: Throughput, putRatio: number, getRatio: number }>
  /** A freshly started Global on the S3 store: its RSS once up, and its peak RSS (MiB) while a 1 GiB value is put and got. */
  rss: { sizeMiB: number, baseMiB: number, putPeakMiB: number, getPeakMiB: number }
  /** Milliseconds to the first byte of the 256 MiB value. */
  ttfb: { s3Http: Figure, fsHttp: Figure, sdk: Figure }
  /** The Global's S3 request counts after the run (its /status), to show what a put and a get cost. */
  s3Requests?: unknown
}

interface GlobalProc { addrs: string[], http: string, pid: number, stop: () => Promise<void> }

/** Starts `dstore global` (the real CLI) and waits for its --json line. */
async function startGlobal (repo: string, store: string[], env: Record<string, string>): Promise<GlobalProc> {
  const args = [CLI, 'global', '--repo', repo, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0', '--json', ...store]
  const proc: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  const exited = new Promise<void>(resolve => proc.once('exit', () => { resolve() }))
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('dstore global did not start within 30 s')) }, 30_000)
    createInterface({ input: proc.stdout! }).once('line', l => { clearTimeout(timer); resolve(l) })
    proc.once('exit', code => { clearTimeout(timer); reject(new Error(`dstore global exited with ${String(code)}`)) })
  })
  const info = JSON.parse(line) as { multiaddrs: string[], http: string }
  return {
    addrs: info.multiaddrs,
    http: info.http,
    pid: proc.pid!,
    stop: async () => { proc.kill('SIGTERM'); await exited }
  }
}

/** Peak RSS (VmHWM) of process `pid`, in MiB. */
async function peakOf (pid: number): Promise<number> {
  const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))
  return m === null ? NaN : Number(m[1]) / 1024
}

/** Resets process `pid`'s VmHWM to its RSS now (Linux: clear_refs 5). */
async function resetPeakOf (pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5')
}

/** curl's time to the first byte of a GET, in ms (the whole body is read and its size checked). */
async function curlTtfb (url: string, size: number): Promise<number> {
  const { stdout } = await run('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download} %{time_starttransfer}', url], { maxBuffer: 1 << 20 })
  const [bytes, seconds] = stdout.trim().split(' ').map(Number)
  if (bytes !== size) throw new Error(`curl got ${bytes} bytes of ${url}, expected ${size}`)
  return seconds * 1000
}

const mbps = (size: number, ms: number): number => size / (ms / 1000) / 1e6

/** Puts and cold gets through a Global on `store`: MB/s per size, and the CIDs put. */
async function throughGlobal (g: GlobalProc, dir: string, reps: number, seed: number): Promise<{ bySize: Record<string, { put: number[], get: number[] }>, cids: Record<string, string> }> {
  const bySize: Record<string, { put: number[], get: number[] }> = {}
  const cids: Record<string, string> = {}
  for (const size of SIZES) {
    const key = String(size / MiB)
    bySize[key] = { put: [], get: [] }
    for (let i = 0; i < reps; i++) {
      // A fresh value each time: a put of stored bytes is not uploaded again, and would measure only hashing.
      const requester = new Child('roles/dstore.js', ['requester'])
      try {
        await requester.call({ cmd: 'start', dir: join(dir, `req-${key}-${i}`), addrs: g.addrs, encryption: 'tls', stream: true })
        const p = await requester.call<{ cid: string, ms: number }>({ cmd: 'put', size, seed: seed + i })
        bySize[key].put.push(mbps(size, p.ms))
        cids[key] = p.cid
        const r = await requester.call<{ ms: number, bytes: number }>({ cmd: 'get', cid: p.cid, size })
        bySize[key].get.push(mbps(size, r.ms))
        await requester.call({ cmd: 'exit' })
      } finally { if (requester.running) await requester.kill() }
    }
  }
  return { bySize, cids }
}

/** The SDK straight to the server: MB/s of puts and gets, and ms to a GET's first body chunk. */
async function throughSdk (server: S3Server, bucket: string, reps: number, seed: number): Promise<{ bySize: Record<string, { put: number[], get: number[] }>, ttfb: number[] }> {
  const client = server.client()
  const bySize: Record<string, { put: number[], get: number[] }> = {}
  const ttfb: number[] = []
  try {
    for (const size of SIZES) {
      const key = String(size / MiB)
      bySize[key] = { put: [], get: [] }
      for (let i = 0; i < reps; i++) {
        const objectKey = `sdk/${key}-${i}`
        let t0 = performance.now()
        await new Upload({ client, params: { Bucket: bucket, Key: objectKey, Body: Readable.from(dataPieces(size, seed + i)) }, partSize: 8 * MiB, queueSize: 4 }).done()
        bySize[key].put.push(mbps(size, performance.now() - t0))
        t0 = performance.now()
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }))
        let bytes = 0
        let first: number | undefined
        for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
          first ??= performance.now() - t0
          bytes += chunk.length
        }
        if (bytes !== size) throw new Error(`the SDK got ${bytes} bytes of ${objectKey}, expected ${size}`)
        bySize[key].get.push(mbps(size, performance.now() - t0))
        if (size === SIZES[SIZES.length - 1] && first !== undefined) ttfb.push(first)
      }
    }
  } finally {
    client.destroy()
  }
  return { bySize, ttfb }
}

export async function runS3Bench (opts: { quick?: boolean } = {}): Promise<S3BenchResult> {
  const quick = opts.quick === true
  const reps = quick ? 1 : 3
  const log = (line: string): void => { console.log(`[s3] ${line}`) }
  const dir = await mkdtemp(join(tmpdir(), 'dstore-bench-s3-'))
  const server = await startS3Server()
  const globals: GlobalProc[] = []
  try {
    const bucket = await server.createBucket('dstore-bench')
    const env = { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_REGION: server.region }
    const s3Flags = ['--store', `s3://${bucket}/dstore`, '--s3-endpoint', server.endpoint, '--s3-path-style']

    const sdk = await throughSdk(server, bucket, reps, 5000)
    for (const [k, v] of Object.entries(sdk.bySize)) log(`SDK ${k} MiB: put ${median(v.put).toFixed(0)} MB/s, get ${median(v.get).toFixed(0)} MB/s`)

    const gs3 = await startGlobal(join(dir, 'global-s3'), s3Flags, env)
    globals.push(gs3)
    const s3 = await throughGlobal(gs3, dir, reps, 6000)
    for (const [k, v] of Object.entries(s3.bySize)) log(`Global on S3 ${k} MiB: put ${median(v.put).toFixed(0)} MB/s, get ${median(v.get).toFixed(0)} MB/s`)

    // Peak RSS for 1 GiB on a freshly started Global on S3 (what a Global that just started
    // needs, not the heap the runs above left): reset before each transfer.
    const grss = await startGlobal(join(dir, 'global-s3-rss'), s3Flags, env)
    globals.push(grss)
    const baseMiB = (await readFile(`/proc/${grss.pid}/status`, 'utf8')).match(/VmRSS:\s+(\d+) kB/)?.[1]
    const requester = new Child('roles/dstore.js', ['requester'])
    let putPeakMiB = NaN
    let getPeakMiB = NaN
    try {
      await requester.call({ cmd: 'start', dir: join(dir, 'req-rss'), addrs: grss.addrs, encryption: 'tls', stream: true })
      await resetPeakOf(grss.pid)
      const p = await requester.call<{ cid: string, ms: number }>({ cmd: 'put', size: RSS_SIZE, seed: 7000 })
      putPeakMiB = await peakOf(grss.pid)
      await resetPeakOf(grss.pid)
      await requester.call({ cmd: 'get', cid: p.cid, size: RSS_SIZE })
      getPeakMiB = await peakOf(grss.pid)
      await requester.call({ cmd: 'exit' })
    } finally { if (requester.running) await requester.kill() }
    await grss.stop()
    globals.splice(globals.indexOf(grss), 1)
    log(`Global on S3, 1 GiB: peak RSS ${putPeakMiB.toFixed(0)} MiB during the put, ${getPeakMiB.toFixed(0)} MiB during the get`)

    const big = String(SIZES[SIZES.length - 1] / MiB)
    const ttfbS3: number[] = []
    for (let i = 0; i < Math.max(3, reps); i++) ttfbS3.push(await curlTtfb(`${gs3.http}/ipfs/${s3.cids[big]}`, SIZES[SIZES.length - 1]))
    const status = await (await fetch(`${gs3.http}/status`)).json() as { store?: { requests?: unknown } }
    await gs3.stop()
    globals.pop()

    const gfs = await startGlobal(join(dir, 'global-fs'), [], {})
    globals.push(gfs)
    const fs = await throughGlobal(gfs, dir, reps, 8000)
    for (const [k, v] of Object.entries(fs.bySize)) log(`Global on fs ${k} MiB: put ${median(v.put).toFixed(0)} MB/s, get ${median(v.get).toFixed(0)} MB/s`)
    const ttfbFs: number[] = []
    for (let i = 0; i < Math.max(3, reps); i++) ttfbFs.push(await curlTtfb(`${gfs.http}/ipfs/${fs.cids[big]}`, SIZES[SIZES.length - 1]))
    log(`first byte of ${big} MiB: Global on S3 ${median(ttfbS3).toFixed(1)} ms, on fs ${median(ttfbFs).toFixed(1)} ms, SDK ${median(sdk.ttfb).toFixed(1)} ms`)

    const throughput: S3BenchResult['throughput'] = {}
    for (const size of SIZES) {
      const k = String(size / MiB)
      const t = (x: { put: number[], get: number[] }): Throughput => ({ put: figure(x.put), get: figure(x.get) })
      throughput[k] = {
        s3: t(s3.bySize[k]),
        fs: t(fs.bySize[k]),
        sdk: t(sdk.bySize[k]),
        putRatio: median(s3.bySize[k].put) / median(sdk.bySize[k].put),
        getRatio: median(s3.bySize[k].get) / median(sdk.bySize[k].get)
      }
    }
    const result: S3BenchResult = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', load: loadavg() },
      quick,
      throughput,
      rss: { sizeMiB: RSS_SIZE / MiB, baseMiB: Number(baseMiB ?? NaN) / 1024, putPeakMiB, getPeakMiB },
      ttfb: { s3Http: figure(ttfbS3), fsHttp: figure(ttfbFs), sdk: figure(sdk.ttfb) },
      s3Requests: status.store?.requests
    }
    await writeFile(join(ROOT, 'bench', 'results', 's3.json'), JSON.stringify(result, null, 2) + '\n')
    return result
  } finally {
    for (const g of globals) await g.stop().catch(() => {})
    await server.stop()
    await rm(dir, { recursive: true, force: true })
  }
}
