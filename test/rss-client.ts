/**
 * A child process for test-memory: one Local transfer with an AbortSignal, as the CLI always
 * passes one, then its peak RSS (VmHWM) before and after the transfer as one JSON line. Run as
 * `node rss-client.js MULTIADDR put SIZE` (prints the CID too) or `... cat CID`.
 */
import '../src/runtime-shim.js'
import { readFileSync } from 'node:fs'
import { createLocal } from '../src/index.js'

const [addr, mode, arg] = process.argv.slice(2)
const MiB = 1024 * 1024

/** Deterministic pseudo-random pieces: 1 MiB each, every one a fresh buffer (as a file read gives). */
async function * pieces (size: number): AsyncGenerator<Uint8Array> {
  let x = 0x2545f491
  for (let done = 0; done < size; done += MiB) {
    const piece = new Uint8Array(Math.min(MiB, size - done))
    const words = new Uint32Array(piece.buffer, 0, piece.length >>> 2)
    for (let i = 0; i < words.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x >>> 0 }
    yield piece
  }
}

/** A figure of /proc/self/status in MiB: VmHWM is the peak RSS so far, VmRSS the RSS now. */
function statusMiB (field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))
  return m == null ? -1 : Number(m[1]) / 1024
}

const local = await createLocal({ global: [addr], cacheSize: 16 * MiB })
await local.ready()
// What the process holds before the transfer (Node, libp2p, a connection): the peak is compared
// with it, since a Node release's own footprint differs (Node 24 starts some 40 MiB higher).
const baselineMiB = statusMiB('VmHWM')
const controller = new AbortController()
const { signal } = controller
let result: Record<string, unknown>
if (mode === 'put') {
  const cid = await local.put(pieces(Number(arg)), { signal, onProgress: () => {} })
  result = { cid: cid.toString() }
} else {
  let bytes = 0
  for await (const piece of local.cat(arg, { signal, onProgress: () => {} })) bytes += piece.length
  result = { bytes }
}
await local.stop()
process.stdout.write(JSON.stringify({ ...result, baselineMiB, peakRssMiB: statusMiB('VmHWM') }) + '\n')
