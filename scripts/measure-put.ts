/**
 * Measures `FsBlobStore.put` (what `GlobalPeer.put` runs) for one large value, durable
 * (`sync: true`: data fsynced, renamed, index committed and flushed before the put resolves).
 *
 *   node dist/scripts/measure-put.js [--mib 256] [--runs 5] [--dir /path] [--workers N] [--mode memory|stream|both]
 *     [--direct on|off|both]
 *
 * Each run puts the value into a fresh store in a temp folder: "memory" passes one Uint8Array,
 * "stream" a generator of 1 MiB pieces (a reused buffer). Prints per-run MB/s (10^6 bytes/s),
 * the median and min–max, and the put's time split from the store's counters (`store.putStats`):
 * busy times of each stage, summed over the put; the stages overlap, so they add up to more
 * than the wall time. Then the same stages measured alone, one after the other, for reference.
 * `--workers N` sets the store's `hashWorkers` (0: hash on the main thread). `--direct` sets the
 * store's `directIO` (default on); `both` alternates the two in each run, so they share the
 * machine's state. CPU is the process's (all threads, user + system) over the put, per 10^9 bytes.
 */
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFsStore } from '../src/core/store/fs.js'
import { TreeHasher } from '../src/core/tree.js'

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const MiB = 1024 * 1024
const mib = Number(arg('mib') ?? 256)
const runs = Number(arg('runs') ?? 5)
const base = arg('dir') ?? tmpdir()
const workers = arg('workers') !== undefined ? Number(arg('workers')) : undefined
const modes = (arg('mode') ?? 'both') === 'both' ? ['memory', 'stream'] : [arg('mode') as string]
const directs = { on: [true], off: [false], both: [true, false] }[arg('direct') ?? 'on']
if (directs === undefined) throw new Error('--direct takes on, off or both')
const bytes = mib * MiB

/** Deterministic pseudo-random bytes (xorshift32). */
function fill (buf: Uint8Array, seed: number): number {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4)
  let x = seed | 0
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    words[i] = x
  }
  return x
}

const whole = new Uint8Array(bytes)
fill(whole, 0x9e3779b9)

/** The same bytes as `whole`, 1 MiB at a time, through one reused buffer. */
function * pieces (): Generator<Uint8Array> {
  const buf = new Uint8Array(MiB)
  for (let off = 0; off < bytes; off += MiB) {
    buf.set(whole.subarray(off, off + MiB))
    yield buf
  }
}

const mbs = (n: number, ms: number): number => n / 1e3 / ms
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

let expected: string | undefined
for (const mode of modes) {
  const rates = new Map<boolean, number[]>(directs.map(d => [d, []]))
  const cpus = new Map<boolean, number[]>(directs.map(d => [d, []]))
  const splits = new Map<boolean, Array<Record<string, number>>>(directs.map(d => [d, []]))
  for (let r = 0; r < runs; r++) {
    for (const directIO of directs) {
      const dir = await mkdtemp(join(base, 'dstore-measure-put-'))
      try {
        const store = await createFsStore({ path: dir, hashWorkers: workers, directIO })
        // Warm up the store (workers, shard folder) with a small file value, as a running peer would be.
        await store.put(new Uint8Array(8 * MiB).fill(r + 1))
        if (await store.directWrites() !== directIO) throw new Error(`directIO ${String(directIO)} asked, but the store writes ${directIO ? 'through the page cache' : 'directly'}`)
        const putStats = store.putStats
        for (const k of Object.keys(putStats) as Array<keyof typeof putStats>) putStats[k] = 0
        const c = process.cpuUsage()
        const t = performance.now()
        const cid = await store.put(mode === 'memory' ? whole : pieces())
        const ms = performance.now() - t
        const cpu = process.cpuUsage(c)
        splits.get(directIO)?.push({ ...putStats })
        await store.close()
        expected ??= cid.toString()
        if (cid.toString() !== expected) throw new Error(`CID mismatch: ${cid.toString()} vs ${expected}`)
        rates.get(directIO)?.push(mbs(bytes, ms))
        cpus.get(directIO)?.push((cpu.user + cpu.system) / 1e6 / (bytes / 1e9))
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }
  }
  for (const directIO of directs) {
    const rs = rates.get(directIO) as number[]
    const cs = cpus.get(directIO) as number[]
    const ss = splits.get(directIO) as Array<Record<string, number>>
    console.log(`${mode.padEnd(6)} ${mib} MiB, ${directIO ? 'direct' : 'page cache'}: median ${median(rs).toFixed(0)} MB/s, min ${Math.min(...rs).toFixed(0)}, max ${Math.max(...rs).toFixed(0)}  runs: ${rs.map(x => x.toFixed(0)).join(' ')}; CPU s/GB median ${median(cs).toFixed(2)} (${cs.map(x => x.toFixed(2)).join(' ')})`)
    const keys = Object.keys(ss[0])
    console.log('       split (median ms of busy time per stage): ' + keys.map(k => `${k} ${median(ss.map(x => x[k])).toFixed(0)}`).join(', '))
  }
}
console.log(`CID ${expected ?? ''}`)

// The stages alone, sequentially, for reference.
{
  let t = performance.now()
  const hasher = new TreeHasher({ outboard: true })
  hasher.update(whole)
  hasher.finalize()
  const hashMs = performance.now() - t

  const staging = new Uint8Array(MiB)
  t = performance.now()
  for (let off = 0; off < bytes; off += MiB) staging.set(whole.subarray(off, off + MiB))
  const copyMs = performance.now() - t

  const dir = await mkdtemp(join(base, 'dstore-measure-raw-'))
  try {
    const handle = await open(join(dir, 'raw'), 'wx')
    t = performance.now()
    const piece = 4 * MiB
    for (let off = 0; off < bytes; off += piece) await handle.write(whole, off, piece, off)
    const writeMs = performance.now() - t
    t = performance.now()
    await handle.datasync()
    const syncMs = performance.now() - t
    await handle.close()
    console.log(`alone: hash (main thread, TreeHasher) ${hashMs.toFixed(0)} ms (${mbs(bytes, hashMs).toFixed(0)} MB/s), ` +
      `copy 1 MiB pieces ${copyMs.toFixed(0)} ms, write syscalls (4 MiB) ${writeMs.toFixed(0)} ms (${mbs(bytes, writeMs).toFixed(0)} MB/s), ` +
      `fdatasync ${syncMs.toFixed(0)} ms`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
