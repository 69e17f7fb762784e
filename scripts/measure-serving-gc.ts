/**
 * Measures what an aged Global costs per byte sent, with and without the serving GC policy
 * (`tuneGcForServing`, src/peers/serving-gc.ts): one provider process (`bench/roles/dstore.ts`)
 * serves `--gets` cold gets of 256 MiB in turn, each to a fresh Local in one requester process,
 * as the bench's cold gets do; before each get the provider puts a new value. Prints each get's
 * rate, both sides' CPU seconds per GB and the provider's mark-compacts (counted by
 * gc-log.ts), first with V8's default policy (`DSTORE_BENCH_GC=default`), then with the
 * serving policy in the provider (as `dstore global` runs), `--rounds` times interleaved.
 * `--local` adds a third run with the policy in the requester too (`DSTORE_BENCH_GC=all`), and
 * prints the requester's RSS after each Local stops: what the policy costs a process whose
 * Locals come and go (their caches are freed only by a mark-compact).
 *
 *   node dist/scripts/measure-serving-gc.js [--gets 4] [--rounds 1] [--mib 256] [--pinned] [--local]
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
const withLocal = process.argv.includes('--local')
const GC_LOG = join(dirname(fileURLToPath(import.meta.url)), 'gc-log.js')

type Policy = 'default' | 'serving' | 'all'
// Each policy names itself: a DSTORE_BENCH_GC in this process's environment must not leak in.
const GC_ENV: Record<Policy, Record<string, string>> = { default: { DSTORE_BENCH_GC: 'default' }, serving: { DSTORE_BENCH_GC: 'serving' }, all: { DSTORE_BENCH_GC: 'all' } }

async function run (policy: Policy): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dstore-serving-gc-'))
  let marks = 0
  const provider = new Child('roles/dstore.js', ['provider'], {
    BENCH_CHILD_NODE_ARGS: `--import ${GC_LOG}`,
    ...GC_ENV[policy]
  }, { ...(pinned ? { cpu: 0 } : {}), onStderr: line => {
    if (line.includes('] mark-compact')) marks++
    else if (!line.startsWith('[gc ')) process.stderr.write(line + '\n')
  } })
  const requester = new Child('roles/dstore.js', ['requester'], GC_ENV[policy], pinned ? { cpu: 1 } : {})
  const cpu = async (c: Child): Promise<number> => (await c.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, 30_000)).cpuMs
  try {
    const { addrs } = await provider.callWithin<{ addrs: string[] }>({ cmd: 'start', dir: join(work, 'p') }, 60_000)
    for (let i = 0; i < gets; i++) {
      const { cid } = await provider.callWithin<{ cid: string }>({ cmd: 'put', size, seed: 1 + i }, 600_000)
      await requester.callWithin({ cmd: 'start', dir: join(work, `r${i}`), addrs }, 60_000)
      const [s0, r0, m0] = [await cpu(provider), await cpu(requester), marks]
      const res = await requester.callWithin<{ ms: number }>({ cmd: 'get', cid, size }, 600_000)
      // The GC log is another pipe than the answer: give its last lines time to arrive.
      await new Promise(resolve => setTimeout(resolve, 200))
      const [s1, r1, m1] = [await cpu(provider), await cpu(requester), marks]
      const gb = size / 1e9
      console.log(`${policy.padEnd(7)} get ${i}: ${(size / 1e6 / (res.ms / 1000)).toFixed(0).padStart(4)} MB/s, CPU s/GB provider ${((s1 - s0) / 1000 / gb).toFixed(2)}, requester ${((r1 - r0) / 1000 / gb).toFixed(2)}; provider mark-compacts ${m1 - m0}`)
      await requester.callWithin({ cmd: 'stop' }, 60_000)
      if (withLocal) {
        const { rssMiB } = await requester.callWithin<{ rssMiB: number }>({ cmd: 'rss' }, 30_000)
        console.log(`${''.padEnd(7)}   requester RSS after its Local stopped: ${rssMiB.toFixed(0)} MiB`)
      }
    }
  } finally {
    await requester.stop()
    await provider.stop()
    await rm(work, { recursive: true, force: true })
  }
}

for (let r = 0; r < rounds; r++) {
  await run('default')
  await run('serving')
  if (withLocal) await run('all')
}
