/**
 * Physical references for the comparison: what the machine moves between two processes on
 * 127.0.0.1 with no store, no hashing and no protocol of our own.
 *
 *   node dist/bench/roles/raw.js server|client
 *
 * Kinds: `noise`, `plaintext`, `tls` (a bare libp2p node: TCP + that encrypter + yamux, one
 * stream per transfer) and `tcp` (a `node:net` socket, one connection per transfer).
 * The client asks for N bytes with an 8-byte big-endian size; the server answers with N bytes
 * written in 1 MiB pieces with backpressure, then closes.
 *
 * Commands (JSON lines, like `../lib/roles.ts`):
 * - server: `{ cmd: 'start', kind }` → `{ addrs, startMs }` (replaces a running server);
 * - client: `{ cmd: 'start', kind, addrs }` → `{ startMs }` (libp2p: dialled and connected);
 *   `{ cmd: 'get', size }` → `{ ms, bytes }` (stream opened, request sent, last byte received);
 * - both: `stop`, `rss`, `reset-rss`, `exit`.
 */
import '../../src/runtime-shim.js'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tls } from '@libp2p/tls'
import { plaintext } from '@libp2p/plaintext'
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { waitForDrain } from '../../src/protocol/framing.js'
import { serveCommands } from '../lib/serve.js'
import { peakRssMiB, resetPeakRss } from '../lib/child.js'

export type RawKind = 'noise' | 'plaintext' | 'tls' | 'tcp'
export const RAW_KINDS: RawKind[] = ['noise', 'plaintext', 'tls', 'tcp']
const PROTOCOL = '/bench/raw/1.0.0'
const PIECE = 1 << 20

const role = process.argv[2]
if (role !== 'server' && role !== 'client') {
  process.stderr.write('usage: raw.js server|client\n')
  process.exit(2)
}

let node: Libp2p | undefined
let server: Server | undefined
let conn: Connection | undefined
let tcpTarget: { host: string, port: number } | undefined
let startMs: number | undefined

async function createRawNode (kind: RawKind, listen: string[]): Promise<Libp2p> {
  const encrypter = kind === 'noise' ? noise() : kind === 'tls' ? tls() : plaintext()
  return await createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [encrypter],
    streamMuxers: [yamux()]
  })
}

function sizeOf (bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0))
}

async function startServer (kind: RawKind): Promise<string[]> {
  const block = new Uint8Array(PIECE).fill(7)
  if (kind === 'tcp') {
    server = createServer(sock => { void serveSocket(sock, block) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const addr = server.address()
    if (addr == null || typeof addr === 'string') throw new Error('no tcp address')
    return [`/ip4/127.0.0.1/tcp/${addr.port}`]
  }
  node = await createRawNode(kind, ['/ip4/127.0.0.1/tcp/0'])
  await node.handle(PROTOCOL, async (stream) => {
    let size = -1
    for await (const chunk of stream) {
      size = sizeOf(chunk instanceof Uint8Array ? chunk : chunk.subarray())
      break
    }
    for (let sent = 0; sent < size; sent += PIECE) {
      await waitForDrain(stream)
      stream.send(sent + PIECE <= size ? block : block.subarray(0, size - sent))
    }
    await stream.close()
  }, { maxInboundStreams: 16 })
  return node.getMultiaddrs().map(m => m.toString())
}

async function serveSocket (sock: Socket, block: Uint8Array): Promise<void> {
  sock.on('error', () => {})
  const [first] = await once(sock, 'data') as [Buffer]
  const size = sizeOf(first)
  for (let sent = 0; sent < size; sent += PIECE) {
    if (!sock.write(sent + PIECE <= size ? block : block.subarray(0, size - sent))) await once(sock, 'drain')
  }
  sock.end()
}

function request (size: number): Uint8Array {
  const req = new Uint8Array(8)
  new DataView(req.buffer).setBigUint64(0, BigInt(size))
  return req
}

async function clientGet (size: number): Promise<{ ms: number, bytes: number }> {
  let bytes = 0
  const t0 = performance.now()
  if (tcpTarget != null) {
    const sock = connect(tcpTarget.port, tcpTarget.host)
    sock.setNoDelay(true)
    sock.write(request(size))
    for await (const chunk of sock) bytes += (chunk as Buffer).length
  } else {
    if (conn == null) throw new Error('not started')
    const stream = await conn.newStream(PROTOCOL)
    stream.send(request(size))
    for await (const chunk of stream) bytes += chunk.byteLength
    await stream.close()
  }
  const ms = performance.now() - t0
  if (bytes !== size) throw new Error(`raw transfer delivered ${bytes} of ${size} bytes`)
  return { ms, bytes }
}

async function stop (): Promise<void> {
  await conn?.close().catch(() => {})
  await node?.stop()
  if (server != null) { server.close(); server = undefined }
  node = undefined
  conn = undefined
  tcpTarget = undefined
}

async function handle (msg: any): Promise<unknown> {
  switch (msg.cmd) {
    case 'rss':
      return { peakMiB: await peakRssMiB(), rssMiB: process.memoryUsage().rss / 2 ** 20 }
    case 'reset-rss':
      await resetPeakRss()
      return { ok: true }
    case 'stop':
      await stop()
      return { ok: true }
    case 'exit':
      await stop()
      process.stdout.write(JSON.stringify({ ok: true }) + '\n')
      process.exit(0)
    case 'start': {
      await stop()
      const kind = msg.kind as RawKind
      if (!RAW_KINDS.includes(kind)) throw new Error(`unknown kind ${String(kind)}`)
      if (role === 'server') {
        const addrs = await startServer(kind)
        startMs ??= performance.now()
        return { addrs, startMs }
      }
      if (kind === 'tcp') {
        const m = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(msg.addrs[0])
        if (m == null) throw new Error(`not a tcp address: ${String(msg.addrs[0])}`)
        tcpTarget = { host: m[1], port: Number(m[2]) }
      } else {
        node = await createRawNode(kind, [])
        conn = await node.dial(multiaddr(msg.addrs[0]))
      }
      startMs ??= performance.now()
      return { startMs }
    }
    case 'get':
      if (role !== 'client') break
      return await clientGet(msg.size)
  }
  throw new Error(`unknown command ${String(msg.cmd)} for a raw ${role}`)
}

await serveCommands(handle)
