/**
 * Where the swarm's 4 MiB cut-over (SWARM_MIN_SIZE) pays, on loopback: for each size, the time
 * of a cold get straight from Global (a Local with the swarm off) against a multi-source
 * download of the same value from one other Local that holds it (swarm-fetch.ts, called
 * directly so that sizes below the cut-over can be measured too), and, from 4 MiB, a plain
 * `get` of a swarm-on Local (Global answers with sources). Global's bytes out during each are
 * printed too: the point of the swarm is that they drop to about nothing.
 *
 *   node dist/scripts/measure-swarm-cutover.js [--sizes 1,4,16,32] [--runs 5]
 *
 * Everything runs in this process (TLS, yamux on 127.0.0.1): no link is the bottleneck, so this
 * measures the swarm's fixed costs (dial, HAVE, a round trip per piece), not its gain in a
 * network (bench/, `npm run bench -- --only swarm`).
 */
import '../src/runtime-shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { createGlobal, createLocal, type LocalPeer } from '../src/index.js'
import { PartialValue } from '../src/core/swarm/partial.js'
import { SWARM_MIN_SIZE } from '../src/protocol/constants.js'
import type { GlobalRoute } from '../src/peers/local/globals.js'
import { swarmDownload } from '../src/peers/local/swarm-fetch.js'
import { SwarmCounters } from '../src/peers/local/swarm-stats.js'

/** CPU time of this process (every peer of the measurement) since `start`, in ms. */
function cpuMs (start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start)
  return (d.user + d.system) / 1000
}

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}

const sizes = arg('sizes', '1,4,16,32').split(',').map(Number)
const runs = Number(arg('runs', '5'))
const LISTEN = ['/ip4/127.0.0.1/tcp/0']

function bytes (n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = (seed * 2 + 1) | 0
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) | 0; out[i] = x >>> 24 }
  return out
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]

const repo = await mkdtemp(join(tmpdir(), 'dstore-cutover-'))
const global = await createGlobal({ repo, sync: false })
const holder = await createLocal({ global: global.multiaddrs, listen: LISTEN, cacheSize: 1024 << 20 })
await holder.ready()
console.log('size MiB | direct from Global ms (CPU ms, both sides) | swarm from 1 holder ms (CPU ms) (Global bytes) | get, swarm on ms (Global bytes)')
try {
  for (const mib of sizes) {
    const direct: number[] = []
    const swarm: number[] = []
    const swarmGlobal: number[] = []
    const get: number[] = []
    const directCpu: number[] = []
    const swarmCpu: number[] = []
    const getGlobal: number[] = []
    for (let r = 0; r < runs; r++) {
      const data = bytes(mib << 20, mib * 100 + r)
      const cid = await global.put(data)
      await holder.get(cid)
      await new Promise(resolve => setTimeout(resolve, 200)) // the holder's announcement reaches Global

      const off = await createLocal({ global: global.multiaddrs, swarm: false, cacheSize: 1024 << 20 })
      await off.ready()
      let t0 = performance.now()
      let c0 = process.cpuUsage()
      await off.get(cid)
      direct.push(performance.now() - t0)
      directCpu.push(cpuMs(c0))
      await off.stop()

      const on = await createLocal({ global: global.multiaddrs, listen: LISTEN, cacheSize: 1024 << 20 })
      await on.ready()
      const internals = on as unknown as { connection: GlobalRoute }
      const partial = new PartialValue(data.length)
      const before = global.stats().bytesOut
      t0 = performance.now()
      c0 = process.cpuUsage()
      await swarmDownload({ node: on.node, global: internals.connection, counters: new SwarmCounters(), onPeerBytes: () => {} }, cid, partial,
        [{ peerId: holder.peerId, complete: true, addrs: holder.swarmAddrs.map(a => multiaddr(a).decapsulateCode(421)) }],
        { signal: new AbortController().signal, evicted: () => false })
      swarm.push(performance.now() - t0)
      swarmCpu.push(cpuMs(c0))
      swarmGlobal.push(global.stats().bytesOut - before)
      if (!Buffer.from(partial.data).equals(data)) throw new Error('the swarm download differs')

      if (data.length >= SWARM_MIN_SIZE) {
        const fresh: LocalPeer = await createLocal({ global: global.multiaddrs, listen: LISTEN, cacheSize: 1024 << 20 })
        await fresh.ready()
        const b = global.stats().bytesOut
        t0 = performance.now()
        await fresh.get(cid)
        get.push(performance.now() - t0)
        getGlobal.push(global.stats().bytesOut - b)
        await fresh.stop()
      }
      await on.stop()
      await holder.cache.delete(cid)
    }
    const g = get.length > 0 ? `${median(get).toFixed(0)} (${median(getGlobal)})` : '- (below the cut-over: streamed from Global)'
    console.log(`${mib} | ${median(direct).toFixed(0)} (${median(directCpu).toFixed(0)}) | ${median(swarm).toFixed(0)} (${median(swarmCpu).toFixed(0)}) (${median(swarmGlobal)}) | ${g}`)
  }
} finally {
  await holder.stop()
  await global.stop()
  await rm(repo, { recursive: true, force: true })
}
