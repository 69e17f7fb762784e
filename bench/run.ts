/**
 * Entry point of `npm run bench`: runs every benchmark in turn.
 *
 *   npm run bench [-- --quick] [-- --only hash|network]
 *
 * `--quick` uses fewer, shorter repetitions (a smoke test, noisier figures).
 * Each bench writes its figures to bench/results/<name>.json.
 */
import '../src/runtime-shim.js'
import { runHashBench } from './hash.js'
import { runNetworkBench } from './network.js'

const quick = process.argv.includes('--quick')
const onlyAt = process.argv.indexOf('--only')
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined

if (only == null || only === 'hash') await runHashBench({ quick })
if (only == null || only === 'network') await runNetworkBench({ quick })
