/**
 * Runs the test S3 server (Swift + s3api + tempauth + memcached, test/s3-server.ts) in the
 * foreground until Ctrl-C, for manual use and benches:
 *
 *     npx tsc -p . && node dist/scripts/s3-server.js [--bucket NAME]
 *
 * Prints the endpoint, credentials and the environment to point dstore (or any S3 client) at it.
 */
import { startS3Server } from '../test/s3-server.js'

const args = process.argv.slice(2)
const at = args.indexOf('--bucket')
const bucket = at >= 0 ? args[at + 1] : 'dstore'
if (bucket == null || bucket.startsWith('--') || args.some(a => a.startsWith('--') && a !== '--bucket')) {
  process.stderr.write('usage: node dist/scripts/s3-server.js [--bucket NAME]\n')
  process.exit(2)
}

const started = Date.now()
const server = await startS3Server({ bucket })
process.stdout.write(`S3 server (Swift s3api) ready in ${Date.now() - started} ms; data in ${server.dir}
  endpoint  ${server.endpoint}   (path-style, region ${server.region})
  bucket    ${server.bucket ?? ''}
  export AWS_ENDPOINT_URL=${server.endpoint} AWS_REGION=${server.region} AWS_ACCESS_KEY_ID=${server.accessKeyId} AWS_SECRET_ACCESS_KEY=${server.secretAccessKey}
Ctrl-C stops it and removes the data.
`)

// The server's processes do not keep Node running (test/s3-server.ts unrefs them): this does.
const keepAlive = setInterval(() => {}, 1 << 30)
let stopping = false
async function stop (): Promise<void> {
  if (stopping) return
  stopping = true
  clearInterval(keepAlive)
  await server.stop()
  process.exit(0)
}
process.on('SIGINT', () => { void stop() })
process.on('SIGTERM', () => { void stop() })
