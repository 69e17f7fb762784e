/**
 * Entry point of `npm run bench`: runs every benchmark once, in turn.
 *
 *   npm run bench [-- --quick] [-- --pinned] [-- --only hash|compare|http|s3|network|swarm|report]
 *
 * The default run is `hash`, then `compare` (dstore beside Helia and the raw references; it
 * also rewrites docs/BENCHMARKS.md and docs/benchmarks-throughput.svg), then `http` (the Local
 * daemon over HTTP beside `Local.cat`, bench/http.ts; its section is added to BENCHMARKS.md). `network` is the
 * older dstore-only network bench, whose figures `compare` now covers: it runs only when asked.
 * `s3` (a Global on the S3 store beside the fs store and the SDK, bench/s3.ts; it needs Swift and
 * memcached, see test/s3-server.ts) also runs only when asked; its section is added to BENCHMARKS.md.
 * `swarm` (N Locals fetching one value at once, each in its own network namespace on links capped
 * with tc, bench/swarm.ts: `--n 4,8,16 --swarm on,off --rate 40mbit --size-mib 32`) needs root, ip
 * and tc, so it too runs only when asked; its section and docs/swarm-completion.svg are added.
 * `report` only regenerates the docs from the stored results (bench/results/latest.json,
 * pinned.json, before-14.json, hash.json, …).
 * `--quick` uses fewer, shorter repetitions (a smoke test, noisier figures).
 * `--pinned` runs the comparison alone (as `--only compare`) in pinned mode: every provider
 * and server role on core 0, every requester and client role on core 1 (taskset), as two
 * hosts would; it writes bench/results/pinned.json instead of latest.json, and the docs show
 * both modes. It needs `taskset` and at least 2 cores, and refuses in one line without them;
 * with `--only` it is for `compare` (and `report`, where it changes nothing) only.
 * Each bench writes its figures to bench/results/<name>.json (compare: latest.json).
 */
import '../src/runtime-shim.js'
import { runHashBench } from './hash.js'
import { runNetworkBench } from './network.js'
import { runCompare } from './compare.js'
import { runHttpBench } from './http.js'
import { runS3Bench } from './s3.js'
import { runSwarmBench, swarmArgs, type SwarmBenchOptions } from './swarm.js'
import { netnsUnavailable } from './lib/netns.js'
import { writeDocs } from './lib/report.js'
import { pinningUnavailable } from './lib/pinning.js'
import { gcPolicyInForce } from './lib/gc-policy.js'

// A DSTORE_BENCH_GC that names no policy would make every dstore role refuse to start, and the
// comparison go on without dstore: refused here, before anything runs.
gcPolicyInForce()
const quick = process.argv.includes('--quick')
const pinned = process.argv.includes('--pinned')
const onlyAt = process.argv.indexOf('--only')
const onlyGiven = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined
const known = ['hash', 'compare', 'http', 's3', 'network', 'swarm', 'report']
if (onlyGiven != null && !known.includes(onlyGiven)) {
  console.error(`unknown bench ${onlyGiven}: use one of ${known.join(', ')}`)
  process.exit(2)
}
if (pinned && onlyGiven != null && onlyGiven !== 'compare' && onlyGiven !== 'report') {
  console.error(`bench: --pinned is a mode of the comparison only (--only compare), not of ${onlyGiven}`)
  process.exit(2)
}
// A pinned run is the comparison alone: the other benches have no pinned mode.
const only = pinned && onlyGiven == null ? 'compare' : onlyGiven
if (pinned && only === 'compare') {
  const why = pinningUnavailable()
  if (why !== undefined) {
    console.error(`bench --pinned: ${why}`)
    process.exit(1)
  }
}
// Checked before anything runs: the swarm bench refuses in one line when it cannot work here.
let swarmOpts: SwarmBenchOptions = {}
if (only === 'swarm') {
  const why = netnsUnavailable()
  if (why !== undefined) {
    console.error(`bench swarm: ${why}`)
    process.exit(1)
  }
  try {
    swarmOpts = swarmArgs(process.argv)
  } catch (err) {
    console.error(`bench swarm: ${(err as Error).message}`)
    process.exit(2)
  }
}

const t0 = performance.now()
if (only == null || only === 'hash') await runHashBench({ quick })
if (only == null || only === 'compare') await runCompare({ quick, pinned })
if (only == null || only === 'http') {
  await runHttpBench({ quick })
  await writeDocs()
}
if (only === 's3') {
  await runS3Bench({ quick })
  await writeDocs()
}
if (only === 'network') await runNetworkBench({ quick })
if (only === 'swarm') {
  await runSwarmBench({ ...swarmOpts, quick })
  await writeDocs()
}
if (only === 'report') await writeDocs()
console.log(`\nbench done in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
