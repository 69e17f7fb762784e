/**
 * Measures cold gets from a Local: the latency of a 100-byte get and the time of a 64 MiB get,
 * with a Global and a Local in this process on 127.0.0.1 (TLS, yamux). "Cold": the Local has
 * not cached the value (100-byte gets each ask for a different value; the 64 MiB value is
 * dropped from the cache before each get).
 *
 *   node dist/scripts/measure-get.js [--small 300] [--large 5] [--mib 64]
 *
 * Prints the median and the 10th–90th percentiles of the small gets (µs) and of the time to the
 * first verified byte of the large value (µs, a `cat` stopped there), and the median and
 * min–max of whole large gets (ms, MB/s).
 */
import '../src/runtime-shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGlobal, createLocal } from '../src/index.js'

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

const smallRuns = arg('small', 300)
const largeRuns = arg('large', 5)
const mib = arg('mib', 64)

function bytes (n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = (seed * 2 + 1) | 0
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 0xff }
  return out
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]

const dir = await mkdtemp(join(tmpdir(), 'dstore-measure-get-'))
const global = await createGlobal({ repo: join(dir, 'global'), sync: false })
const local = await createLocal({ global: global.multiaddrs[0], cacheSize: 512 * 1024 * 1024 })
try {
  await local.ready()
  const small: Awaited<ReturnType<typeof global.put>>[] = []
  for (let i = 0; i < smallRuns + 20; i++) small.push(await global.put(bytes(100, i + 1)))
  const times: number[] = []
  for (let i = 0; i < small.length; i++) {
    const t = process.hrtime.bigint()
    const v = await local.get(small[i])
    const us = Number(process.hrtime.bigint() - t) / 1000
    if (v.length !== 100) throw new Error('wrong size')
    if (i >= 20) times.push(us) // the first ones warm up the code paths
  }
  times.sort((a, b) => a - b)
  console.log(`100-byte cold get: median ${pct(times, 0.5).toFixed(0)} µs (p10 ${pct(times, 0.1).toFixed(0)}, p90 ${pct(times, 0.9).toFixed(0)}), ${times.length} gets`)

  const large = await global.put(bytes(mib * 1024 * 1024, 7))
  // Time to the first verified byte of the large value (cat is never cached).
  const firsts: number[] = []
  for (let i = 0; i < 40; i++) {
    const t = process.hrtime.bigint()
    for await (const part of local.cat(large)) { if (part.length > 0) break }
    if (i >= 10) firsts.push(Number(process.hrtime.bigint() - t) / 1000)
  }
  firsts.sort((a, b) => a - b)
  console.log(`${mib} MiB cold get, first verified byte: median ${pct(firsts, 0.5).toFixed(0)} µs (p10 ${pct(firsts, 0.1).toFixed(0)}, p90 ${pct(firsts, 0.9).toFixed(0)}), ${firsts.length} gets`)
  const ms: number[] = []
  for (let i = 0; i < largeRuns + 1; i++) {
    await local.cache.delete(large)
    const t = process.hrtime.bigint()
    const v = await local.get(large)
    const took = Number(process.hrtime.bigint() - t) / 1e6
    if (v.length !== mib * 1024 * 1024) throw new Error('wrong size')
    if (i > 0) ms.push(took)
  }
  ms.sort((a, b) => a - b)
  const rate = (t: number): string => (mib * 1024 * 1024 / 1e6 / (t / 1000)).toFixed(0)
  console.log(`${mib} MiB cold get: median ${pct(ms, 0.5).toFixed(0)} ms (${rate(pct(ms, 0.5))} MB/s), min ${ms[0].toFixed(0)}, max ${ms[ms.length - 1].toFixed(0)}, ${ms.length} gets`)
} finally {
  await local.stop()
  await global.stop()
  await rm(dir, { recursive: true, force: true })
}
