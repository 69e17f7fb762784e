/**
 * Profiles one transfer between two bench role processes (a Global provider and a Local
 * requester, `bench/roles/dstore.ts`; or the raw reference's server and client), profiling each one's main thread over the transfer alone
 * (the roles' `profile-start`/`profile-stop`, `bench/lib/serve.ts`), and prints both sides' CPU
 * seconds per GB and the top self-time functions of each profile.
 *
 *   node dist/scripts/profile-transfer.js [--op get|get-into|put|cat|raw] [--mib 256] [--out DIR] [--pinned] [--no-profile]
 *
 * `get` is a cold `Local.get`; `get-into` the same get into a buffer of the caller's (`into`),
 * allocated and touched before the measured window, as one reused get after get would be; `cat` is a cold streamed `Local.cat`; `put` is `Local.put` over
 * the network; `raw` is the bench's raw reference (`bench/roles/raw.ts`: a bare libp2p node, TLS
 * and yamux, sending N bytes in 1 MiB writes), profiled the same way, to compare against. `--pinned` runs the provider on core 0 and the requester on core 1 (taskset).
 * The profiles (`*.cpuprofile`, open in Chrome DevTools) stay in DIR. `--no-profile` only
 * measures: the V8 profiler's own thread costs about 0.7 s/GB, which its CPU figures include.
 */
import '../src/runtime-shim.js'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { printTopSelf } from '../bench/lib/profile-top.js'
import { Child } from '../bench/lib/child.js'

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}
const op = arg('op', 'get')
const size = Number(arg('mib', '256')) * 2 ** 20
const out = arg('out', '')  !== '' ? arg('out', '') : await mkdtemp(join(tmpdir(), 'dstore-prof-'))
await mkdir(out, { recursive: true })
const pinned = process.argv.includes('--pinned')
const profile = !process.argv.includes('--no-profile')

const work = await mkdtemp(join(tmpdir(), 'dstore-prof-work-'))
const raw = op === 'raw'
const provider = new Child(raw ? 'roles/raw.js' : 'roles/dstore.js', [raw ? 'server' : 'provider'], {}, pinned ? { cpu: 0 } : {})
const requester = new Child(raw ? 'roles/raw.js' : 'roles/dstore.js', [raw ? 'client' : 'requester'], {}, pinned ? { cpu: 1 } : {})
const cpu = async (c: Child): Promise<number> => (await c.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, 30_000)).cpuMs
try {
  // The raw roles take a `kind`; dstore's a store folder (and `stream` for a Local with no cache).
  const { addrs } = await provider.callWithin<{ addrs: string[] }>(raw ? { cmd: 'start', kind: 'tls' } : { cmd: 'start', dir: join(work, 'p') }, 60_000)
  await requester.callWithin(raw ? { cmd: 'start', kind: 'tls', addrs } : { cmd: 'start', dir: join(work, 'r'), addrs, ...(op === 'cat' ? { stream: true } : {}) }, 60_000)
  let cid = ''
  if (op !== 'put' && !raw) cid = (await provider.callWithin<{ cid: string }>({ cmd: 'put', size, seed: 1 }, 600_000)).cid
  // The put's value is generated before the CPU window, which then holds the put alone.
  if (op === 'put') await requester.callWithin({ cmd: 'prepare', size, seed: 2 }, 600_000)
  // `get-into`: a cold get into the caller's buffer, allocated and touched before the window.
  if (op === 'get-into') await requester.callWithin({ cmd: 'into', size }, 600_000)
  if (profile) for (const c of [provider, requester]) await c.callWithin({ cmd: 'profile-start' }, 30_000)
  const [s0, r0] = [await cpu(provider), await cpu(requester)]
  const res = op === 'put'
    ? await requester.callWithin<{ ms: number }>({ cmd: 'putPrepared' }, 600_000)
    : await requester.callWithin<{ ms: number }>(raw ? { cmd: 'get', size } : { cmd: op === 'get-into' ? 'getInto' : 'get', cid, size }, 600_000)
  const [s1, r1] = [await cpu(provider), await cpu(requester)]
  if (profile) {
    await provider.callWithin({ cmd: 'profile-stop', path: join(out, 'provider.cpuprofile') }, 60_000)
    await requester.callWithin({ cmd: 'profile-stop', path: join(out, 'requester.cpuprofile') }, 60_000)
  }
  const gb = size / 1e9
  console.log(`${op} ${size / 2 ** 20} MiB${pinned ? ' pinned' : ''}: ${res.ms.toFixed(0)} ms, ${(size / 1e6 / (res.ms / 1000)).toFixed(0)} MB/s; CPU s/GB provider ${((s1 - s0) / 1000 / gb).toFixed(2)}, requester ${((r1 - r0) / 1000 / gb).toFixed(2)}`)
} finally {
  for (const c of [requester, provider]) {
    await c.stop()
  }
  await rm(work, { recursive: true, force: true })
}

for (const tag of profile ? ['provider', 'requester'] : []) {
  {
    await printTopSelf(join(out, `${tag}.cpuprofile`), `${tag} main thread`, 25)
  }
}
