/**
 * A daemon's unhandled promise rejection (cli/unhandled.ts): logged with its stack and cause,
 * and the process goes on (Node's default ends it, taking every other peer's transfers along).
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const MODULE = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'unhandled.js')).href

describe('a daemon and an unhandled rejection', function () {
  it('logs it with its stack and cause, and keeps running', async function () {
    const script = `
      import { keepServingOnUnhandled } from ${JSON.stringify(MODULE)}
      keepServingOnUnhandled(line => process.stderr.write('dstore: ' + line + '\\n'))
      Promise.reject(new Error('stream gone', { cause: new Error('the root of it') }))
      setTimeout(() => { process.stdout.write('still serving') }, 200)
    `
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 })
    assert.equal(stdout, 'still serving')
    assert.match(stderr, /dstore: unhandled rejection \(this daemon keeps serving\): Error: stream gone\n\s+at /)
    assert.match(stderr, /cause: Error: the root of it/)
  })
})
