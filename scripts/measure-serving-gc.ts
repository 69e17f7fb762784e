/**
 * Measures what aged processes cost per byte moved, with and without the serving GC policy
 * (`tuneGcForServing`, src/peers/serving-gc.ts): one provider process (`bench/roles/dstore.ts`)
 * serves `--gets` cold gets of `--mib` MiB in turn, each to a fresh Local in one requester
 * process, as the bench's cold gets do; before each get the provider puts a new value. Prints
 * each get's rate, both sides' CPU seconds per GB and mark-compacts (counted by gc-log.ts), and
 * the requester's RSS after its Local stopped (a stopped Local's cache is freed only by a
 * mark-compact), under the three policies of `DSTORE_BENCH_GC` (bench/lib/gc-policy.ts),
 * `--rounds` times interleaved: V8's own on both sides (`default`), the policy in the provider
 * only (`global`: an application's own Local), and in both (`both`: as `dstore global` and
 * `dstore local` run, the bench's default). After the last get, the requester's RSS again
 * after a full collection: what was still live.
 *
 * `--one-local` gets every value through one Local instead, as a Local daemon does (the role's
 * cache is 512 MiB of values: at 256 MiB it holds two, so from the third get on each get evicts
 * the oldest), with its RSS after each get. `--raw` measures instead the raw libp2p TLS stream of the bench
 * (`bench/roles/raw.ts`, `--mib` MiB per get) under V8's policy and with
 * `--heap-growing-percent=300` (the policy's flag), one process pair each per round: the
 * bench's raw references keep V8's own, and this shows whether that matters.
 *
 *   node dist/scripts/measure-serving-gc.js [--gets 4] [--rounds 1] [--mib 256] [--pinned]
 *     [--policy default|global|both] [--one-local | --raw]
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
import { GC_POLICIES, type GcPolicy } from '../bench/lib/gc-policy.js'
import { SERVING_HEAP_GROWING_PERCENT } from '../src/peers/serving-gc.js'

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}
const gets = Number(arg('gets', '4'))
const rounds = Number(arg('rounds', '1'))
const size = Number(arg('mib', '256')) * 2 ** 20
const pinned = process.argv.includes('--pinned')
const oneLocal = process.argv.includes('--one-local')
const rawOnly = process.argv.includes('--raw')
/** `--policy P` runs that one alone. */
const only = arg('policy', '')
const policies = GC_POLICIES.filter(p => only === '' || p === only).reverse()
/** A bad argument: one line, exit 2. */
function refuse (why: string): never {
  process.stderr.write(`measure-serving-gc: ${why}\n`)
  process.exit(2)
}
if (policies.length === 0) refuse(`--policy must be one of ${GC_POLICIES.join(', ')}`)
if (rawOnly && (only !== '' || oneLocal)) refuse('--raw measures the raw TLS stream alone: --policy and --one-local do not apply to it')
const GC_LOG = join(dirname(fileURLToPath(import.meta.url)), 'gc-log.js')
const gb = size / 1e9

const cpu = async (c: Child): Promise<number> => (await c.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, 30_000)).cpuMs
const rate = (ms: number): string => (size / 1e6 / (ms / 1000)).toFixed(0).padStart(4)
const perGB = (ms: number): string => (ms / 1000 / gb).toFixed(2)

/** A role logging its GCs (gc-log.ts), counting its mark-compacts in `marks.n`. */
function logged (script: string, role: string, env: Record<string, string>, core: number, marks: { n: number }): Child {
  return new Child(script, [role], { ...env, BENCH_CHILD_NODE_ARGS: `${process.env.BENCH_CHILD_NODE_ARGS ?? ''} --import ${GC_LOG}` }, {
    ...(pinned ? { cpu: core } : {}),
    onStderr: line => {
      if (line.includes('] mark-compact')) marks.n++
      else if (!line.startsWith('[gc ')) process.stderr.write(line + '\n')
    }
  })
}

