/**
 * Measures what aged processes cost per byte moved, with and without the serving GC policy
 * (`tuneGcForServing`, src/peers/serving-gc.ts): one provider process (`bench/roles/dstore.ts`)
 * serves `--gets` cold gets of 256 MiB in turn, each to a fresh Local in one requester process,
 * as the bench's cold gets do; before each get the provider puts a new value. Prints each get's
 * rate, both sides' CPU seconds per GB, the provider's mark-compacts (counted by gc-log.ts) and
 * the requester's RSS after its Local stopped (a stopped Local's cache is freed only by a
 * mark-compact), under three policies, `--rounds` times interleaved: V8's own on both sides
 * (`DSTORE_BENCH_GC=default`), the policy in the provider only (`global`: an application's own
 * Local), and in both (`both`: as `dstore global` and `dstore local` run, the bench's default).
 * `--one-local` gets every value through one Local instead, as a Local daemon does (its cache
 * holds one 256 MiB value, so each get evicts the last), with its RSS after each get.
 *
 *   node dist/scripts/measure-serving-gc.js [--gets 4] [--rounds 1] [--mib 256] [--pinned] [--one-local]
 *
 * The first get of a provider process is cheap either way: V8 sets the old generation's limit
 * from the live heap only after its first mark-compact under load.
 */
import '../src/runtime-shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child } from '../bench/lib/child.js'

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}
const gets = Number(arg('gets', '4'))
const rounds = Number(arg('rounds', '1'))
const size = Number(arg('mib', '256')) * 2 ** 20
const pinned = process.argv.includes('--pinned')
const oneLocal = process.argv.includes('--one-local')
const GC_LOG = join(dirname(fileURLToPath(import.meta.url)), 'gc-log.js')

// Each policy names itself: a DSTORE_BENCH_GC in this process's environment must not leak in.
type Policy = 'default' | 'global' | 'both'
const POLICIES: Policy[] = ['default', 'global', 'both']

async function run (policy: Policy): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dstore-serving-gc-'))
  let marks = 0
  const provider = new Child('roles/dstore.js', ['provider'], {
    BENCH_CHILD_NODE_ARGS: `--import ${GC_LOG}`,
    DSTORE_BENCH_GC: policy
  }, { ...(pinned ? { cpu: 0 } : {}), onStderr: line => {
    if (line.includes('] mark-compact')) marks++
    else if (!line.startsWith('[gc ')) process.stderr.write(line + '\n')
  } })
  const requester = new Child('roles/dstore.js', ['requester'], { DSTORE_BENCH_GC: policy }, pinned ? { cpu: 1 } : {})
  const cpu = async (c: Child): Promise<number> => (await c.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, 30_000)).cpuMs
  try {
    const { addrs } = await provider.callWithin<{ addrs: string[] }>({ cmd: 'start', dir: join(work, 'p') }, 60_000)
    for (let i = 0; i < gets; i++) {
      const { cid } = await provider.callWithin<{ cid: string }>({ cmd: 'put', size, seed: 1 + i }, 600_000)
      if (!oneLocal || i === 0) await requester.callWithin({ cmd: 'start', dir: join(work, `r${i}`), addrs }, 60_000)
      const [s0, r0, m0] = [await cpu(provider), await cpu(requester), marks]
      const res = await requester.callWithin<{ ms: number }>({ cmd: 'get', cid, size }, 600_000)
      // The GC log is another pipe than the answer: give its last lines time to arrive.
      await new Promise(resolve => setTimeout(resolve, 200))
      const [s1, r1, m1] = [await cpu(provider), await cpu(requester), marks]
      const gb = size / 1e9
      console.log(`${policy.padEnd(7)} get ${i}: ${(size / 1e6 / (res.ms / 1000)).toFixed(0).padStart(4)} MB/s, CPU s/GB provider ${((s1 - s0) / 1000 / gb).toFixed(2)}, requester ${((r1 - r0) / 1000 / gb).toFixed(2)}; provider mark-compacts ${m1 - m0}`)
      if (!oneLocal) await requester.callWithin({ cmd: 'stop' }, 60_000)
      const { rssMiB } = await requester.callWithin<{ rssMiB: number }>({ cmd: 'rss' }, 30_000)
      console.log(`${''.padEnd(7)}   requester RSS ${oneLocal ? 'after the get' : 'after its Local stopped'}: ${rssMiB.toFixed(0)} MiB`)
    }
  } finally {
    await requester.stop()
    await provider.stop()
    await rm(work, { recursive: true, force: true })
  }
}

for (let r = 0; r < rounds; r++) {
  for (const policy of POLICIES) await run(policy)
}
