/**
 * Measures `decodeRange` throughput: the verification core of every transfer.
 *
 *   node dist/scripts/measure-decode.js [--mib 256] [--runs 3] [--piece 65536] [--impl a.js,b.js]
 *
 * Encodes one value of `--mib` MiB once (whole-value stream, 16 KiB groups), then times decoding
 * it from an in-memory async source in `--piece`-byte pieces, plain (the decoder's own buffers)
 * and with `target` (straight into a buffer of the value's size). Prints MB/s (10^6 bytes of
 * value per second) per run, then the median and min–max per implementation and mode, by wall
 * time and by the process's CPU time (user + system: less sensitive to other processes taking
 * the cores, though GC threads count too).
 *
 * `--impl` takes paths (relative to the working directory) of compiled modules that export
 * `decodeRange`, to compare decoders on the same machine: the runs are interleaved (run 1 of
 * every implementation and mode, then run 2, …) so that load from other processes spreads
 * over all of them rather than landing on one, and every other run goes in reverse order. Default: this checkout's decoder.
 */
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { encodeRangeSync } from '../src/core/bao/encode.js'
import type { decodeRange as DecodeRange } from '../src/core/bao/decode.js'
import { TreeHasher } from '../src/core/tree.js'

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const MiB = 1024 * 1024
const mib = Number(arg('mib') ?? 256)
const runs = Number(arg('runs') ?? 3)
const pieceLen = Number(arg('piece') ?? 64 * 1024)
const defaultImpl = fileURLToPath(new URL('../src/core/bao/decode.js', import.meta.url))
const impls = (arg('impl') ?? defaultImpl).split(',').map(p => resolve(p))
const size = mib * MiB

/** Deterministic pseudo-random bytes (xorshift32). */
function pseudoRandom (len: number): Uint8Array {
  const out = new Uint8Array(len)
  const words = new Uint32Array(out.buffer, 0, Math.floor(len / 4))
  let x = 0x9e3779b9 | 0
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    words[i] = x
  }
  return out
}

/** The stream in `pieceLen` views, through an async generator as a network source would be. */
async function * source (encoded: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < encoded.length; off += pieceLen) yield encoded.subarray(off, off + pieceLen)
}

const mbs = (n: number, ms: number): number => n / 1e3 / ms
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

const data = pseudoRandom(size)
const hasher = new TreeHasher({ groupLog: 4, outboard: true })
const { root, outboard } = hasher.update(data).finalize()
if (outboard == null) throw new Error('no outboard')
const whole = { offset: 0, length: Infinity }
const encoded = encodeRangeSync(data, outboard, whole, 4)
const target = new Uint8Array(size)

const decoders: Array<{ name: string, decodeRange: typeof DecodeRange }> = []
for (const path of impls) {
  const mod = await import(pathToFileURL(path).href) as { decodeRange: typeof DecodeRange }
  decoders.push({ name: path, decodeRange: mod.decodeRange })
}

const modes = ['plain', 'target'] as const
const results = new Map<string, number[]>()
const cpuResults = new Map<string, number[]>()
console.log(`decoding ${mib} MiB (stream ${encoded.length} bytes) in ${pieceLen}-byte pieces, ${runs} runs, node ${process.version}`)
for (let run = 1; run <= runs; run++) {
  // Alternate the order too, so that neither implementation always runs first (JIT, GC, caches).
  for (const d of run % 2 === 1 ? decoders : [...decoders].reverse()) {
    for (const mode of modes) {
      target.fill(0)
      const cpu0 = process.cpuUsage()
      const started = performance.now()
      let total = 0
      for await (const p of d.decodeRange(source(encoded), root, whole, 4, mode === 'target' ? { target } : {})) total += p.length
      const ms = performance.now() - started
      const cpu = process.cpuUsage(cpu0)
      const cpuMs = (cpu.user + cpu.system) / 1e3
      if (total !== size) throw new Error(`${d.name}: decoded ${total} of ${size} bytes`)
      if (mode === 'target' && Buffer.compare(target, data) !== 0) throw new Error(`${d.name}: target holds the wrong bytes`)
      const key = `${d.name} ${mode}`
      results.set(key, [...(results.get(key) ?? []), mbs(size, ms)])
      cpuResults.set(key, [...(cpuResults.get(key) ?? []), mbs(size, cpuMs)])
      console.log(`run ${run} ${key}: ${mbs(size, ms).toFixed(0)} MB/s (${ms.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU)`)
    }
  }
}
const summary = (xs: number[]): string => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`
console.log('--- median (min–max) MB/s, by wall time | by this process\'s CPU time')
for (const [key, xs] of results) console.log(`${key}: ${summary(xs)} | ${summary(cpuResults.get(key) ?? [])}`)
