/**
 * Measures, in one process, the CPU a requester spends per GB between a blob stream's arriving
 * records and the verified bytes: the layers a cold `Local.get` runs per network record
 * (`FrameReader.raw`, `CreditGrantor.counting`, `decodeRange` with a signal and a `target`),
 * without TLS, yamux or the network.
 *
 *   node dist/scripts/measure-chain.js [--mib 128] [--runs 7] [--record 16384] [--fresh]
 *
 * The stream (whole value, 16 KiB groups) arrives in `--record`-byte pieces through an async
 * generator, as `incoming()` hands over libp2p's messages. Compare `--record 16384` (a TLS
 * record, what the network delivers) with `--record 1048576` to bound what the per-record
 * layers cost; `--fresh` decodes into a new target each run (page faults, as a cold get does)
 * instead of one reused buffer. Prints the median and min of the process's CPU s/GB (user +
 * system) over the runs.
 */
import type { Stream } from '@libp2p/interface'
import { decodeRange } from '../src/core/bao/decode.js'
import { encodeRangeSync } from '../src/core/bao/encode.js'
import { TreeHasher } from '../src/core/tree.js'
import { CreditGrantor } from '../src/protocol/flow.js'
import { FrameReader } from '../src/protocol/framing.js'

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}
const size = Number(arg('mib', '128')) * 2 ** 20
const runs = Number(arg('runs', '7'))
const record = Number(arg('record', '16384'))
const fresh = process.argv.includes('--fresh')

const data = new Uint8Array(size)
for (let i = 0; i < size; i += 4096) data[i] = (i * 7) & 0xff
const { root, outboard } = new TreeHasher({ groupLog: 4, outboard: true }).update(data).finalize()
if (outboard == null) throw new Error('no outboard')
const whole = { offset: 0, length: Infinity }
const encoded = encodeRangeSync(data, outboard, whole, 4)

// The grantor only listens for 'message' and sends CREDIT frames: a stand-in stream that drops them.
const stream = Object.assign(new EventTarget(), { send: () => true, writableNeedsDrain: false }) as unknown as Stream

async function * records (): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < encoded.length; o += record) yield encoded.subarray(o, o + record)
}

const reused = new Uint8Array(size)
const perGB: number[] = []
for (let run = 0; run < runs; run++) {
  const target = fresh ? new Uint8Array(size) : reused
  const cpu0 = process.cpuUsage()
  const frames = new FrameReader(records(), 1 << 20, () => {})
  const raw = new CreditGrantor(stream, 0, Number.MAX_SAFE_INTEGER).counting(frames.raw())
  const controller = new AbortController()
  let got = 0
  for await (const part of decodeRange(raw, root, whole, 4, { target, signal: controller.signal })) got += part.length
  const cpu = process.cpuUsage(cpu0)
  if (got !== size) throw new Error(`decoded ${got} of ${size} bytes`)
  perGB.push((cpu.user + cpu.system) / 1e6 / (size / 1e9))
}
perGB.sort((a, b) => a - b)
console.log(`${size / 2 ** 20} MiB in ${record}-byte records${fresh ? ', fresh target' : ''}: CPU s/GB median ${perGB[Math.floor(runs / 2)].toFixed(3)}, min ${perGB[0].toFixed(3)} (${runs} runs: ${perGB.map(x => x.toFixed(2)).join(' ')})`)
