/**
 * A child process for the "killed mid-put" test: opens an S3 store (config as JSON in argv[2])
 * and puts an endless stream (expecting the CID in argv[3], when given), printing `parts-sent` once parts have reached the server.
 */
import '../src/runtime-shim.js'
import { createS3Store } from '../src/core/store/s3.js'
import { pseudoRandom } from './helpers.js'

const store = await createS3Store(JSON.parse(process.argv[2]))
const piece = pseudoRandom(1 << 20, 5)
async function * endless (): AsyncGenerator<Uint8Array> {
  for (let i = 0; ; i++) {
    if (i === 24) process.stdout.write('parts-sent\n')
    yield piece
    if (i > 24) await new Promise(resolve => setTimeout(resolve, 50))
  }
}
// With a CID expected (argv[3]), the upload goes to the final key (invisible until completed).
await store.put(endless(), process.argv[3] !== undefined ? { expected: process.argv[3] } : {})
