/**
 * The Helia roles of the side-by-side bench (contract: `../lib/roles.ts`):
 * `node dist/bench/roles/helia.js provider|requester`, JSON lines on stdin/stdout.
 *
 * Stack: helia 7 + @helia/unixfs (add/cat, Helia's default importer settings) + @helia/bitswap
 * (the only block broker), blockstore-fs and datastore-fs in the role's `dir`, libp2p with TCP +
 * noise + yamux + identify only. No bootstrap, no DHT, no mDNS, no delegated/HTTP routers, no
 * trustless-gateway broker: nothing here dials anything but the addresses it is given.
 *
 * `createHelia()` cannot be used for that: it always wraps the node in `withHTTP`, which adds the
 * trustless-gateway block broker (and, unless told otherwise, delegated routers and gateways),
 * and `withLibp2p` merges the given libp2p options into Helia's defaults (bootstrap, mDNS, DHT,
 * relay, UPnP, …: any top-level key left out keeps the default). So this builds the node the
 * way `createHelia` does, minus those parts: `withBitswap(withLibp2pLight(createHeliaLight()))`.
 *
 * `HELIA_BENCH_DEBOUNCE_0=1` sets bitswap's `sendWantlistDebounce` to 0 (default 10 ms): wants
 * go out on the next timer tick instead of 10 ms later.
 */
import '../../src/runtime-shim.js'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap, type BitswapOptions } from '@helia/bitswap'
import { withLibp2pLight, type HeliaWithLibp2p } from '@helia/libp2p'
import { unixfs, type UnixFS } from '@helia/unixfs'
import { identify, type Identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { FsBlockstore } from 'blockstore-fs'
import { FsDatastore } from 'datastore-fs'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'
import { data, dataPieces } from '../lib/data.js'
import { peakRssMiB, resetPeakRss } from '../lib/child.js'
import { serveCommands } from '../lib/serve.js'

type Role = 'provider' | 'requester'
type Node = HeliaWithLibp2p<{ identify: Identify }>

const role = process.argv[2] as Role
if (role !== 'provider' && role !== 'requester') {
  process.stderr.write('usage: node dist/bench/roles/helia.js provider|requester\n')
  process.exit(2)
}

/** The bitswap options: Helia's defaults, or the want-list debounce at 0. */
export const bitswapOptions: BitswapOptions = process.env.HELIA_BENCH_DEBOUNCE_0 === '1'
  ? { sendWantlistDebounce: 0 }
  : {}

let helia: Node | undefined
let fs: UnixFS | undefined
let firstStartMs: number | undefined

async function start (dir: string, listen: string[], keep = false): Promise<void> {
  // A fresh store per start (only our own subfolders of `dir` are removed), unless `keep`.
  const blocks = join(dir, 'helia-blocks')
  const datas = join(dir, 'helia-data')
  if (!keep) {
    await rm(blocks, { recursive: true, force: true })
    await rm(datas, { recursive: true, force: true })
  }
  const blockstore = new FsBlockstore(blocks)
  const datastore = new FsDatastore(datas)
  await blockstore.open()
  await datastore.open()

  const node = withBitswap(withLibp2pLight(createHeliaLight({ blockstore, datastore }), {
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: { identify: identify() }
  }), bitswapOptions)
  await node.start()
  helia = node as Node
  fs = unixfs(node)
}

/** Dials the provider and waits until identify has run (bitswap registers the peer then). */
async function connect (node: Node, addrs: string[]): Promise<void> {
  if (addrs.length === 0) throw new Error('requester start needs the provider addrs')
  const libp2p = node.libp2p
  const identified = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('provider not identified within 30 s')) }, 30_000)
    libp2p.addEventListener('peer:identify', function onIdentify () {
      clearTimeout(timer)
      libp2p.removeEventListener('peer:identify', onIdentify)
      resolve()
    })
  })
  let lastErr: unknown
  for (const a of addrs) {
    try {
      await libp2p.dial(multiaddr(a), { signal: AbortSignal.timeout(30_000) })
      await identified
      return
    } catch (err) { lastErr = err }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr))
}

function started (): { helia: Node, fs: UnixFS } {
  if (helia == null || fs == null) throw new Error('not started')
  return { helia, fs }
}

