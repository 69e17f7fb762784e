/**
 * BLAKE3 throughput: dstore's selected backend (native where built), its WebAssembly and portable ones, against @noble/hashes,
 * hash-wasm, blake3-jit and the native b3sum, at 1 KiB, 64 KiB and 1 MiB.
 *
 *   npx tsc -p . && node dist/bench/hash.js [--quick]     (or `npm run bench`)
 *
 * MB/s means 10^6 bytes per second, single thread. Each figure is the median of several
 * timed repetitions (min-max shown too); the machine is shared, so medians are what to read.
 * Before timing, every implementation must return dstore's digest for the test input: a bench
 * that measures a wrong hash is worthless. b3sum runs as a child process on a 256 MiB temp
 * file, timed around the process (so its figure includes process start and reading the file
 * from the page cache), with `--num-threads 1` and with its default thread count.
 * Figures are written to bench/results/hash.json.
 */
import '../src/runtime-shim.js'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { mkdtempSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js'
import { createBLAKE3 } from 'hash-wasm'
import { hash as jitHash } from 'blake3-jit'
import { blake3 } from '../src/core/blake3/index.js'
import { blake3js } from '../src/core/blake3/js.js'
import { createWasmBlake3, wasmSupported } from '../src/core/blake3/wasm.js'

/** The throughput dstore must reach at 1 MiB. */
export const REQUIRED_MBPS = 500
const B3SUM = '/usr/bin/b3sum'
const SIZES = [1024, 64 * 1024, 1024 * 1024]
const B3SUM_FILE_LEN = 256 * 1024 * 1024

export interface Figure { median: number, min: number, max: number, reps: number }
export interface HashBenchResult {
  date: string
  node: string
  cpu: string
  unit: string
  backend: string
  /** MB/s per implementation, per input size in bytes. */
  results: Record<string, Record<string, Figure>>
  b3sum: { singleThread: Figure, defaultThreads: Figure, fileBytes: number } | { skipped: string }
  meetsRequirement: boolean
}

type HashFn = (data: Uint8Array) => Uint8Array

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function testInput (len: number): Uint8Array {
  const out = new Uint8Array(len)
  let x = 0x9e3779b9
  for (let i = 0; i < len; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x }
  return out
}

function figure (samples: number[]): Figure {
  const s = [...samples].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  return { median, min: s[0], max: s[s.length - 1], reps: s.length }
}

/** MB/s of `fn` on `data`: calibrated so one repetition takes about `repMs`. */
function measure (fn: HashFn, data: Uint8Array, reps: number, repMs: number): Figure {
  let sink = 0
  // Warm up (lets V8 tier up JS and WebAssembly) and calibrate.
  let iters = 1
  for (;;) {
    const t = performance.now()
    for (let i = 0; i < iters; i++) sink ^= fn(data)[0]
    const dt = performance.now() - t
    if (dt >= repMs / 4) { iters = Math.max(1, Math.round(iters * repMs / dt)); break }
    iters *= 4
  }
  const samples: number[] = []
  for (let r = 0; r < reps; r++) {
    const t = performance.now()
    for (let i = 0; i < iters; i++) sink ^= fn(data)[0]
    const dt = performance.now() - t
    samples.push(data.length * iters / (dt * 1000))
  }
  if (sink === 256) console.log('') // keep results observable
  return figure(samples)
}

function b3sumBench (reps: number, expect: (data: Uint8Array) => string): HashBenchResult['b3sum'] {
  if (!existsSync(B3SUM)) {
    console.log(`note: ${B3SUM} is not installed, skipping b3sum (apt-get install b3sum)`)
    return { skipped: `${B3SUM} not installed` }
  }
  const dir = mkdtempSync(join(tmpdir(), 'dstore-bench-'))
  const file = join(dir, 'input.bin')
  try {
    const data = testInput(B3SUM_FILE_LEN)
    writeFileSync(file, data)
    const run = (args: string[]): { mbps: number, digest: string } => {
      const t = performance.now()
      const out = execFileSync(B3SUM, [...args, file], { encoding: 'utf8' })
      const dt = performance.now() - t
      return { mbps: B3SUM_FILE_LEN / (dt * 1000), digest: out.split(/\s/)[0] }
    }
    run(['--num-threads', '1']) // page cache warm-up
    const want = expect(data)
    const single: number[] = []
    const multi: number[] = []
    for (let r = 0; r < reps; r++) {
      const a = run(['--num-threads', '1'])
      const b = run([])
      if (a.digest !== want || b.digest !== want) throw new Error(`b3sum digest ${a.digest} differs from dstore's ${want}`)
      single.push(a.mbps)
      multi.push(b.mbps)
    }
    return { singleThread: figure(single), defaultThreads: figure(multi), fileBytes: B3SUM_FILE_LEN }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const fmt = (f: Figure): string => `${f.median.toFixed(0).padStart(6)} (${f.min.toFixed(0)}-${f.max.toFixed(0)})`
const sizeName = (n: number): string => n >= 1 << 20 ? `${n >> 20} MiB` : `${n >> 10} KiB`

/** Runs the hash bench, prints a table, writes bench/results/hash.json and returns the figures. */
export async function runHashBench (opts: { quick?: boolean } = {}): Promise<HashBenchResult> {
  const reps = opts.quick === true ? 3 : 9
  const repMs = opts.quick === true ? 40 : 150
  const hashWasm = await createBLAKE3()
  // The WebAssembly backend beside the native one it falls back to (when the addon was built).
  const wasm = blake3.name !== 'wasm-simd' && wasmSupported() ? createWasmBlake3() : undefined
  const impls: Array<[string, HashFn]> = [
    [`dstore (${blake3.name})`, d => blake3.subtreeCV(d, 0, true)],
    ...(wasm !== undefined ? [['dstore wasm-simd', d => wasm.subtreeCV(d, 0, true)] satisfies [string, HashFn]] : []),
    ['dstore js', d => blake3js.subtreeCV(d, 0, true)],
    ['@noble/hashes', d => nobleBlake3(d)],
    ['hash-wasm', d => { hashWasm.init(); hashWasm.update(d); return hashWasm.digest('binary') }],
    ['blake3-jit', d => jitHash(d)]
  ]

  // Every implementation must agree with dstore before it is timed.
  for (const size of [0, 1, 1023, 1025, 4096 + 17, ...SIZES, 3 * (1 << 20) + 5]) {
    const data = testInput(size)
    const want = hex(blake3.subtreeCV(data, 0, true))
    for (const [name, fn] of impls) {
      const got = hex(fn(data))
      if (got !== want) throw new Error(`${name} returns ${got} for ${size} bytes, dstore returns ${want}`)
    }
  }
  console.log(`BLAKE3 hash throughput, MB/s (10^6 bytes/s), median (min-max) of ${reps} runs, one thread`)
  console.log(`all ${impls.length} JS/WASM implementations return the same digests as dstore`)

  const results: HashBenchResult['results'] = {}
  for (const [name] of impls) results[name] = {}
  for (const size of SIZES) {
    const data = testInput(size)
    for (const [name, fn] of impls) results[name][size] = measure(fn, data, reps, repMs)
  }

  const b3sum = b3sumBench(opts.quick === true ? 1 : 3, d => hex(blake3.subtreeCV(d, 0, true)))

  const col = 24
  console.log('\n' + 'implementation'.padEnd(col) + SIZES.map(s => sizeName(s).padStart(22)).join(''))
  for (const [name] of impls) {
    console.log(name.padEnd(col) + SIZES.map(s => fmt(results[name][s]).padStart(22)).join(''))
  }
  if ('skipped' in b3sum) {
    console.log(`b3sum: skipped (${b3sum.skipped})`)
  } else {
    console.log(`b3sum --num-threads 1`.padEnd(col) + `256 MiB file: ${fmt(b3sum.singleThread)}   (native, timed around the process)`)
    console.log(`b3sum (default threads)`.padEnd(col) + `256 MiB file: ${fmt(b3sum.defaultThreads)}   (${cpus().length} cores)`)
  }

  const selected = results[impls[0][0]][1 << 20].median
  const meetsRequirement = selected >= REQUIRED_MBPS
  console.log(`\ndstore (${blake3.name}) at 1 MiB: ${selected.toFixed(0)} MB/s, ` +
    (meetsRequirement ? `MEETS the ${REQUIRED_MBPS} MB/s requirement` : `FAILS the ${REQUIRED_MBPS} MB/s requirement`))

  const result: HashBenchResult = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    unit: 'MB/s (10^6 bytes per second), one thread; keys of results are input sizes in bytes',
    backend: blake3.name,
    results,
    b3sum,
    meetsRequirement
  }
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'hash.json'), JSON.stringify(result, null, 2) + '\n')
  console.log(`wrote ${join(dir, 'hash.json')}`)
  return result
}

if (process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]) {
  await runHashBench({ quick: process.argv.includes('--quick') })
}
