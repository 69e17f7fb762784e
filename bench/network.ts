/**
 * Network bench (two processes on 127.0.0.1): a Global (or a raw-stream server) runs in a
 * child process, the Local is this process. Not part of the default `npm run bench` any more
 * (`bench/compare.ts` measures all of this and more, every role in its own process): run it
 * with `npm run bench -- --only network`.
 *
 * Measures, for each encryption: GET throughput of a 64 MiB value (cold: a fresh Local with
 * an empty cache each time) beside a raw libp2p stream moving the same bytes with the same
 * encryption; latency of 1000 cold and 1000 warm 100-byte gets; peak RSS of both processes
 * while a 1 GiB value is streamed with `cat`.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocal, type LocalPeer } from '../src/index.js'
import { createNode, type Encryption } from '../src/peers/node.js'
import { Child, median, percentile, peakRssMiB, resetPeakRss } from './lib/child.js'
import { RAW_PROTOCOL } from './net-peer.js'
import { ROOT } from './lib/report.js'

const MiB = 1 << 20

export interface Figure { median: number, min: number, max: number, reps: number }

function figure (xs: number[]): Figure {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), reps: xs.length }
}

function random (size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  const w = new Uint32Array(out.buffer, 0, size >>> 2)
  let x = seed | 1
  for (let i = 0; i < w.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; w[i] = x }
  return out
}

async function * randomStream (size: number, seed: number): AsyncGenerator<Uint8Array> {
  for (let done = 0; done < size; done += MiB) yield random(Math.min(MiB, size - done), seed + done)
}

/** Receives `size` bytes from the raw-stream server: the ceiling for any protocol on this path. */
async function rawReceive (addr: string, size: number, encryption: Encryption[]): Promise<number> {
  const node = await createNode({ encryption })
  try {
    const { multiaddr } = await import('@multiformats/multiaddr')
    const conn = await node.dial(multiaddr(addr))
    const stream = await conn.newStream(RAW_PROTOCOL)
    const req = new Uint8Array(8)
    new DataView(req.buffer).setBigUint64(0, BigInt(size))
    const t0 = performance.now()
    stream.send(req)
    let got = 0
    for await (const chunk of stream) got += chunk.byteLength
    const ms = performance.now() - t0
    if (got !== size) throw new Error(`raw stream delivered ${got} of ${size} bytes`)
    await stream.close()
    return size / 1e6 / (ms / 1000)
  } finally {
    await node.stop()
  }
}

async function freshLocal (addrs: string[], encryption: Encryption[], cacheSize?: number): Promise<LocalPeer> {
  const local = await createLocal({ global: addrs, encryption, cacheSize })
  await local.ready()
  return local
}

export interface NetworkBenchResult {
  [encryption: string]: {
    raw64: Figure
    get64: Figure
    cat64: Figure
    put64: Figure
    ratioGetToRaw: number
  } | unknown
  latency: { coldMedianMs: number, coldP99Ms: number, warmMedianUs: number, warmP99Us: number, n: number }
  rss1GiB: { localPeakMiB: number, globalPeakMiB: number, catMBps: number, putMBps: number }
}