async function run (policy: GcPolicy): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dstore-serving-gc-'))
  const providerMarks = { n: 0 }
  const requesterMarks = { n: 0 }
  // Each run names its policy: a DSTORE_BENCH_GC in this process's environment must not leak in.
  const provider = logged('roles/dstore.js', 'provider', { DSTORE_BENCH_GC: policy }, 0, providerMarks)
  const requester = logged('roles/dstore.js', 'requester', { DSTORE_BENCH_GC: policy }, 1, requesterMarks)
  try {
    const { addrs } = await provider.callWithin<{ addrs: string[] }>({ cmd: 'start', dir: join(work, 'p') }, 60_000)
    for (let i = 0; i < gets; i++) {
      const { cid } = await provider.callWithin<{ cid: string }>({ cmd: 'put', size, seed: 1 + i }, 600_000)
      if (!oneLocal || i === 0) await requester.callWithin({ cmd: 'start', dir: join(work, `r${i}`), addrs }, 60_000)
      const [s0, r0, pm0, rm0] = [await cpu(provider), await cpu(requester), providerMarks.n, requesterMarks.n]
      const res = await requester.callWithin<{ ms: number }>({ cmd: 'get', cid, size }, 600_000)
      // The GC logs are other pipes than the answer: give their last lines time to arrive.
      await new Promise(resolve => setTimeout(resolve, 200))
      const [s1, r1] = [await cpu(provider), await cpu(requester)]
      console.log(`${policy.padEnd(7)} get ${i}: ${rate(res.ms)} MB/s, CPU s/GB provider ${perGB(s1 - s0)}, requester ${perGB(r1 - r0)}; mark-compacts provider ${providerMarks.n - pm0}, requester ${requesterMarks.n - rm0}`)
      if (!oneLocal) await requester.callWithin({ cmd: 'stop' }, 60_000)
      const { rssMiB } = await requester.callWithin<{ rssMiB: number }>({ cmd: 'rss' }, 30_000)
      console.log(`${''.padEnd(7)}   requester RSS ${oneLocal ? 'after the get' : 'after its Local stopped'}: ${rssMiB.toFixed(0)} MiB`)
    }
    // `reset-rss` runs a full collection first: what is left is what was live, once V8's
    // sweeper (which frees ArrayBuffers on another thread, after the collection) is done.
    await requester.callWithin({ cmd: 'reset-rss' }, 30_000)
    await new Promise(resolve => setTimeout(resolve, 1000))
    const { rssMiB } = await requester.callWithin<{ rssMiB: number }>({ cmd: 'rss' }, 30_000)
    console.log(`${''.padEnd(7)}   requester RSS after a full collection: ${rssMiB.toFixed(0)} MiB`)
  } finally {
    await requester.stop()
    await provider.stop()
    await rm(work, { recursive: true, force: true })
  }
}

/** The raw TLS stream, `gets` transfers on one process pair, under V8's policy or the serving flag. */
async function runRaw (serving: boolean): Promise<void> {
  // The caller's own node flags (BENCH_CHILD_NODE_ARGS) go to both runs alike.
  const flags = `${process.env.BENCH_CHILD_NODE_ARGS ?? ''}${serving ? ` --heap-growing-percent=${SERVING_HEAP_GROWING_PERCENT}` : ''}`
  const env: Record<string, string> = { BENCH_CHILD_NODE_ARGS: flags }
  const server = new Child('roles/raw.js', ['server'], env, pinned ? { cpu: 0 } : {})
  const client = new Child('roles/raw.js', ['client'], env, pinned ? { cpu: 1 } : {})
  const name = serving ? 'serving' : 'default'
  try {
    const { addrs } = await server.callWithin<{ addrs: string[] }>({ cmd: 'start', kind: 'tls' }, 60_000)
    await client.callWithin({ cmd: 'start', kind: 'tls', addrs }, 60_000)
    for (let i = 0; i < gets; i++) {
      const [s0, c0] = [await cpu(server), await cpu(client)]
      const res = await client.callWithin<{ ms: number }>({ cmd: 'get', size }, 600_000)
      const [s1, c1] = [await cpu(server), await cpu(client)]
      console.log(`raw tls ${name.padEnd(7)} get ${i}: ${rate(res.ms)} MB/s, CPU s/GB server ${perGB(s1 - s0)}, client ${perGB(c1 - c0)}`)
    }
  } finally {
    await client.stop()
    await server.stop()
  }
}

// Odd rounds run in the reverse order, so no policy always runs last (on the warmest machine).
for (let r = 0; r < rounds; r++) {
  const flip = r % 2 === 1
  if (rawOnly) {
    for (const serving of flip ? [true, false] : [false, true]) await runRaw(serving)
  } else {
    for (const policy of flip ? [...policies].reverse() : policies) await run(policy)
  }
}
