/**
 * Measures the filesystem store.
 *
 *   node dist/scripts/measure-fs-put.js [--mib 1024] [--dir /path]
 *     Streams a generated value (deterministic pseudo-random, produced 1 MiB at a time into a
 *     reused buffer, never held whole) into a fresh store in a temp folder, gets it back and
 *     hashes it. Reports time, MB/s, peak RSS (sampled every 50 ms) and VmHWM.
 *
 *   node dist/scripts/measure-fs-put.js --small 10000 [--value-bytes 100]
 *     Puts and gets N small values: sequentially (each put awaited) and concurrently (1000 in
 *     flight), with the default inline threshold and with every value as a file (threshold 0).
 *     `--mode sequential|concurrent` runs one of the two; `--threshold N` sets the inline threshold.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFsStore } from '../src/core/store/fs.js'
import { TreeHasher } from '../src/core/tree.js'
import type { CID } from 'multiformats/cid'

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const MiB = 1024 * 1024

/** 1 MiB pieces of xorshift32 output, into one reused buffer. */
function * generate (mib: number, seed = 0x9e3779b9): Generator<Uint8Array> {
  const buf = new Uint8Array(MiB)
  const words = new Uint32Array(buf.buffer)
  let x = seed | 0
  for (let piece = 0; piece < mib; piece++) {
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5
      words[i] = x
    }
    yield buf
  }
}

async function vmHWM (): Promise<string> {
  try {
    const status = await readFile('/proc/self/status', 'utf8')
    return status.match(/^VmHWM:\s*(.*)$/m)?.[1] ?? 'n/a'
  } catch {
    return 'n/a'
  }
}

function mb (bytes: number, ms: number): string {
  return (bytes / 1e6 / (ms / 1000)).toFixed(1)
}

async function measureBig (mib: number, base: string): Promise<void> {
  const dir = await mkdtemp(join(base, 'dstore-measure-'))
  let peak = process.memoryUsage().rss
  const rssStart = peak
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
  try {
    const store = await createFsStore({ path: dir })
    const bytes = mib * MiB

    // The generator's own cost, so it can be told apart from the store's.
    let t = performance.now()
    for (const _ of generate(mib)) {}
    const genMs = performance.now() - t

    t = performance.now()
    const cid: CID = await store.put(generate(mib), { size: bytes })
    const putMs = performance.now() - t

    t = performance.now()
    const hasher = new TreeHasher()
    let n = 0
    for await (const piece of store.cat(cid)) { hasher.update(piece); n += piece.length }
    const root = hasher.finalize().root
    const getMs = performance.now() - t
    const ok = n === bytes && Buffer.from(root).equals(Buffer.from(cid.multihash.digest))

    t = performance.now()
    let m = 0
    for await (const piece of store.cat(cid)) m += piece.length
    const readMs = performance.now() - t

    await store.close()
    clearInterval(timer)
    peak = Math.max(peak, process.memoryUsage().rss)
    console.log(`value: ${mib} MiB (${bytes} bytes), store in ${dir}`)
    console.log(`generate only:        ${genMs.toFixed(0)} ms (${mb(bytes, genMs)} MB/s)`)
    console.log(`put (hash+write+fsync+commit): ${putMs.toFixed(0)} ms (${mb(bytes, putMs)} MB/s)`)
    console.log(`get + hash (verified): ${getMs.toFixed(0)} ms (${mb(bytes, getMs)} MB/s) ${ok ? 'hash matches' : 'HASH MISMATCH'}`)
    console.log(`get only (no hash):    ${readMs.toFixed(0)} ms (${mb(m, readMs)} MB/s)`)
    console.log(`RSS at start: ${(rssStart / MiB).toFixed(1)} MiB; peak RSS (50 ms samples): ${(peak / MiB).toFixed(1)} MiB; VmHWM: ${await vmHWM()}`)
    if (!ok) process.exitCode = 1
  } finally {
    clearInterval(timer)
    await rm(dir, { recursive: true, force: true })
  }
}

async function measureSmall (count: number, valueBytes: number, base: string): Promise<void> {
  const values = Array.from({ length: count }, (_, i) => {
    const v = new Uint8Array(valueBytes)
    new DataView(v.buffer).setUint32(0, i)
    for (let j = 4; j < valueBytes; j++) v[j] = (i * 31 + j) & 0xff
    return v
  })
  console.log(`${count} values of ${valueBytes} bytes`)
  const threshold = arg('threshold') !== undefined ? Number(arg('threshold')) : undefined
  for (const [label, inlineThreshold] of [['inline (lmdb)', threshold], ['files only', 0]] as const) {
    for (const mode of (['sequential', 'concurrent'] as const).filter(m => arg('mode') === undefined || arg('mode') === m)) {
      const dir = await mkdtemp(join(base, 'dstore-measure-'))
      try {
        const store = await createFsStore({ path: dir, inlineThreshold })
        let t = performance.now()
        const cids: CID[] = new Array(count)
        if (mode === 'sequential') {
          for (let i = 0; i < count; i++) cids[i] = await store.put(values[i])
        } else {
          const window = 1000
          for (let i = 0; i < count; i += window) {
            const batch = values.slice(i, i + window)
            const got = await Promise.all(batch.map(async v => await store.put(v)))
            for (let j = 0; j < got.length; j++) cids[i + j] = got[j]
          }
        }
        const putMs = performance.now() - t
        t = performance.now()
        let bytes = 0
        for (let i = 0; i < count; i++) {
          for await (const piece of store.cat(cids[i])) bytes += piece.length
        }
        const getMs = performance.now() - t
        await store.close()
        t = performance.now()
        const reopened = await createFsStore({ path: dir, inlineThreshold })
        const openMs = performance.now() - t
        await reopened.close()
        if (bytes !== count * valueBytes) throw new Error('short read')
        console.log(`${label.padEnd(14)} ${mode.padEnd(10)} put ${putMs.toFixed(0).padStart(6)} ms (${(putMs * 1000 / count).toFixed(1)} µs/put)  ` +
          `get ${getMs.toFixed(0).padStart(5)} ms (${(getMs * 1000 / count).toFixed(1)} µs/get)  reopen ${openMs.toFixed(0)} ms`)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }
  }
}

const base = arg('dir') ?? tmpdir()
const small = arg('small')
if (small !== undefined) {
  await measureSmall(Number(small), Number(arg('value-bytes') ?? 100), base)
} else {
  await measureBig(Number(arg('mib') ?? 1024), base)
}
