/**
 * `dstore global --http`, through the real binary: the URL in the banner, in --json and in
 * `<repo>/global.http` (removed on a clean stop), the free-port fallback for the default
 * address, bad values as one readable line, tokens, and read-only non-loopback listeners.
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { access, readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { tempDir } from './helpers.js'
import { BIN, ONE_LINE, cleanEnv, dstore, startGlobal, stopGlobal } from './proc.js'

const exists = async (path: string): Promise<boolean> => await access(path).then(() => true, () => false)

function httpLine (stdout: string): string {
  const m = /^HTTP: (http:\/\/\S+) \(URL in (\S+)\)$/m.exec(stdout)
  assert.ok(m, stdout)
  return m[1]
}

describe('dstore global --http', function () {
  this.timeout(60_000)

  it('serves HTTP on the address given, names the URL in the banner and <repo>/global.http, and removes that file on SIGTERM', async function () {
    const dir = await tempDir('dstore-cli-http-')
    try {
      const g = await startGlobal(['--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0'])
      const url = httpLine(g.stdout())
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.ok(!url.endsWith(':0'))
      assert.equal(await readFile(join(dir.path, 'global.http'), 'utf8'), url + '\n')
      // A value put over HTTP is the Global's: the CLI reads it over libp2p.
      const post = await fetch(`${url}/ipfs`, { method: 'POST', body: 'over http' })
      assert.equal(post.status, 201)
      const { cid } = await post.json() as { cid: string }
      const cat = await dstore(['cat', '--global', g.addr, cid])
      assert.equal(cat.code, 0, cat.stderr)
      assert.equal(cat.out, 'over http')
      assert.equal((await fetch(`${url}/ipfs/bafkqaaa?format=raw`)).status, 200)
      const stopped = await stopGlobal(g)
      assert.equal(stopped.code, 0, stopped.stderr)
      assert.ok(!await exists(join(dir.path, 'global.http')), 'global.http removed on a clean stop')
      await assert.rejects(fetch(`${url}/status`))
    } finally { await dir.cleanup() }
  })

  it('--json has "http" (the URL) and "httpFile"; --http off has neither, and no global.http', async function () {
    const dir = await tempDir('dstore-cli-http-json-')
    try {
      const proc = spawn(process.execPath, [BIN, 'global', '--json', '--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
      const first = await new Promise<string>((resolve, reject) => {
        let buf = ''
        proc.stdout.on('data', (b: Buffer) => { buf += b.toString('utf8'); const i = buf.indexOf('\n'); if (i >= 0) resolve(buf.slice(0, i)) })
        proc.on('exit', (code) => { reject(new Error(`exited ${String(code)}`)) })
      })
      const exited = new Promise<number | null>(resolve => proc.once('exit', resolve))
      const info = JSON.parse(first)
      assert.match(info.http, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.equal(info.httpFile, join(dir.path, 'global.http'))
      assert.equal((await fetch(`${info.http as string}/status`)).status, 200)
      proc.kill('SIGTERM')
      assert.equal(await exited, 0)

      const g = await startGlobal(['--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', 'off'])
      assert.ok(!/^HTTP:/m.test(g.stdout()), g.stdout())
      assert.ok(!await exists(join(dir.path, 'global.http')))
      assert.equal((await stopGlobal(g)).code, 0)
    } finally { await dir.cleanup() }
  })

  it('a malformed --http is a usage error: exit 2, one line naming --http', async function () {
    const dir = await tempDir('dstore-cli-http-bad-')
    try {
      const values = ['nope', '127.0.0.1', '127.0.0.1:99999', '[nothex]:1', 'example.com:80', ':80', '127.0.0.1:-1']
      const rs = await Promise.all(values.map(async v => await dstore(['global', '--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', v])))
      for (const [i, r] of rs.entries()) {
        assert.equal(r.code, 2, `${values[i]}: ${r.stderr}`)
        assert.match(r.stderr, ONE_LINE, values[i])
        assert.match(r.stderr, /--http/, values[i])
      }
      assert.ok(!await exists(join(dir.path, 'global.http')))
    } finally { await dir.cleanup() }
  })

  it('an explicitly given --http port that is taken: exit 1, one line, no stack trace, Global not left running', async function () {
    const server = createServer()
    const port = await new Promise<number>((resolve, reject) => {
      server.on('error', reject)
      server.listen(0, '127.0.0.1', () => { resolve((server.address() as { port: number }).port) })
    })
    const dir = await tempDir('dstore-cli-http-busy-')
    try {
      const r = await dstore(['global', '--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', `127.0.0.1:${port}`])
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, new RegExp(`cannot listen for HTTP on 127\\.0\\.0\\.1:${port}: address already in use`))
      assert.ok(!await exists(join(dir.path, 'global.http')))
    } finally {
      server.close()
      await dir.cleanup()
    }
  })

  it('with the default address and port 5080 taken, falls back to a free port and says so in a Note line', async function () {
    const dir = await tempDir('dstore-cli-5080-')
    try {
      // As for 4001 (test-cli): hold 5080 if free; if another holder lets go just before Global starts, try again.
      for (let attempt = 1; ; attempt++) {
        const server: Server | undefined = await new Promise(resolve => {
          const s = createServer()
          s.once('error', () => { resolve(undefined) })
          s.listen(5080, '127.0.0.1', () => { resolve(s) })
        })
        try {
          const g = await startGlobal(['--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0'], { defaultHttp: true })
          const url = httpLine(g.stdout())
          const { code, stdout } = await stopGlobal(g)
          assert.equal(code, 0)
          if (server == null && url.endsWith(':5080') && attempt < 3) continue
          assert.match(stdout, /^Note: HTTP port 5080 is taken, so a free port was chosen$/m)
          assert.ok(!url.endsWith(':5080'), url)
          break
        } finally {
          server?.close()
        }
      }
    } finally { await dir.cleanup() }
  })

  it('--http-token FILE: writes need the bearer token (401 without), reads do not; an empty or missing token file is a usage error', async function () {
    const dir = await tempDir('dstore-cli-http-token-')
    try {
      const tokenFile = join(dir.path, 'token')
      await writeFile(join(dir.path, 'empty'), '\n')
      for (const file of [join(dir.path, 'empty'), join(dir.path, 'absent')]) {
        const r = await dstore(['global', '--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0', '--http-token', file])
        assert.equal(r.code, 2, r.stderr)
        assert.match(r.stderr, ONE_LINE)
        assert.match(r.stderr, /token file/)
      }
      await writeFile(tokenFile, 'tok-123\n', { mode: 0o600 })
      const g = await startGlobal(['--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0', '--http-token', tokenFile])
      try {
        const url = httpLine(g.stdout())
        const denied = await fetch(`${url}/ipfs`, { method: 'POST', body: 'x' })
        assert.equal(denied.status, 401)
        await denied.arrayBuffer()
        const ok = await fetch(`${url}/ipfs`, { method: 'POST', body: 'x', headers: { Authorization: 'Bearer tok-123' } })
        assert.equal(ok.status, 201)
        const { cid } = await ok.json() as { cid: string }
        assert.equal((await fetch(`${url}/ipfs/${cid}`, { method: 'HEAD' })).status, 200)
      } finally { assert.equal((await stopGlobal(g)).code, 0) }
    } finally { await dir.cleanup() }
  })

  it('on a non-loopback address without a token, HTTP is read-only and a Note says so', async function () {
    const dir = await tempDir('dstore-cli-http-ro-')
    try {
      const g = await startGlobal(['--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '0.0.0.0:0'])
      try {
        assert.match(g.stdout(), /^Note: HTTP on 0\.0\.0\.0 is read-only: give --http-token FILE to allow writes$/m)
        const port = new URL(httpLine(g.stdout())).port
        const r = await fetch(`http://127.0.0.1:${port}/ipfs`, { method: 'POST', body: 'x' })
        assert.equal(r.status, 403)
        await r.arrayBuffer()
        assert.equal((await fetch(`http://127.0.0.1:${port}/ipfs/bafkqaaa?format=raw`)).status, 200)
      } finally { assert.equal((await stopGlobal(g)).code, 0) }
    } finally { await dir.cleanup() }
  })
})
