/**
 * The serving process of the network bench. Commands (JSON lines on stdin):
 * - `{ cmd: 'global', repo, encryption }`: start a dstore Global; answers its multiaddrs;
 * - `{ cmd: 'raw', encryption }`: start a bare libp2p node that, on `/bench/raw/1.0.0`, reads
 *   an 8-byte size and sends that many bytes in 1 MiB writes: the physical reference;
 * - `{ cmd: 'rss' }`, `{ cmd: 'reset-rss' }`: this process's peak RSS; `{ cmd: 'exit' }`.
 */
import '../src/runtime-shim.js'
import { createInterface } from 'node:readline'
import { createGlobal, type GlobalPeer } from '../src/index.js'
import { createNode, type DstoreNode, type Encryption } from '../src/peers/node.js'
import { waitForDrain } from '../src/protocol/framing.js'
import { peakRssMiB, resetPeakRss } from './lib/child.js'

export const RAW_PROTOCOL = '/bench/raw/1.0.0'

let global: GlobalPeer | undefined
let raw: DstoreNode | undefined

async function startRaw (encryption: Encryption[]): Promise<string[]> {
  raw = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], encryption })
  const block = new Uint8Array(1 << 20).fill(7)
  await raw.handle(RAW_PROTOCOL, async (stream) => {
    let size = -1
    for await (const chunk of stream) {
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
      size = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0))
      break
    }
    for (let sent = 0; sent < size; sent += block.length) {
      await waitForDrain(stream)
      stream.send(sent + block.length <= size ? block : block.subarray(0, size - sent))
    }
    await stream.close()
  }, { maxInboundStreams: 16 })
  return raw.getMultiaddrs().map(m => m.toString())
}

const rl = createInterface({ input: process.stdin })
for await (const line of rl) {
  const msg = JSON.parse(line)
  let reply: unknown
  try {
    switch (msg.cmd) {
      case 'global':
        global = await createGlobal({ repo: msg.repo, encryption: msg.encryption })
        reply = { multiaddrs: global.multiaddrs }
        break
      case 'raw':
        reply = { multiaddrs: await startRaw(msg.encryption) }
        break
      case 'rss':
        reply = { peakMiB: await peakRssMiB(), rssMiB: process.memoryUsage().rss / 2 ** 20 }
        break
      case 'reset-rss':
        await resetPeakRss()
        reply = { ok: true }
        break
      case 'exit':
        await global?.stop()
        await raw?.stop()
        process.stdout.write(JSON.stringify({ ok: true }) + '\n')
        process.exit(0)
      default:
        reply = { error: `unknown command ${String(msg.cmd)}` }
    }
  } catch (err) {
    reply = { error: (err as Error).message }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
}
