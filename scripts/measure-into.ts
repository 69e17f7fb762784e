/**
 * A/B of a cold 256 MiB `Local.get` against the same get `into` a buffer of the caller's
 * (touched once, reused get after get), between two bench role processes (a Global provider
 * and one Local requester, `bench/roles/dstore.ts`). Each get is of a value the Local has not
 * cached; the two kinds alternate (their order reversed in odd rounds), so drift of the machine
 * falls on both. Prints each get, then the medians of each kind: MB/s and both sides' CPU s/GB.
 *
 *   node dist/scripts/measure-into.js [--rounds 3] [--mib 256] [--pinned]
 */
import '../src/runtime-shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Child, median } from '../bench/lib/child.js'

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}
const rounds = Number(arg('rounds', '3'))
const size = Number(arg('mib', '256')) * 2 ** 20
const pinned = process.argv.includes('--pinned')
if (!Number.isSafeInteger(rounds) || rounds < 1 || !Number.isSafeInteger(size) || size < 1) {
  console.error('measure-into: --rounds and --mib take positive integers')
  process.exit(2)
}

const work = await mkdtemp(join(tmpdir(), 'dstore-into-'))
const provider = new Child('roles/dstore.js', ['provider'], {}, pinned ? { cpu: 0 } : {})
const requester = new Child('roles/dstore.js', ['requester'], {}, pinned ? { cpu: 1 } : {})
const cpu = async (c: Child): Promise<number> => (await c.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, 30_000)).cpuMs
type Kind = 'get' | 'into'
const results: Record<Kind, Array<{ mbps: number, provider: number, requester: number }>> = { get: [], into: [] }
try {
  const { addrs } = await provider.callWithin<{ addrs: string[] }>({ cmd: 'start', dir: join(work, 'p') }, 60_000)
  await requester.callWithin({ cmd: 'start', dir: join(work, 'r'), addrs }, 60_000)
  await requester.callWithin({ cmd: 'into', size }, 600_000)
  let seed = 1
  for (let r = 0; r < rounds; r++) {
    const order: Kind[] = r % 2 === 0 ? ['get', 'into'] : ['into', 'get']
    for (const kind of order) {
      const { cid } = await provider.callWithin<{ cid: string }>({ cmd: 'put', size, seed: seed++ }, 600_000)
      const [s0, r0] = [await cpu(provider), await cpu(requester)]
      const res = await requester.callWithin<{ ms: number, hit: boolean }>({ cmd: kind === 'get' ? 'get' : 'getInto', cid, size }, 600_000)
      const [s1, r1] = [await cpu(provider), await cpu(requester)]
      if (res.hit) throw new Error('a cold get was a cache hit')
      const gb = size / 1e9
      const row = { mbps: size / 1e6 / (res.ms / 1000), provider: (s1 - s0) / 1000 / gb, requester: (r1 - r0) / 1000 / gb }
      results[kind].push(row)
      console.log(`round ${r} ${kind}: ${row.mbps.toFixed(0)} MB/s; CPU s/GB provider ${row.provider.toFixed(2)}, requester ${row.requester.toFixed(2)}`)
    }
  }
  for (const kind of ['get', 'into'] as const) {
    const rows = results[kind]
    console.log(`${kind === 'get' ? 'Local.get        ' : 'Local.get (into) '} median ${median(rows.map(x => x.mbps)).toFixed(0)} MB/s; CPU s/GB provider ${median(rows.map(x => x.provider)).toFixed(2)}, requester ${median(rows.map(x => x.requester)).toFixed(2)}${pinned ? ' (pinned)' : ''}`)
  }
} finally {
  for (const c of [requester, provider]) await c.stop()
  await rm(work, { recursive: true, force: true })
}
