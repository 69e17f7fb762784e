import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tempDir } from './helpers.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The first ```js block after a heading. */
function codeBlockAfter (markdown: string, heading: string): string {
  const at = markdown.indexOf(heading)
  assert.ok(at >= 0, `README has no "${heading}" section`)
  const m = /```js\n([\s\S]*?)```/.exec(markdown.slice(at))
  assert.ok(m != null, `no js code block after "${heading}"`)
  return m[1]
}

describe('README', () => {
  it('has an API example that runs as written, importing the package by its name', async function () {
    this.timeout(30_000)
    const code = codeBlockAfter(await readFile(join(ROOT, 'README.md'), 'utf8'), '## API')
    // Inside the package folder, so `import … from 'dstore'` resolves to this package itself.
    const scratch = join(ROOT, 'dist', '.readme-example')
    await mkdir(scratch, { recursive: true })
    const file = join(scratch, 'example.mjs')
    await writeFile(file, code)
    const cwd = await tempDir()
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: cwd.path, timeout: 25_000 })
      assert.match(stdout, /^bafk[a-z2-7]+ hello dstore$/m)
      assert.match(stdout, /Uint8Array\(6\)/)
    } finally {
      await cwd.cleanup()
      await rm(scratch, { recursive: true, force: true })
    }
  })

  it('gives `npm test` as the test command, which is what .ci/run runs', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    const ci = await readFile(join(ROOT, '.ci', 'run'), 'utf8')
    assert.match(readme, /^npm test\b/m)
    assert.match(ci, /^npm test$/m)
  })
})
