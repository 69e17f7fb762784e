/**
 * End-to-end tests of the `dstore` command: the real binary in child processes, a real Global
 * daemon on a temp repo, real files. No mocks.
 *
 * One Global runs for the whole file (restarted once on the same repo); clients find it through
 * `<repo>/global.addr` via DSTORE_REPO. Every CLI process costs ~0.5 s, so the file spawns ~50.
 */
import assert from 'node:assert/strict'
import { spawn, execFile } from 'node:child_process'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { hex, pseudoRandom, tempDir } from './helpers.js'
import { waitFor } from './net.js'
import { DEFAULT_CONNECTION_LIMITS, StorageError, createFsStore } from '../src/index.js'
import { BIN, blake3Cid, cleanEnv, COMMANDS, dstore, expectedBackend, ONE_LINE, startGlobal, stopGlobal, VERSION, type Daemon, type Result } from './proc.js'

describe('dstore CLI', function () {
  let repo: { path: string, cleanup: () => Promise<void> }
  let work: { path: string, cleanup: () => Promise<void> }
  let global: Daemon
  let env: Record<string, string>
  // Above the 4 MiB at which Global hashes in a worker thread: the bundled binary must ship that worker.
  const big = pseudoRandom(6 * 1024 * 1024 + 12345, 7)
  let bigFile: string
  let bigPut: Result
  let bigCid: string

  before(async function () {
    repo = await tempDir('dstore-cli-repo-')
    work = await tempDir('dstore-cli-work-')
    env = { DSTORE_REPO: repo.path }
    global = await startGlobal(['--repo', repo.path, '--listen', '/ip4/127.0.0.1/tcp/0'])
    bigFile = join(work.path, 'big.bin')
    await writeFile(bigFile, big)
    bigPut = await dstore(['put', bigFile], { env })
    bigCid = bigPut.out.trim()
  })

  after(async function () {
    try {
      if (global != null) {
        const { code, stdout } = await stopGlobal(global)
        assert.equal(code, 0, 'Global exits 0 on SIGTERM')
        assert.match(stdout, /^Global stopped\.$/m)
      }
    } finally {
      await repo?.cleanup()
      await work?.cleanup()
    }
  })

  describe('conventions', function () {
    it('--version prints the package.json version and exits 0', async function () {
      const r = await dstore(['--version'])
      assert.equal(r.code, 0)
      assert.equal(r.out.trim(), VERSION)
    })

    it('--help on the root and on every command exits 0 and lists its options', async function () {
      const expected: Record<string, string[]> = {
        '': COMMANDS,
        global: ['--repo', '--listen', '--max-blob-size', '--max-egress <rate>', '40Mbit', '--encryption', '--allow-writer', '--allow-reader', '--insecure-open-writes', '--json',
          ...(['handshakeTimeout', 'maxPendingPerIp', 'maxPending'] as const).map(k => `(default ${DEFAULT_CONNECTION_LIMITS[k]})`),
          '--handshake-timeout <ms>', '--max-pending-per-ip <n>', '--max-pending <n>'],
        put: ['--repo', '--global', '--json', '--connect-timeout', '--no-progress'],
        get: ['--global', '--json', '-o, --output', 'symlink', 'FIFO', 'character device', 'written through'],
        cat: ['--global', '--offset', '--length', '--json'],
        stat: ['--global', '--json'],
        has: ['--global', '--json'],
        rm: ['--global', '--json'],
        ls: ['--global', '--json'],
        id: ['--repo', '--global-key', '--json', 'connects as'],
        repl: ['--global', '--cache-size', '--json']
      }
      // Two at a time: there are two cores.
      const names = Object.keys(expected)
      for (let i = 0; i < names.length; i += 2) {
        await Promise.all(names.slice(i, i + 2).map(async (name) => {
          const r = await dstore(name === '' ? ['--help'] : [name, '--help'])
          assert.equal(r.code, 0, `dstore ${name} --help`)
          assert.equal(r.stderr, '')
          assert.match(r.out, new RegExp(`^Usage: dstore${name === '' ? '' : ' ' + name}`))
          // Help is wrapped at 80 columns, so a phrase may span two lines.
          const text = r.out.replace(/\s+/g, ' ')
          for (const word of expected[name]) assert.ok(text.includes(word), `dstore ${name} --help mentions ${word}:\n${r.out}`)
        }))
      }
    })

    it('an unknown flag is a usage error: exit 2, one line', async function () {
      const r = await dstore(['get', '--frobnicate', bigCid], { env })
      assert.equal(r.code, 2)
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, /--frobnicate/)
    })

    it('with --json, an error is one JSON document on stderr, { error: { name, code, message } }, and stdout is empty', async function () {
      const absent = blake3Cid(new TextEncoder().encode(`never stored ${Date.now()}`))
      // Two at a time: there are two cores.
      const [bad, flag] = await Promise.all([dstore(['get', '--json', 'bafk-not-a-cid'], { env }), dstore(['get', '--json', '--frobnicate', bigCid], { env })])
      const [missing, text] = await Promise.all([dstore(['stat', '--json', absent], { env }), dstore(['stat', absent], { env })])
      for (const [r, code, name, errCode] of [[bad, 1, 'InvalidCIDError', 'ERR_INVALID_CID'], [flag, 2, 'UsageError', 'ERR_USAGE'], [missing, 1, 'NotFoundError', 'ERR_NOT_FOUND']] as const) {
        assert.equal(r.code, code, r.stderr)
        assert.equal(r.out, '')
        assert.match(r.stderr, /^[^\n]+\n$/, 'one line')
        const { error } = JSON.parse(r.stderr) as { error: { name: string, code: string, message: string } }
        assert.equal(error.name, name)
        assert.equal(error.code, errCode)
        assert.ok(error.message.length > 0 && !error.message.startsWith('dstore:'), error.message)
      }
      assert.match(flag.stderr, /--frobnicate/)
      assert.match(text.stderr, ONE_LINE, 'without --json: the usual line')
      assert.equal(text.stderr, `dstore: ${(JSON.parse(missing.stderr) as { error: { message: string } }).error.message}\n`, 'the same message')
    })

    it('an unknown command is a usage error: exit 2, one line', async function () {
      const r = await dstore(['frobnicate'], { env })
      assert.equal(r.code, 2)
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, /frobnicate/)
    })
  })

  describe('put', function () {
    it('stores a file of a few MiB under the CID whose digest is what b3sum prints, with nothing on stderr', async function () {
      assert.equal(bigPut.code, 0, bigPut.stderr)
      assert.equal(bigPut.stderr, '', 'no progress bar when stderr is not a terminal')
      assert.match(bigPut.out, /^bafk[a-z2-7]+\n$/)
      const { stdout } = await promisify(execFile)('b3sum', ['--no-names', bigFile])
      assert.equal(hex(CID.parse(bigCid).multihash.digest), stdout.trim())
      assert.equal(bigCid, blake3Cid(big))
    })

    it('reads stdin with -', async function () {
      const value = `from stdin ${Date.now()}`
      const r = await dstore(['put', '-'], { env, input: value })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stderr, '')
      assert.equal(r.out, blake3Cid(new TextEncoder().encode(value)) + '\n')
    })

    it('prints one CID per input, in order, and --json gives input, cid and size for each', async function () {
      const a = join(work.path, 'a.txt')
      const b = join(work.path, 'b.txt')
      await writeFile(a, 'first file')
      await writeFile(b, 'the second file')
      const r = await dstore(['put', a, b], { env })
      assert.equal(r.code, 0, r.stderr)
      const cids = [blake3Cid(new TextEncoder().encode('first file')), blake3Cid(new TextEncoder().encode('the second file'))]
      assert.deepEqual(r.out.split('\n'), [...cids, ''])
      const j = await dstore(['put', '--json', b, a], { env })
      assert.equal(j.code, 0, j.stderr)
      assert.deepEqual(JSON.parse(j.out), [
        { input: b, cid: cids[1], size: 15 },
        { input: a, cid: cids[0], size: 10 }
      ])
    })

    it('--json with an input that fails: one array, the failure as { input, error: { name, code, message } }, nothing on stderr', async function () {
      const missing = join(work.path, 'no-such-file-json')
      const a = join(work.path, 'json-ok.txt')
      await writeFile(a, 'stored beside a failure')
      const r = await dstore(['put', '--json', missing, a], { env })
      assert.equal(r.code, 1)
      assert.equal(r.stderr, '')
      const rows = JSON.parse(r.out) as Array<Record<string, any>>
      assert.equal(rows.length, 2)
      assert.equal(rows[0].input, missing)
      assert.equal(rows[0].error.code, 'ENOENT')
      assert.ok(rows[0].error.message.includes(missing), rows[0].error.message)
      assert.deepEqual(rows[1], { input: a, cid: blake3Cid(new TextEncoder().encode('stored beside a failure')), size: 23 })
    })

    it('a missing file: exit 1, one line naming it, and the other inputs are still stored', async function () {
      const missing = join(work.path, 'no-such-file')
      const a = join(work.path, 'c.txt')
      await writeFile(a, 'stored despite the missing one')
      const r = await dstore(['put', missing, a], { env })
      assert.equal(r.code, 1)
      assert.equal(r.out, blake3Cid(new TextEncoder().encode('stored despite the missing one')) + '\n')
      assert.match(r.stderr, ONE_LINE)
      assert.ok(r.stderr.includes(missing), r.stderr)
    })
  })

  describe('get', function () {
    it('writes the value byte for byte to stdout, with nothing on stderr', async function () {
      const r = await dstore(['get', bigCid], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal')
      assert.ok(Buffer.compare(r.stdout, Buffer.from(big)) === 0, `got ${r.stdout.length} bytes, expected ${big.length}`)
    })

    it('writes the whole value to a reader of stdout that is slow to start (the pipe fills up)', async function () {
      // The CLI's last chunks wait in stdout's queue while the pipe is full: exiting before they
      // are flushed cut the output short (seen as exactly 6 MiB of a 6 MiB + 12345-byte value).
      const child = spawn(process.execPath, [BIN, 'get', bigCid], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
      child.stdout.pause()
      await new Promise(resolve => setTimeout(resolve, 1500))
      const out: Buffer[] = []
      child.stdout.on('data', (b: Buffer) => out.push(b))
      child.stdout.resume()
      const code = await new Promise<number | null>(resolve => child.on('close', resolve))
      assert.equal(code, 0)
      const got = Buffer.concat(out)
      assert.ok(Buffer.compare(got, Buffer.from(big)) === 0, `got ${got.length} bytes, expected ${big.length}`)
    })

    it('a reader that closes stdout after the first chunk (`| head -c 10`): get and cat exit 141, as cat killed by SIGPIPE, with no stack trace', async function () {
      // It exited 0, so `set -o pipefail` took the cut-short output for the whole value.
      const cutShort = async (args: string[]): Promise<{ code: number | null, stderr: string, got: number }> => {
        const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
        let stderr = ''
        let got = 0
        child.stderr.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
        child.stdout.once('data', (b: Buffer) => { got = b.length; child.stdout.destroy() })
        const code = await new Promise<number | null>(resolve => child.on('close', resolve))
        return { code, stderr, got }
      }
      const [get, cat] = await Promise.all([cutShort(['get', bigCid]), cutShort(['cat', bigCid, '--offset', '1'])])
      for (const [name, r] of [['get', get], ['cat', cat]] as const) {
        assert.ok(r.got > 0 && r.got < big.length, `${name}: the reader closed before the end (${r.got} bytes read)`)
        assert.equal(r.code, 141, `${name}: ${r.stderr}`)
        assert.ok(r.stderr === '' || ONE_LINE.test(r.stderr), `${name}: empty or one line on stderr: ${r.stderr}`)
      }
    })

    it('writes the value to a file with -o, leaving no temp file behind', async function () {
      const dir = join(work.path, 'out')
      await mkdir(dir)
      const file = join(dir, 'copy.bin')
      const r = await dstore(['get', bigCid, '-o', file], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stderr, '')
      assert.equal(r.out, '')
      assert.ok(Buffer.compare(await readFile(file), Buffer.from(big)) === 0)
      assert.deepEqual(await readdir(dir), ['copy.bin'])
    })

    it('--json: with -o, { cid, size, output, path, mode } on stdout; without -o, the bytes on stdout and { cid, size } on stderr', async function () {
      const file = join(work.path, 'json-copy.bin')
      const [o, plain] = await Promise.all([dstore(['get', '--json', bigCid, '-o', file], { env }), dstore(['get', '--json', bigCid], { env })])
      assert.equal(o.code, 0, o.stderr)
      assert.equal(o.stderr, '')
      assert.deepEqual(JSON.parse(o.out), { cid: bigCid, size: big.length, output: file, path: file, mode: 'atomic' })
      assert.ok(Buffer.compare(await readFile(file), Buffer.from(big)) === 0)
      assert.equal(plain.code, 0, plain.stderr)
      assert.ok(Buffer.compare(plain.stdout, Buffer.from(big)) === 0)
      assert.deepEqual(JSON.parse(plain.stderr), { cid: bigCid, size: big.length })
    })

    it('-o into a folder that does not exist: exit 1, one line, no file left behind', async function () {
      const file = join(work.path, 'missing-dir', 'copy.bin')
      const r = await dstore(['get', bigCid, '-o', file], { env })
      assert.equal(r.code, 1)
      assert.match(r.stderr, ONE_LINE)
      assert.ok(r.stderr.includes('missing-dir'), r.stderr)
      assert.ok(!(await readdir(work.path)).includes('missing-dir'))
    })

    it('a malformed CID: exit 1, one line', async function () {
      const r = await dstore(['get', 'bafk-not-a-cid'], { env })
      assert.equal(r.code, 1)
      assert.equal(r.out, '')
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, /not a CID/)
    })

    it('a CID that is not raw/blake3 (sha256 bafkrei…, CIDv0 Qm…): exit 1, one line', async function () {
      const bytes = new TextEncoder().encode('hello')
      const sha = CID.createV1(0x55, await sha256.digest(bytes)).toString()
      const v0 = CID.createV0(await sha256.digest(bytes)).toString()
      assert.match(sha, /^bafkrei/)
      assert.match(v0, /^Qm/)
      const [a, b] = await Promise.all([dstore(['get', sha], { env }), dstore(['get', v0], { env })])
      for (const r of [a, b]) {
        assert.equal(r.code, 1)
        assert.equal(r.out, '')
        assert.match(r.stderr, ONE_LINE)
      }
      assert.match(a.stderr, /blake3/i)
      assert.match(b.stderr, /CIDv0/)
    })
  })

  describe('cat', function () {
    it('--offset --length prints exactly that slice', async function () {
      const offset = 1_000_003
      const length = 70_001
      const r = await dstore(['cat', bigCid, '--offset', String(offset), '--length', String(length)], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stderr, '')
      assert.ok(Buffer.compare(r.stdout, Buffer.from(big.subarray(offset, offset + length))) === 0, `got ${r.stdout.length} bytes`)
    })

    it('--json: the bytes on stdout, { cid, offset, length } on stderr', async function () {
      const r = await dstore(['cat', '--json', bigCid, '--offset', '10', '--length', '1000'], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.ok(Buffer.compare(r.stdout, Buffer.from(big.subarray(10, 1010))) === 0)
      assert.deepEqual(JSON.parse(r.stderr), { cid: bigCid, offset: 10, length: 1000 })
    })

    it('an offset past the end: exit 1, one line', async function () {
      const r = await dstore(['cat', bigCid, '--offset', String(big.length + 1)], { env })
      assert.equal(r.code, 1)
      assert.equal(r.out, '')
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, /past the end/)
    })
  })

  describe('stat', function () {
    it('gives the size, as text and as JSON', async function () {
      const [t, j] = await Promise.all([dstore(['stat', bigCid], { env }), dstore(['stat', '--json', bigCid], { env })])
      assert.equal(t.code, 0, t.stderr)
      assert.match(t.out, new RegExp(`^${bigCid}\\t${big.length} bytes`))
      assert.equal(j.code, 0, j.stderr)
      assert.deepEqual(JSON.parse(j.out), { cid: bigCid, size: big.length })
    })
  })

  describe('has', function () {
    it('exits 0 when every value is present and 1 when one is missing, with a JSON row for each', async function () {
      const absent = blake3Cid(new TextEncoder().encode(`never stored ${Date.now()}`))
      const [all, some] = await Promise.all([
        dstore(['has', bigCid], { env }),
        dstore(['has', '--json', bigCid, absent], { env })
      ])
      assert.equal(all.code, 0, all.stderr)
      assert.equal(all.out, `${bigCid}\tyes\n`)
      assert.equal(some.code, 1)
      assert.deepEqual(JSON.parse(some.out), [{ cid: bigCid, present: true }, { cid: absent, present: false }])
    })
  })

  describe('ls', function () {
    it('lists the pinned values with their sizes, as text and as JSON', async function () {
      const [t, j] = await Promise.all([dstore(['ls'], { env }), dstore(['ls', '--json'], { env })])
      assert.equal(t.code, 0, t.stderr)
      assert.ok(t.out.split('\n').includes(`${bigCid}\t${big.length}`), t.out)
      assert.equal(j.code, 0, j.stderr)
      const rows = JSON.parse(j.out) as Array<{ cid: string, size: number }>
      assert.ok(Array.isArray(rows))
      assert.deepEqual(rows.find(r => r.cid === bigCid), { cid: bigCid, size: big.length })
      assert.equal(rows.length, t.out.trim().split('\n').length)
    })
  })

  describe('rm', function () {
    it('removes a value: a later get fails with exit 1 and exactly one line on stderr', async function () {
      const value = `to be removed ${Date.now()}`
      const put = await dstore(['put'], { env, input: value })
      assert.equal(put.code, 0, put.stderr)
      const cid = put.out.trim()
      const rm = await dstore(['rm', cid], { env })
      assert.equal(rm.code, 0, rm.stderr)
      assert.equal(rm.out, `removed ${cid}\n`)
      const file = join(work.path, 'removed.txt')
      const [get, getO, again] = await Promise.all([
        dstore(['get', cid], { env }),
        dstore(['get', cid, '-o', file], { env }),
        dstore(['rm', cid], { env })
      ])
      for (const r of [get, getO]) {
        assert.equal(r.code, 1)
        assert.equal(r.out, '')
        assert.match(r.stderr, ONE_LINE)
        assert.match(r.stderr, /not stored/)
        assert.ok(!/\bat .*:\d+:\d+/.test(r.stderr), 'no stack trace')
      }
      assert.ok(!(await readdir(work.path)).some(f => f.includes('removed.txt')), 'no file, no temp file')
      assert.equal(again.code, 1, 'removing it again reports it missing')
      assert.equal(again.out, `not found: ${cid}\n`)
    })
  })

  describe('finding Global', function () {
    it('--global MULTIADDR works without a global.addr', async function () {
      const empty = await tempDir('dstore-cli-empty-')
      try {
        const r = await dstore(['stat', '--global', global.addr, bigCid], { env: { DSTORE_REPO: empty.path } })
        assert.equal(r.code, 0, r.stderr)
        assert.match(r.out, new RegExp(`\\t${big.length} bytes`))
      } finally { await empty.cleanup() }
    })

    it('--global with another peer\'s /p2p/ id fails at once (not after --connect-timeout): exit 1, one line naming both PeerIds', async function () {
      const empty = await tempDir('dstore-cli-empty-')
      try {
        // A third identity: neither Global's nor this client's own.
        const other = (await dstore(['id', '--repo', join(empty.path, 'other')])).out.trim()
        const wrong = global.addr.replace(/\/p2p\/[^/]+$/, `/p2p/${other}`)
        const started = Date.now()
        const r = await dstore(['stat', '--global', wrong, '--connect-timeout', '20000', bigCid], { env: { DSTORE_REPO: empty.path } })
        const ms = Date.now() - started
        assert.equal(r.code, 1, r.stderr)
        assert.match(r.stderr, ONE_LINE)
        assert.ok(r.stderr.includes(other) && r.stderr.includes(global.peerId), r.stderr)
        assert.ok(ms < 15_000, `took ${ms} ms against a 20 s connect timeout`)
      } finally { await empty.cleanup() }
    })

    it('DSTORE_GLOBAL works without a global.addr', async function () {
      const empty = await tempDir('dstore-cli-empty-')
      try {
        const r = await dstore(['has', bigCid], { env: { DSTORE_REPO: empty.path, DSTORE_GLOBAL: global.addr } })
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.out, `${bigCid}\tyes\n`)
      } finally { await empty.cleanup() }
    })

    it('a malformed --global is a usage error for every client command, the REPL too: exit 2, one line', async function () {
      const [get, repl] = await Promise.all([
        dstore(['get', bigCid, '--global', 'not-a-multiaddr'], { env }),
        dstore(['repl', '--global', 'not-a-multiaddr'], { env, input: '.exit\n' })
      ])
      for (const r of [get, repl]) {
        assert.equal(r.code, 2, r.stderr)
        assert.match(r.stderr, ONE_LINE)
        assert.match(r.stderr, /bad Global address not-a-multiaddr/)
      }
    })

    it('an unreachable Global: exit 1, one line saying so', async function () {
      // A port that was just free: bind it, note it, close it.
      const port = await new Promise<number>((resolve, reject) => {
        const s = createServer()
        s.on('error', reject)
        s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => { resolve(p) }) })
      })
      const t0 = Date.now()
      const r = await dstore(['get', bigCid, '--global', `/ip4/127.0.0.1/tcp/${port}`, '--connect-timeout', '1000'], { env })
      assert.equal(r.code, 1)
      assert.equal(r.out, '')
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, /unreachable/)
      assert.ok(Date.now() - t0 < 15_000)
    })

    it('no Global configured at all: exit 1, one line saying to start `dstore global`', async function () {
      const empty = await tempDir('dstore-cli-empty-')
      try {
        const r = await dstore(['ls'], { env: { DSTORE_REPO: empty.path } })
        assert.equal(r.code, 1)
        assert.equal(r.out, '')
        assert.match(r.stderr, ONE_LINE)
        assert.match(r.stderr, /start one with `dstore global`/)
      } finally { await empty.cleanup() }
    })
  })

  describe('repl', function () {
    it('runs a scripted session from piped stdin with the original commands and messages', async function () {
      const v1 = `repl value one ${Date.now()}`
      const put = await dstore(['put', '-'], { env, input: v1 })
      assert.equal(put.code, 0, put.stderr)
      const c1 = put.out.trim()
      const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
      const v2 = `repl value two ${Date.now()}`
      const v3 = `repl value three ${Date.now()}`
      const v4 = `repl value four ${Date.now()}`
      const [c2, c3, c4] = [v2, v3, v4].map(v => blake3Cid(enc(v)))
      const script = [
        `GET ${c1}`, // not in this Local yet: from Global
        `GET ${c1}`, // now cached
        `SET ${v2}`,
        `PUT ${v3}`,
        `put ${v4}`,
        `OUT ${c2}`,
        `out ${c1}`,
        'STATS',
        'frobnicate',
        `DEL ${c1}`,
        `GET ${c1}`,
        `REM ${c3}`,
        `rem ${c4}`,
        '.exit',
        `GET ${c2}` // after .exit: never run
      ].join('\n') + '\n'
      const r = await dstore(['repl'], { env, input: script })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stderr, '')
      const lines = r.out.split('\n')
      assert.match(lines[0], new RegExp(`^dstore v${VERSION.replace(/\./g, '\\.')} \\(uid: 12D3Koo[1-9A-HJ-NP-Za-km-z]+\\)$`))
      const session = lines.slice(3)
      assert.deepEqual(session.slice(0, 7), [
        `global: ${c1} -> ${v1}     (Updating Local)`,
        `local: ${c1} -> ${v1}`,
        `Database updated: ${c2}`,
        `Database updated: ${c3}`,
        `Database updated: ${c4}`,
        `local: ${c2} -> ${v2}`,
        `local: ${c1} -> ${v1}`
      ])
      assert.match(session[7], /^hits: \d+, misses: \d+, evictions: \d+, invalidations: \d+, cached: \d+ values/)
      assert.match(session[8], /^dstore error: Unknown command!/)
      assert.match(session[9], /^Global mapping removed!/)
      assert.equal(session[10], "dstore error: Key-Value mapping doesn't exist")
      assert.match(session[11], /^Global mapping removed!/)
      assert.match(session[12], /^Global mapping removed!/)
      assert.deepEqual(session.slice(13), [''], 'nothing after .exit')
      // The DELs reached Global; the SET that was not deleted is there.
      const has = await dstore(['has', '--json', c1, c2, c3, c4], { env })
      assert.deepEqual(JSON.parse(has.out).map((row: { present: boolean }) => row.present), [false, true, false, false])
    })
  })

  describe('repl --json', function () {
    it('answers each command with one JSON document per line, errors included', async function () {
      const v = `repl json value ${Date.now()}`
      const c = blake3Cid(new TextEncoder().encode(v))
      const absent = blake3Cid(new TextEncoder().encode(`never stored ${Date.now()}`))
      const r = await dstore(['repl', '--json'], { env, input: [`SET ${v}`, `GET ${c}`, `GET ${absent}`, 'frobnicate', `DEL ${c}`, 'STATS', '.exit'].join('\n') + '\n' })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stderr, '')
      const docs = r.out.trim().split('\n').map(l => JSON.parse(l) as Record<string, any>)
      assert.equal(docs.length, 7, r.out)
      assert.equal(docs[0].version, VERSION)
      assert.match(docs[0].peerId, /^12D3Koo/)
      assert.deepEqual(docs[1], { op: 'set', cid: c, deduplicated: false })
      assert.deepEqual(docs[2], { op: 'get', cid: c, from: 'local', size: v.length, text: v })
      assert.equal(docs[3].error.name, 'NotFoundError')
      assert.equal(docs[4].error.code, 'ERR_USAGE')
      assert.deepEqual(docs[5], { op: 'del', cid: c, removed: true })
      assert.equal(docs[6].op, 'stats')
      assert.equal(typeof docs[6].hits, 'number')
    })
  })

  describe('id', function () {
    it('--repo X prints X\'s PeerId, the one client commands with --repo X connect as, and says which key file on stderr', async function () {
      const x = await tempDir('dstore-cli-id-')
      try {
        const [id, json] = await Promise.all([dstore(['id', '--repo', x.path]), dstore(['id', '--repo', x.path, '--json'])])
        assert.equal(id.code, 0, id.stderr)
        assert.match(id.out, /^12D3Koo\w+\n$/, 'stdout is the PeerId alone (for $(dstore id))')
        assert.match(id.stderr, ONE_LINE)
        assert.ok(id.stderr.includes(join(x.path, 'local.key')), id.stderr)
        assert.match(id.stderr, /--repo/)
        assert.deepEqual(JSON.parse(json.out), { peerId: id.out.trim(), keyFile: join(x.path, 'local.key'), repo: x.path })
        // The REPL's banner shows the identity a client with that repository uses.
        const repl = await dstore(['repl', '--repo', x.path, '--global', global.addr], { input: '.exit\n' })
        assert.equal(repl.code, 0, repl.stderr)
        assert.ok(repl.out.includes(`(uid: ${id.out.trim()})`), repl.out)
        const other = await dstore(['id', '--repo', repo.path])
        assert.notEqual(other.out, id.out, 'another repository, another PeerId')
      } finally { await x.cleanup() }
    })

    it('a read-only HOME: `dstore id` and `dstore global` say read-only file system, not ENOENT (as root: a read-only tmpfs)', async function () {
      if (process.getuid?.() !== 0) this.skip()
      const home = await tempDir('dstore-cli-rohome-')
      try {
        const mounted = await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', home.path]).then(() => true, () => false)
        if (!mounted) this.skip()
        try {
          const [id, g] = await Promise.all([dstore(['id'], { env: { HOME: home.path } }), dstore(['global', '--listen', '/ip4/127.0.0.1/tcp/0'], { env: { HOME: home.path } })])
          for (const r of [id, g]) {
            assert.equal(r.code, 1, r.stderr)
            assert.match(r.stderr, ONE_LINE)
            assert.match(r.stderr, /read-only file system/)
            assert.ok(!/ENOENT|no such file/.test(r.stderr), r.stderr)
          }
        } finally {
          await promisify(execFile)('umount', [home.path])
        }
      } finally { await home.cleanup() }
    })
  })

  describe('global', function () {
    it('a malformed or non-TCP --listen is a usage error: exit 2, one line', async function () {
      const dir = await tempDir('dstore-cli-badlisten-')
      try {
        const rs = await Promise.all(['not-a-multiaddr', '/ip4/127.0.0.1/udp/4001'].map(async l => await dstore(['global', '--repo', dir.path, '--listen', l])))
        for (const r of rs) {
          assert.equal(r.code, 2, r.stderr)
          assert.match(r.stderr, ONE_LINE)
          assert.match(r.stderr, /--listen/)
        }
        assert.match(rs[1].stderr, /TCP only/)
      } finally { await dir.cleanup() }
    })

    it('an address no interface has (192.0.2.1): exit 1, one line saying so, none of libp2p\'s configuration advice', async function () {
      const dir = await tempDir('dstore-cli-noaddr-')
      try {
        const r = await dstore(['global', '--repo', dir.path, '--listen', '/ip4/192.0.2.1/tcp/0', '--insecure-open-writes'])
        assert.equal(r.code, 1, r.stderr)
        assert.match(r.stderr, ONE_LINE)
        assert.match(r.stderr, /cannot listen on \/ip4\/192\.0\.2\.1\/tcp\/0: no network interface/)
        assert.ok(!/faultTolerance|transportManager|Error:/.test(r.stderr), r.stderr)
      } finally { await dir.cleanup() }
    })

    it('holds its store\'s lock: opening the store fails with StorageError.lockedBy = its pid, and `dstore verify` names that pid', async function () {
      // verify maps this error by that field, not by its message.
      const err = await createFsStore({ path: join(repo.path, 'store') }).then(async (s) => { await s.close(); return undefined }, (e: unknown) => e)
      assert.ok(err instanceof StorageError, String(err))
      assert.equal(err.lockedBy, global.proc.pid)
      const r = await dstore(['verify', '--repo', repo.path])
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, ONE_LINE)
      assert.ok(r.stderr.includes(`in use by process ${String(global.proc.pid)}; stop \`dstore global\` first`), r.stderr)
    })

    it('stops cleanly on SIGTERM and, restarted on the same repo, still has the values', async function () {
      const stopped = await stopGlobal(global, 'SIGTERM')
      assert.equal(stopped.code, 0)
      assert.match(stopped.stdout, /^Global stopped\.$/m)
      const before = global.peerId
      global = await startGlobal(['--repo', repo.path, '--listen', '/ip4/127.0.0.1/tcp/0'])
      assert.equal(global.peerId, before, 'same identity from the repo')
      const [stat, ls] = await Promise.all([dstore(['stat', '--json', bigCid], { env }), dstore(['ls'], { env })])
      assert.equal(stat.code, 0, stat.stderr)
      assert.deepEqual(JSON.parse(stat.out), { cid: bigCid, size: big.length })
      assert.equal(ls.code, 0, ls.stderr)
      assert.ok(ls.out.split('\n').includes(`${bigCid}\t${big.length}`), ls.out)
      const get = await dstore(['get', bigCid], { env })
      assert.equal(get.code, 0, get.stderr)
      assert.ok(Buffer.compare(get.stdout, Buffer.from(big)) === 0)
    })

    it('stops cleanly on SIGINT', async function () {
      const dir = await tempDir('dstore-cli-sigint-')
      try {
        const g = await startGlobal(['--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0'])
        const { code, stdout } = await stopGlobal(g, 'SIGINT')
        assert.equal(code, 0)
        assert.match(stdout, /^Global stopped\.$/m)
      } finally { await dir.cleanup() }
    })

    it('--json prints its peer id and addresses as the first stdout line', async function () {
      const dir = await tempDir('dstore-cli-json-')
      const proc = spawn(process.execPath, [BIN, 'global', '--json', '--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
      try {
        const first = await new Promise<string>((resolve, reject) => {
          let buf = ''
          proc.stdout.on('data', (b: Buffer) => { buf += b.toString('utf8'); const i = buf.indexOf('\n'); if (i >= 0) resolve(buf.slice(0, i)) })
          proc.on('exit', (code) => { reject(new Error(`exited ${String(code)}`)) })
        })
        const info = JSON.parse(first)
        assert.match(info.peerId, /^12D3Koo/)
        assert.ok(Array.isArray(info.multiaddrs) && info.multiaddrs.length > 0)
        assert.equal(info.repo, dir.path)
        assert.equal(info.gcPolicy, 'serving', 'a serving process\'s GC policy (src/peers/serving-gc.ts)')
        assert.match(info.blake3, expectedBackend(), 'the hash backend in force: the addon this install built, unless DSTORE_BLAKE3 forces another')
        assert.equal((await readFile(join(dir.path, 'global.addr'), 'utf8')).trim().split('\n')[0], info.multiaddrs[0])
      } finally {
        try {
          const exited = new Promise<number | null>(resolve => proc.once('exit', resolve))
          proc.kill('SIGTERM')
          assert.equal(await exited, 0, 'clean exit on SIGTERM right after the first line')
        } finally {
          await dir.cleanup()
        }
      }
    })

    it('--listen on a port that is taken: exit 1, one line, no stack trace', async function () {
      const server = createServer()
      const port = await new Promise<number>((resolve, reject) => {
        server.on('error', reject)
        server.listen(0, '127.0.0.1', () => { resolve((server.address() as { port: number }).port) })
      })
      const dir = await tempDir('dstore-cli-busy-')
      try {
        const r = await dstore(['global', '--repo', dir.path, '--listen', `/ip4/127.0.0.1/tcp/${port}`])
        assert.equal(r.code, 1)
        assert.match(r.stderr, ONE_LINE)
        assert.match(r.stderr, /address already in use/)
        assert.ok(!/\bat \S+ \(/.test(r.stderr), `no stack frames: ${r.stderr}`)
      } finally {
        server.close()
        await dir.cleanup()
      }
    })

    it('--handshake-timeout, --max-pending-per-ip, --max-pending: idle raw TCP sockets past the caps are closed, oldest first, and the rest outlive the default 3 s', async function () {
      const dir = await tempDir('dstore-cli-connlim-')
      const sockets: Socket[] = []
      const closed = new Set<number>()
      // Connected one after the other, so Global sees them in this order; each sends nothing.
      const open = async (port: number, n: number, from: string): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const index = sockets.length
          const s = connect({ port, host: '127.0.0.1', localAddress: from })
          sockets.push(s)
          s.on('error', () => {})
          s.on('close', () => { closed.add(index) })
          await new Promise(resolve => { s.once('connect', resolve); s.once('close', resolve) })
        }
      }
      const openIn = (from: number, to: number): number => { let n = 0; for (let i = from; i < to; i++) if (!closed.has(i)) n++; return n }
      const g = await startGlobal(['--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--handshake-timeout', '60000', '--max-pending-per-ip', '5', '--max-pending', '8'])
      try {
        const port = Number(/\/tcp\/(\d+)\//.exec(g.addr)?.[1])
        const t0 = Date.now()
        // 20 from 127.0.0.1 (the default cap per address is 64): its 5 newest stay.
        await open(port, 20, '127.0.0.1')
        await waitFor(() => openIn(0, 20) <= 5, 2000, '127.0.0.1 to keep at most 5')
        assert.equal(openIn(15, 20), 5, "127.0.0.1's newest 5 stay, its oldest are closed")
        // 5 more from 127.0.0.2, another source (every 127/8 address is loopback on Linux):
        // 10 pending in all, past --max-pending 8, so the 2 oldest of all are closed.
        await open(port, 5, '127.0.0.2')
        await waitFor(() => openIn(0, 25) <= 8, 2000, 'at most 8 pending in all')
        assert.equal(openIn(20, 25), 5, "127.0.0.2's 5 stay")
        assert.equal(openIn(17, 20), 3, 'the oldest of all (127.0.0.1\'s) were closed')
        // Past the default 3 s handshake deadline: with --handshake-timeout 60000 they are still open.
        await new Promise(resolve => setTimeout(resolve, Math.max(0, t0 + 4500 - Date.now())))
        assert.equal(openIn(0, 25), 8, 'still open after 4.5 s')
      } finally {
        for (const s of sockets) s.destroy()
        const { code } = await stopGlobal(g)
        await dir.cleanup()
        assert.equal(code, 0)
      }
    })

    it('a bad --handshake-timeout, --max-pending-per-ip or --max-pending is a usage error: exit 2, one line naming it', async function () {
      const dir = await tempDir('dstore-cli-badlim-')
      try {
        const bad = [['--handshake-timeout', 'soon'], ['--max-pending-per-ip', '0'], ['--max-pending', '-1'], ['--max-pending', '2.5']]
        const rs = await Promise.all(bad.map(async ([flag, value]) => await dstore(['global', '--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', flag, value])))
        rs.forEach((r, i) => {
          assert.equal(r.code, 2, r.stderr)
          assert.match(r.stderr, ONE_LINE)
          assert.ok(r.stderr.includes(bad[i][0]) && r.stderr.includes('1 or more'), r.stderr)
          assert.equal(r.out, '', 'it never started')
        })
      } finally { await dir.cleanup() }
    })

    it('with the default listen address and port 4001 taken, falls back to a free port and says so', async function () {
      const dir = await tempDir('dstore-cli-4001-')
      try {
        // Occupy 4001 ourselves if it is free; if something else already holds it, that will do.
        // Should that other holder let go just before Global starts, Global gets 4001: try again.
        for (let attempt = 1; ; attempt++) {
          const server: Server | undefined = await new Promise(resolve => {
            const s = createServer()
            s.once('error', () => { resolve(undefined) })
            s.listen(4001, '127.0.0.1', () => { resolve(s) })
          })
          try {
            const g = await startGlobal(['--repo', dir.path])
            const { code, stdout } = await stopGlobal(g)
            assert.equal(code, 0)
            if (server == null && g.addr.includes('/tcp/4001/') && attempt < 3) continue
            assert.match(stdout, /^Note: port 4001 is taken, so a free port was chosen$/m)
            assert.ok(!g.addr.includes('/tcp/4001/'), g.addr)
            break
          } finally {
            server?.close()
          }
        }
      } finally {
        await dir.cleanup()
      }
    })
  })
})
