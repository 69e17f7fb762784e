/**
 * Entry point of `npm run bench`: runs every benchmark once, in turn.
 *
 *   npm run bench [-- --quick] [-- --only hash|compare|http|s3|network|report]
 *
 * The default run is `hash`, then `compare` (dstore beside Helia and the raw references; it
 * also rewrites docs/BENCHMARKS.md and docs/benchmarks-throughput.svg), then `http` (the Local
 * daemon over HTTP beside `Local.cat`, bench/http.ts; its section is added to BENCHMARKS.md). `network` is the
 * older dstore-only network bench, whose figures `compare` now covers: it runs only when asked.
 * `s3` (a Global on the S3 store beside the fs store and the SDK, bench/s3.ts; it needs Swift and
 * memcached, see test/s3-server.ts) also runs only when asked; its section is added to BENCHMARKS.md.
 * `report` only regenerates the docs from bench/results/latest.json and hash.json.
 * `--quick` uses fewer, shorter repetitions (a smoke test, noisier figures).
 * Each bench writes its figures to bench/results/<name>.json (compare: latest.json).
 */
import '../src/runtime-shim.js'
import { runHashBench } from './hash.js'
import { runNetworkBench } from './network.js'
import { runCompare } from './compare.js'
import { runHttpBench } from './http.js'
import { runS3Bench } from './s3.js'
import { writeDocs } from './lib/report.js'

const quick = process.argv.includes('--quick')
const onlyAt = process.argv.indexOf('--only')
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined
const known = ['hash', 'compare', 'http', 's3', 'network', 'report']
if (only != null && !known.includes(only)) {
  console.error(`unknown bench ${only}: use one of ${known.join(', ')}`)
  process.exit(2)
}

const t0 = performance.now()
if (only == null || only === 'hash') await runHashBench({ quick })
if (only == null || only === 'compare') await runCompare({ quick })
if (only == null || only === 'http') {
  await runHttpBench({ quick })
  await writeDocs()
}
if (only === 's3') {
  await runS3Bench({ quick })
  await writeDocs()
}
if (only === 'network') await runNetworkBench({ quick })
if (only === 'report') await writeDocs()
console.log(`\nbench done in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