export async function runNetworkBench (opts: { quick?: boolean } = {}): Promise<NetworkBenchResult> {
  const reps = opts.quick === true ? 3 : 7
  const result: Record<string, unknown> = {}
  const work = await mkdtemp(join(tmpdir(), 'dstore-bench-'))
  try {
    for (const enc of ['noise', 'tls'] as Encryption[]) {
      const encryption: Encryption[] = [enc]
      const rawChild = new Child('net-peer.js')
      const global = new Child('net-peer.js')
      try {
        const { multiaddrs: rawAddrs } = await rawChild.call({ cmd: 'raw', encryption })
        const { multiaddrs } = await global.call({ cmd: 'global', repo: join(work, `g-${enc}`), encryption })
        const value = random(64 * MiB, 42)
        const raw: number[] = []
        const gets: number[] = []
        const cats: number[] = []
        const puts: number[] = []
        for (let r = 0; r < reps; r++) {
          // Fresh bytes each round so every put really stores and every get is cold.
          value[r] ^= 0xff
          const writer = await freshLocal(multiaddrs, encryption)
          let t0 = performance.now()
          const cid = await writer.put(value)
          puts.push(64 * MiB / 1e6 / ((performance.now() - t0) / 1000))
          await writer.stop()
          raw.push(await rawReceive(rawAddrs[0], 64 * MiB, encryption))
          const reader = await freshLocal(multiaddrs, encryption)
          t0 = performance.now()
          const got = await reader.get(cid)
          gets.push(64 * MiB / 1e6 / ((performance.now() - t0) / 1000))
          if (got.length !== value.length) throw new Error('short get')
          await reader.stop()
          const streamer = await freshLocal(multiaddrs, encryption)
          t0 = performance.now()
          let n = 0
          for await (const part of streamer.cat(cid)) n += part.length
          cats.push(64 * MiB / 1e6 / ((performance.now() - t0) / 1000))
          if (n !== value.length) throw new Error('short cat')
          await streamer.stop()
        }
        result[enc] = { raw64: figure(raw), get64: figure(gets), cat64: figure(cats), put64: figure(puts), ratioGetToRaw: median(gets) / median(raw) }
      } finally {
        await rawChild.stop()
        await global.stop()
      }
    }

    // Latency and memory with the default encryption order (TLS first).
    const global = new Child('net-peer.js')
    try {
      const { multiaddrs } = await global.call({ cmd: 'global', repo: join(work, 'g-latency'), encryption: ['tls', 'noise'] })
      const n = 1000
      const writer = await freshLocal(multiaddrs, ['tls', 'noise'])
      const cids = []
      for (let i = 0; i < n; i++) cids.push(await writer.put(random(100, 1000 + i)))
      await writer.stop()
      const local = await freshLocal(multiaddrs, ['tls', 'noise'])
      const cold: number[] = []
      const warm: number[] = []
      for (const cid of cids) {
        const t0 = performance.now()
        await local.get(cid)
        cold.push(performance.now() - t0)
      }
      for (const cid of cids) {
        const t0 = performance.now()
        await local.get(cid)
        warm.push((performance.now() - t0) * 1000)
      }
      if (local.stats().hits < n) throw new Error('warm gets were not cache hits')
      await local.stop()
      result.latency = { coldMedianMs: median(cold), coldP99Ms: percentile(cold, 99), warmMedianUs: median(warm), warmP99Us: percentile(warm, 99), n }

      // 1 GiB: streamed in with put, streamed out with cat; peak RSS of both processes during the cat.
      const size = opts.quick === true ? 256 * MiB : 1024 * MiB
      const putter = await freshLocal(multiaddrs, ['tls', 'noise'])
      let t0 = performance.now()
      const big = await putter.put(randomStream(size, 7))
      const putMBps = size / 1e6 / ((performance.now() - t0) / 1000)
      await putter.stop()
      const reader = await freshLocal(multiaddrs, ['tls', 'noise'])
      await global.call({ cmd: 'reset-rss' })
      await resetPeakRss()
      t0 = performance.now()
      let got = 0
      for await (const part of reader.cat(big)) got += part.length
      const catMBps = size / 1e6 / ((performance.now() - t0) / 1000)
      if (got !== size) throw new Error('short 1 GiB cat')
      const localPeakMiB = await peakRssMiB()
      const { peakMiB: globalPeakMiB } = await global.call({ cmd: 'rss' })
      await reader.stop()
      result.rss1GiB = { sizeMiB: size / MiB, localPeakMiB, globalPeakMiB, catMBps, putMBps }
    } finally {
      await global.stop()
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  // bench/results/ of the repository (this file runs from dist/bench/).
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
  await writeFile(join(ROOT, 'bench', 'results', 'network.json'), JSON.stringify(result, null, 2) + '\n')
  printTable(result)
  return result as unknown as NetworkBenchResult
}

function fmt (f: Figure): string {
  return `${f.median.toFixed(0)} (${f.min.toFixed(0)}–${f.max.toFixed(0)})`
}

function printTable (r: Record<string, any>): void {
  console.log('\nNetwork (two processes, 127.0.0.1), MB/s median (min–max):')
  console.log('| encryption | raw libp2p stream | dstore get 64 MiB (cold) | dstore cat 64 MiB (cold) | dstore put 64 MiB | get/raw |')
  console.log('|---|---|---|---|---|---|')
  for (const enc of ['noise', 'tls']) {
    const e = r[enc]
    console.log(`| ${enc} | ${fmt(e.raw64)} | ${fmt(e.get64)} | ${fmt(e.cat64)} | ${fmt(e.put64)} | ${(e.ratioGetToRaw * 100).toFixed(0)}% |`)
  }
  const l = r.latency
  console.log(`\n100-byte gets (${l.n}): cold median ${l.coldMedianMs.toFixed(3)} ms, p99 ${l.coldP99Ms.toFixed(3)} ms; warm median ${l.warmMedianUs.toFixed(1)} µs, p99 ${l.warmP99Us.toFixed(1)} µs`)
  const m = r.rss1GiB
  console.log(`${m.sizeMiB} MiB: put ${m.putMBps.toFixed(0)} MB/s, cat ${m.catMBps.toFixed(0)} MB/s; peak RSS Local ${m.localPeakMiB.toFixed(0)} MiB, Global ${m.globalPeakMiB.toFixed(0)} MiB`)
}