/**
 * Cats `cid` with Helia's defaults, counting bytes without keeping them. No abort signal: the
 * exporter adds a listener per block to it, and a hung get is the orchestrator's to time out.
 */
async function catCount (cid: string): Promise<{ ms: number, bytes: number, hit: boolean }> {
  const { helia, fs } = started()
  const c = CID.parse(cid)
  const t0 = performance.now()
  const hit = await helia.blockstore.has(c)
  let bytes = 0
  for await (const chunk of fs.cat(c)) bytes += chunk.byteLength
  return { ms: performance.now() - t0, bytes, hit }
}

async function handle (msg: any): Promise<unknown> {
  switch (msg.cmd) {
    case 'start': {
      if (helia != null) throw new Error('already started')
      if (msg.encryption != null && msg.encryption !== 'noise') throw new Error(`helia role speaks noise only, not ${String(msg.encryption)}`)
      if (typeof msg.dir !== 'string') throw new Error('start needs dir')
      if (role === 'provider') {
        await start(msg.dir, ['/ip4/127.0.0.1/tcp/0'], msg.keep === true)
      } else {
        await start(msg.dir, [])
        await connect(helia!, msg.addrs ?? [])
      }
      firstStartMs ??= performance.now()
      const answer: Record<string, unknown> = { startMs: firstStartMs }
      if (role === 'provider') answer.addrs = helia!.libp2p.getMultiaddrs().map(m => m.toString())
      return answer
    }
    case 'stop': {
      await helia?.stop()
      helia = undefined
      fs = undefined
      return { ok: true }
    }
    case 'rss':
      return { peakMiB: await peakRssMiB(), rssMiB: process.memoryUsage().rss / 2 ** 20 }
    case 'reset-rss':
      await resetPeakRss()
      return { ok: true }
  }

  if (role === 'provider') {
    switch (msg.cmd) {
      case 'put': {
        const { fs } = started()
        // Values of up to one piece go in whole (addBytes), bigger ones streamed piece by piece.
        // Up to 256 MiB the bytes are made before the clock starts, as the dstore role does, so
        // generating test data is not counted as put time; 1 GiB is generated while it streams.
        const whole = msg.size <= 1 << 20 ? data(msg.size, msg.seed) : undefined
        const pieces = whole === undefined && msg.size <= 256 * 2 ** 20 ? [...dataPieces(msg.size, msg.seed)] : undefined
        const t0 = performance.now()
        const cid = whole !== undefined
          ? await fs.addBytes(whole)
          : await fs.addByteStream(pieces ?? dataPieces(msg.size, msg.seed))
        return { cid: cid.toString(), ms: performance.now() - t0 }
      }
      case 'putMany': {
        const { fs } = started()
        const cids: string[] = []
        for (let i = 0; i < msg.count; i++) cids.push((await fs.addBytes(data(msg.size, msg.seed + i))).toString())
        return { cids }
      }
    }
  } else {
    switch (msg.cmd) {
      case 'put':
        return { error: 'not supported' }
      case 'get': {
        // `bytes` lets the orchestrator check the value's size (bitswap verified every block).
        return await catCount(msg.cid)
      }
      case 'getSeq': {
        const ms: number[] = []
        let bytes = 0
        let hits = 0
        for (const cid of msg.cids as string[]) {
          const r = await catCount(cid)
          ms.push(r.ms)
          bytes += r.bytes
          if (r.hit) hits++
        }
        return { ms, bytes, hits }
      }
      case 'getConcurrent': {
        const t0 = performance.now()
        const rs = await Promise.all((msg.cids as string[]).map(catCount))
        const totalMs = performance.now() - t0
        return { totalMs, bytes: rs.reduce((n, r) => n + r.bytes, 0), hits: rs.filter(r => r.hit).length }
      }
    }
  }
  return { error: `unknown command ${String(msg.cmd)} for the ${role}` }
}

await serveCommands(async (msg) => {
  if (msg.cmd === 'exit') {
    await helia?.stop()
    process.stdout.write(JSON.stringify({ ok: true }) + '\n')
    process.exit(0)
  }
  return await handle(msg)
})
