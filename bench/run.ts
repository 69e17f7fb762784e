/**
 * Entry point of `npm run bench`: runs every benchmark in turn.
 *
 *   npm run bench [-- --quick]
 *
 * `--quick` uses fewer, shorter repetitions (a smoke test, noisier figures).
 * Each bench writes its figures to bench/results/<name>.json.
 */
import '../src/runtime-shim.js'
import { runHashBench } from './hash.js'

const quick = process.argv.includes('--quick')

await runHashBench({ quick })
