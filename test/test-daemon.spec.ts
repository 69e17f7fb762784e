/**
 * `dstore local`, the Local daemon, and the CLI going through it: a real `dstore global` child,
 * a real `dstore local` child, real CLI children. Client commands find the daemon through
 * `<repo>/local.http` (DSTORE_REPO), exactly as a user's would.
 */
import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createLocal, type LocalPeer } from '../src/index.js'
import { pseudoRandom, tempDir } from './helpers.js'
import { waitFor } from './net.js'
import { blake3Cid, dstore, expectedBackend, freePort, ONE_LINE, startGlobal, startLocal, stopGlobal, stopLocal, type Daemon, type LocalDaemon, type Result } from './proc.js'

/** The daemon's cache figures, from GET /status. */
async function cacheOf (d: LocalDaemon): Promise<{ hits: number, misses: number, entries: number }> {
  const doc = await (await fetch(`${d.url}/status`)).json() as { cache: { hits: number, misses: number, entries: number } }
  return doc.cache
}

const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)

/** What a user sees of a command: exit code, stdout, stderr. */
const seen = (r: Result): { code: number | null, stdout: string, stderr: string } => ({ code: r.code, stdout: r.stdout.toString('base64'), stderr: r.stderr })

describe('dstore local (the Local daemon) and the CLI through it', function () {
  this.timeout(60_000)
  let repo: { path: string, cleanup: () => Promise<void> }
  let global: Daemon
  let daemon: LocalDaemon
  let env: Record<string, string>
  let file: string
  const value = pseudoRandom(300 * 1024 + 17, 31)
  const cid = blake3Cid(value)

  before(async function () {
    repo = await tempDir('dstore-daemon-')
    env = { DSTORE_REPO: repo.path }
    global = await startGlobal(['--repo', repo.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', 'off'])
    daemon = await startLocal(['--http', '127.0.0.1:0', '--cache-size', String(64 * 1024 * 1024)], env)
    file = join(repo.path, 'value.bin')
    await writeFile(file, value)
  })

  after(async function () {
    try {
      if (daemon != null) await stopLocal(daemon)
      if (global != null) await stopGlobal(global)
    } finally {
      await repo?.cleanup()
    }
  })

  it('--help: dstore local lists its options; every client command lists --no-daemon', async function () {
    const local = await dstore(['local', '--help'])
    assert.equal(local.code, 0)
    for (const word of ['--repo', '--global', '--cache-size', '--http <host:port|off>', '--http-token', '--json', '127.0.0.1:5081', 'local.http', '--listen <multiaddr...>', '/ip4/0.0.0.0/tcp/4002', 'off to serve no other Local', '--swarm <on|off>', 'Swarm:']) assert.ok(local.out.replace(/\s+/g, ' ').includes(word), word)
    const helps = await Promise.all(['put', 'get', 'cat', 'stat', 'has', 'rm', 'ls'].map(async c => await dstore([c, '--help'])))
    for (const h of helps) assert.match(h.out, /--no-daemon/)
  })

  it('writes its URL to <repo>/local.http, which answers GET /status as a Local', async function () {
    assert.equal((await readFile(join(repo.path, 'local.http'), 'utf8')).trim(), daemon.url)
    const doc = await (await fetch(`${daemon.url}/status`)).json() as { role: string, peerId: string }
    assert.equal(doc.role, 'local')
    assert.match(daemon.stdout(), new RegExp(`^PeerId: ${doc.peerId}$`, 'm'))
  })

  it('a second get of a value is a hit in the daemon\'s cache', async function () {
    const put = await dstore(['put', '--no-daemon', file], { env })
    assert.equal(put.code, 0, put.stderr)
    assert.equal(put.out.trim(), cid)
    const c0 = await cacheOf(daemon)
    const first = await dstore(['get', cid], { env })
    assert.equal(first.code, 0, first.stderr)
    assert.ok(Buffer.from(value).equals(first.stdout))
    const c1 = await cacheOf(daemon)
    assert.equal(c1.misses, c0.misses + 1, 'the first get misses')
    assert.equal(c1.entries, c0.entries + 1)
    const second = await dstore(['get', cid], { env })
    assert.ok(Buffer.from(value).equals(second.stdout))
    const c2 = await cacheOf(daemon)
    assert.equal(c2.hits, c1.hits + 1, 'the second get is a hit')
    assert.equal(c2.misses, c1.misses)
  })

  it('a Global named by --global or DSTORE_GLOBAL: the daemon is used only when it talks to that Global', async function () {
    const put = await dstore(['put', '--no-daemon', file], { env })
    assert.equal(put.code, 0, put.stderr)
    const other = await tempDir('dstore-daemon-other-')
    const b = await startGlobal(['--repo', other.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', 'off'])
    try {
      const c0 = await cacheOf(daemon)
      const viaDaemon = await dstore(['get', cid, '--global', global.addr], { env })
      assert.equal(viaDaemon.code, 0, viaDaemon.stderr)
      const c1 = await cacheOf(daemon)
      assert.ok(c1.hits + c1.misses > c0.hits + c0.misses, '--global naming the daemon\'s Global goes through the daemon')
      // Global B does not have the value: a command for B must ask B, not the daemon (which would find it on A).
      for (const r of [await dstore(['has', cid], { env: { ...env, DSTORE_GLOBAL: b.addr } }), await dstore(['has', cid, '--global', b.addr], { env })]) {
        assert.equal(r.code, 1, r.stderr)
        assert.match(r.out, /\tno$/m)
      }
    } finally {
      await stopGlobal(b)
      await other.cleanup()
    }
  })

  describe('output, exit codes and --json are the same with and without the daemon', function () {
    const absent = blake3Cid(new Uint8Array([7, 7, 7]))
    const cases: Array<{ name: string, args: () => string[], input?: Uint8Array }> = [
      { name: 'put FILE', args: () => ['put', file] },
      { name: 'put --json FILE and stdin', args: () => ['put', '--json', file] },
      { name: 'put - (stdin)', args: () => ['put', '-'], input: value },
      { name: 'get', args: () => ['get', cid] },
      { name: 'get --json', args: () => ['get', '--json', cid] },
      { name: 'get of a missing value', args: () => ['get', absent] },
      { name: 'cat --offset --length', args: () => ['cat', cid, '--offset', '1000', '--length', '70000'] },
      { name: 'cat --json', args: () => ['cat', '--json', cid, '--offset', '5'] },
      { name: 'cat past the end', args: () => ['cat', cid, '--offset', String(value.length + 1)] },
      { name: 'cat of a missing value', args: () => ['cat', absent] },
      { name: 'stat', args: () => ['stat', cid] },
      { name: 'stat --json', args: () => ['stat', '--json', cid] },
      { name: 'stat of a missing value', args: () => ['stat', absent] },
      { name: 'stat --json of a missing value (the error as JSON)', args: () => ['stat', '--json', absent] },
      { name: 'has', args: () => ['has', cid, absent] },
      { name: 'has --json', args: () => ['has', '--json', cid, absent] },
      { name: 'ls', args: () => ['ls'] },
      { name: 'ls --json', args: () => ['ls', '--json'] },
      { name: 'rm of a missing value', args: () => ['rm', absent] },
      { name: 'rm --json of a missing value', args: () => ['rm', '--json', absent] }
    ]
    let start: { hits: number, misses: number }
    before(async function () { start = await cacheOf(daemon) })

    for (const t of cases) {
      it(t.name, async function () {
        const [through, direct] = await Promise.all([
          dstore(t.args(), { env, input: t.input }),
          dstore([...t.args(), '--no-daemon'], { env, input: t.input })
        ])
        assert.deepEqual(seen(through), seen(direct))
      })
    }

    it('rm of a stored value (put again between)', async function () {
      const through = await dstore(['rm', '--json', cid], { env })
      assert.equal((await dstore(['put', file], { env })).code, 0)
      const direct = await dstore(['rm', '--json', '--no-daemon', cid], { env })
      assert.deepEqual(seen(through), seen(direct))
      assert.deepEqual(JSON.parse(through.out), [{ cid, removed: true }])
      assert.equal((await dstore(['put', file], { env })).code, 0)
    })

    it('(those commands did go through the daemon)', async function () {
      const after = await cacheOf(daemon)
      assert.ok(after.hits + after.misses > start.hits + start.misses + 3, JSON.stringify({ start, after }))
    })
  })

  it('rm through the daemon evicts the value from its cache and from every other Local\'s', async function () {
    const other: LocalPeer = await createLocal({ global: [global.addr] })
    try {
      await other.ready()
      await other.get(cid)
      assert.equal(await other.cache.has(cid), true)
      assert.equal((await dstore(['get', cid], { env })).code, 0) // cached by the daemon
      const before = await cacheOf(daemon)
      const r = await dstore(['rm', cid], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.out, `removed ${cid}\n`)
      assert.equal((await cacheOf(daemon)).entries, before.entries - 1, 'the daemon evicted it')
      await waitFor(async () => !(await other.cache.has(cid)), 5000, 'the other Local evicted it')
      assert.equal((await dstore(['has', cid], { env })).code, 1)
    } finally {
      await other.stop()
    }
    assert.equal((await dstore(['put', file], { env })).code, 0)
  })

  it('a stale local.http (nothing listening there) or one naming something else: the commands fall back to a Local of their own', async function () {
    const stale = await tempDir('dstore-daemon-stale-')
    try {
      await writeFile(join(stale.path, 'global.addr'), global.addr + '\n')
      const senv = { DSTORE_REPO: stale.path }
      await writeFile(join(stale.path, 'local.http'), `http://127.0.0.1:${await freePort()}\n`)
      const r = await dstore(['stat', '--json', cid], { env: senv })
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(JSON.parse(r.out), { cid, size: value.length })
      await writeFile(join(stale.path, 'local.http'), 'not a url\n')
      assert.equal((await dstore(['get', cid], { env: senv })).code, 0)
    } finally {
      await stale.cleanup()
    }
  })

  it('a second daemon for the same repository refuses to start (exit 1, one line naming the running one); the first keeps its local.http', async function () {
    const r = await dstore(['local', '--http', '127.0.0.1:0'], { env })
    assert.equal(r.code, 1, r.stderr)
    assert.equal(r.stderr, `dstore: a Local daemon already runs for ${repo.path} at ${daemon.url} (stop it first, or give another --repo)\n`)
    assert.equal((await readFile(join(repo.path, 'local.http'), 'utf8')).trim(), daemon.url)
    assert.equal((await fetch(`${daemon.url}/status`)).status, 200)
  })

  it('a corrupt <repo>/local.key: exit 1, one line about the key (not "bad Global address")', async function () {
    const other = await tempDir('dstore-daemon-key-')
    try {
      await writeFile(join(other.path, 'local.key'), 'garbage\n')
      const r = await dstore(['local', '--http', 'off', '--global', global.addr], { env: { DSTORE_REPO: other.path } })
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /^dstore: identity key .*local\.key is corrupt[^\n]*\n$/)
    } finally {
      await other.cleanup()
    }
  })

  describe('the swarm flags: --listen and --swarm', function () {
    /** Runs `fn` with a fresh repository naming the test's Global. */
    async function withRepo<T> (fn: (env: Record<string, string>, path: string) => Promise<T>): Promise<T> {
      const other = await tempDir('dstore-daemon-swarm-')
      try {
        await writeFile(join(other.path, 'global.addr'), global.addr + '\n')
        return await fn({ DSTORE_REPO: other.path }, other.path)
      } finally {
        await other.cleanup()
      }
    }
    type SwarmStatus = { enabled: boolean, addrs: string[], bytesFromPeers: number, bytesToPeers: number, peersUsed: number, badRanges: number }
    const swarmOf = async (d: LocalDaemon): Promise<SwarmStatus & { peerId: string }> => {
      const doc = await (await fetch(`${d.url}/status`)).json() as { peerId: string, swarm: SwarmStatus }
      return { ...doc.swarm, peerId: doc.peerId }
    }
    /** A TCP connection to a multiaddr's /ip4/…/tcp/… part opens (something listens there). */
    const tcpOpens = async (addr: string): Promise<boolean> => {
      const m = /^\/ip4\/([^/]+)\/tcp\/(\d+)\//.exec(addr)
      assert.ok(m, addr)
      const { connect } = await import('node:net')
      return await new Promise(resolve => {
        const sock = connect({ host: m[1], port: Number(m[2]) }, () => { sock.destroy(); resolve(true) })
        sock.once('error', () => { resolve(false) })
      })
    }

    it('bad values: one dstore: line, exit 2, nothing started', async function () {
      await withRepo(async (env, path) => {
        const cases: Array<[string[], RegExp]> = [
          [['--swarm', 'maybe'], /--swarm <on\|off>.*'maybe' is invalid\. give on or off/],
          [['--listen', '/ip4/1.2.3/tcp/4'], /--listen <multiaddr\.\.\.>.*'\/ip4\/1\.2\.3\/tcp\/4' is invalid\. not a multiaddr/],
          [['--listen', 'garbage'], /'garbage' is invalid\. not a multiaddr/],
          [['--listen', '/ip4/127.0.0.1/udp/4002'], /A Local listens on TCP only/],
          [['--listen', '/ip4/127.0.0.1/tcp/70000'], /is invalid/],
          [['--listen', 'off', '/ip4/127.0.0.1/tcp/0'], /off means no listener: give it alone/],
          [['--listen', '/ip4/127.0.0.1/tcp/0', '--listen', 'off'], /off means no listener: give it alone/]
        ]
        for (const [args, why] of cases) {
          const r = await dstore(['local', '--http', '127.0.0.1:0', ...args], { env })
          assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
          assert.match(r.stderr, ONE_LINE, args.join(' '))
          assert.match(r.stderr, why, args.join(' '))
          assert.equal(r.out, '', args.join(' '))
        }
        assert.equal(await exists(join(path, 'local.http')), false, 'no daemon started')
      })
    })

    it('an explicit --listen address that is taken: exit 1, one line naming it (no fallback)', async function () {
      const { createServer } = await import('node:net')
      const blocker = createServer()
      await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
      const port = (blocker.address() as { port: number }).port
      try {
        await withRepo(async (env, path) => {
          const r = await dstore(['local', '--http', '127.0.0.1:0', '--listen', `/ip4/127.0.0.1/tcp/${port}`], { env })
          assert.equal(r.code, 1, r.stderr)
          assert.equal(r.stderr, `dstore: cannot listen for the swarm on /ip4/127.0.0.1/tcp/${port}: address already in use (use another port, or /tcp/0 for a free one)\n`)
          assert.equal(await exists(join(path, 'local.http')), false)
        })
      } finally {
        await new Promise(resolve => blocker.close(resolve))
      }
    })

    it('the swarm on (the default): its dialable addresses, with the PeerId, in the banner and in /status', async function () {
      await withRepo(async (env) => {
        const d = await startLocal(['--http', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/tcp/0'], env)
        try {
          const sw = await swarmOf(d)
          assert.equal(sw.enabled, true)
          assert.equal(sw.addrs.length, 2, String(sw.addrs))
          for (const a of sw.addrs) {
            assert.match(a, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/[1-9]\\d*/p2p/${sw.peerId}$`))
            assert.equal(await tcpOpens(a), true, `something listens on ${a}`)
          }
          assert.deepEqual([...d.stdout().matchAll(/^Swarm: (\S+)$/gm)].map(m => m[1]), sw.addrs)
          assert.equal(sw.bytesFromPeers, 0)
          assert.equal(sw.badRanges, 0)
        } finally {
          assert.equal(await stopLocal(d), 0)
        }
      })
    })

    it('--swarm off: /status says enabled false with no address, and so do the banner and --json', async function () {
      await withRepo(async (env) => {
        const d = await startLocal(['--http', '127.0.0.1:0', '--swarm', 'off'], env)
        try {
          const sw = await swarmOf(d)
          assert.equal(sw.enabled, false)
          assert.deepEqual(sw.addrs, [])
          assert.match(d.stdout(), /^Swarm: off$/m)
          assert.doesNotMatch(d.stdout(), /^Note:/m)
        } finally {
          assert.equal(await stopLocal(d), 0)
        }
        // With --listen too: not listened on, and a Note says so. --json has the same figures.
        const j = await startLocal(['--json', '--http', '127.0.0.1:0', '--swarm', 'off', '--listen', '/ip4/127.0.0.1/tcp/0'], env)
        try {
          assert.deepEqual((JSON.parse(j.stdout()) as { swarm: unknown }).swarm, { enabled: false, addrs: [] })
          assert.deepEqual(await swarmOf(j).then(s => [s.enabled, s.addrs]), [false, []])
        } finally {
          assert.equal(await stopLocal(j), 0)
        }
        const n = await startLocal(['--http', '127.0.0.1:0', '--swarm', 'off', '--listen', '/ip4/127.0.0.1/tcp/0'], env)
        try {
          assert.match(n.stdout(), /^Note: --swarm off: the --listen addresses are not listened on$/m)
        } finally {
          assert.equal(await stopLocal(n), 0)
        }
      })
    })

    it('--listen off: the swarm stays on but serves nobody (no address); --swarm on is the default spelled out', async function () {
      await withRepo(async (env) => {
        const d = await startLocal(['--http', '127.0.0.1:0', '--listen', 'off', '--swarm', 'on'], env)
        try {
          const sw = await swarmOf(d)
          assert.equal(sw.enabled, true)
          assert.deepEqual(sw.addrs, [])
          assert.match(d.stdout(), /^Swarm: on, serving no other Local \(--listen off\)$/m)
        } finally {
          assert.equal(await stopLocal(d), 0)
        }
      })
    })

    it('three daemons: the second takes a large value from the first over its --listen address; a --swarm off one takes it all from Global', async function () {
      const dirs = await tempDir('dstore-daemon-swarm3-')
      const started: LocalDaemon[] = []
      let g: Daemon | undefined
      try {
        g = await startGlobal(['--repo', join(dirs.path, 'g'), '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0'])
        const gUrl = /^HTTP: (http:\/\/\S+) \(URL in /m.exec(g.stdout())?.[1] ?? ''
        const gStatus = async (): Promise<{ swarm: { values: number, sources: number }, bytes: { served: Record<string, number> } }> => await (await fetch(`${gUrl}/status`)).json() as any
        const local = async (name: string, args: string[] = []): Promise<LocalDaemon> => {
          const d = await startLocal(['--http', '127.0.0.1:0', '--global', g!.addr, ...args], { DSTORE_REPO: join(dirs.path, name) })
          started.push(d)
          return d
        }
        const a = await local('a')
        const b = await local('b')
        const c = await local('c', ['--swarm', 'off'])
        const big = pseudoRandom(9 * 1024 * 1024 + 5, 77)
        // Put through A: A holds it (cached), and tells Global so.
        const put = await fetch(`${a.url}/ipfs`, { method: 'POST', body: big })
        assert.equal(put.status, 201)
        const key = (await put.json() as { cid: string }).cid
        await waitFor(async () => (await gStatus()).swarm.sources >= 1, 10_000, "Global's tracker to know A holds it")
        const served0 = (await gStatus()).bytes.served.local ?? 0
        assert.deepEqual(new Uint8Array(await (await fetch(`${b.url}/ipfs/${key}`)).arrayBuffer()), big)
        const sb = await swarmOf(b)
        const sa = await swarmOf(a)
        assert.equal(sb.bytesFromPeers, big.length, 'B took every byte from A')
        assert.equal(sb.peersUsed, 1)
        assert.equal(sa.bytesToPeers, big.length, 'A served them')
        assert.equal(((await gStatus()).bytes.served.local ?? 0) - served0, 0, 'Global sent none of it to B')
        // C, with the swarm off, gets it from Global alone.
        assert.deepEqual(new Uint8Array(await (await fetch(`${c.url}/ipfs/${key}`)).arrayBuffer()), big)
        const sc = await swarmOf(c)
        assert.equal(sc.enabled, false)
        assert.equal(sc.bytesFromPeers, 0)
        assert.equal(((await gStatus()).bytes.served.local ?? 0) - served0, big.length, 'Global sent C the whole value')
      } finally {
        for (const d of started) await stopLocal(d)
        if (g !== undefined) await stopGlobal(g)
        await dirs.cleanup()
      }
    })

    it('the default swarm port (4002) taken: a free port, and a Note line saying so', async function () {
      // Whatever holds 4002 now (maybe nothing): the test holds it, on every interface, for the daemon's start.
      const { createServer } = await import('node:net')
      const blocker = createServer()
      const held = await new Promise<boolean>(resolve => { blocker.once('error', () => { resolve(false) }); blocker.listen(4002, '0.0.0.0', () => { resolve(true) }) })
      try {
        await withRepo(async (env) => {
          const d = await startLocal(['--http', '127.0.0.1:0'], env, { defaultListen: true })
          try {
            assert.match(d.stdout(), /^Note: swarm port 4002 is taken, so a free port was chosen$/m)
            const sw = await swarmOf(d)
            assert.ok(sw.addrs.length >= 1, String(sw.addrs))
            // 0.0.0.0: one address per interface, all on the same free port, loopback among them.
            const ports = new Set(sw.addrs.map(a => /\/tcp\/(\d+)\//.exec(a)?.[1]))
            assert.equal(ports.size, 1, String(sw.addrs))
            assert.notEqual([...ports][0], '4002')
            const loopback = sw.addrs.find(a => a.startsWith('/ip4/127.0.0.1/'))
            assert.ok(loopback, String(sw.addrs))
            assert.equal(await tcpOpens(loopback), true)
          } finally {
            assert.equal(await stopLocal(d), 0)
          }
        })
      } finally {
        if (held) await new Promise(resolve => blocker.close(resolve))
      }
    })
  })

  describe('stopping, crashing, restarting', function () {
    it('SIGTERM stops it cleanly: exit 0, "Local stopped.", local.http removed; the CLI then falls back', async function () {
      const code = await stopLocal(daemon)
      assert.equal(code, 0, daemon.stderr())
      assert.match(daemon.stdout(), /^Local stopped\.$/m)
      assert.equal(daemon.stderr(), '')
      assert.equal(await exists(join(repo.path, 'local.http')), false)
      const r = await dstore(['get', cid], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.ok(Buffer.from(value).equals(r.stdout))
    })

    it('killed (SIGKILL), it leaves local.http behind: the CLI falls back; a new daemon takes over the file', async function () {
      const d = await startLocal(['--http', '127.0.0.1:0'], env)
      const port = new URL(d.url).port
      await stopLocal(d, 'SIGKILL')
      assert.equal((await readFile(join(repo.path, 'local.http'), 'utf8')).trim(), d.url, 'left behind')
      const r = await dstore(['stat', cid], { env })
      assert.equal(r.code, 0, r.stderr)
      daemon = await startLocal(['--http', `127.0.0.1:${port}`], env)
      assert.equal((await readFile(join(repo.path, 'local.http'), 'utf8')).trim(), daemon.url)
    })

    it('a daemon whose writes need a token: put and rm run a Local of their own (same output), reads still go through it', async function () {
      const other = await tempDir('dstore-daemon-token-')
      try {
        await writeFile(join(other.path, 'global.addr'), global.addr + '\n')
        await writeFile(join(other.path, 'token'), 'sekret\n')
        const oenv = { DSTORE_REPO: other.path }
        const d = await startLocal(['--http', '127.0.0.1:0', '--http-token', join(other.path, 'token')], oenv)
        try {
          const v = pseudoRandom(1000, 41)
          const put = await dstore(['put', '-'], { env: oenv, input: v })
          assert.equal(put.code, 0, put.stderr)
          assert.equal(put.out, blake3Cid(v) + '\n')
          const c0 = await cacheOf(d)
          assert.equal((await dstore(['get', blake3Cid(v)], { env: oenv })).code, 0)
          assert.equal((await cacheOf(d)).misses, c0.misses + 1, 'the get went through the daemon')
          const rm = await dstore(['rm', blake3Cid(v)], { env: oenv })
          assert.equal(rm.code, 0, rm.stderr)
          assert.equal(rm.out, `removed ${blake3Cid(v)}\n`)
        } finally {
          assert.equal(await stopLocal(d), 0)
        }
      } finally {
        await other.cleanup()
      }
    })

    it('--max-blob-size: a larger body is 413 on the daemon\'s HTTP (declared or chunked), nothing stored; one within it is stored', async function () {
      const other = await tempDir('dstore-daemon-max-')
      try {
        await writeFile(join(other.path, 'global.addr'), global.addr + '\n')
        const d = await startLocal(['--http', '127.0.0.1:0', '--max-blob-size', '1000'], { DSTORE_REPO: other.path })
        try {
          const big = pseudoRandom(2000, 43)
          const declared = await fetch(`${d.url}/ipfs`, { method: 'POST', body: big })
          assert.equal(declared.status, 413)
          assert.equal(((await declared.json()) as { error: { code: string } }).error.code, 'ERR_TOO_LARGE')
          const chunked = await fetch(`${d.url}/ipfs`, { method: 'POST', body: new Blob([big]).stream(), duplex: 'half' } as RequestInit)
          assert.equal(chunked.status, 413)
          const has = await dstore(['has', '--no-daemon', blake3Cid(big)], { env: { DSTORE_REPO: other.path } })
          assert.equal(has.out, `${blake3Cid(big)}\tno\n`, 'nothing stored')
          const ok = await fetch(`${d.url}/ipfs`, { method: 'POST', body: big.subarray(0, 1000) })
          assert.equal(ok.status, 201)
        } finally {
          assert.equal(await stopLocal(d), 0)
        }
      } finally {
        await other.cleanup()
      }
    })

    it('--json prints one document; --http off serves no HTTP and writes no local.http', async function () {
      const other = await tempDir('dstore-daemon-json-')
      try {
        await writeFile(join(other.path, 'global.addr'), global.addr + '\n')
        const d = await startLocal(['--json', '--http', 'off', '--cache-size', '1000000'], { DSTORE_REPO: other.path })
        const doc = JSON.parse(d.stdout()) as Record<string, unknown>
        assert.deepEqual(Object.keys(doc).sort(), ['blake3', 'cacheSize', 'gcPolicy', 'global', 'http', 'peerId', 'repo', 'swarm'])
        assert.equal(doc.http, null)
        // A serving process's GC policy (src/peers/serving-gc.ts), as dstore global's.
        assert.equal(doc.gcPolicy, 'serving')
        assert.match(String(doc.blake3), expectedBackend(), 'the hash backend in force: the addon this install built, unless DSTORE_BLAKE3 forces another')
        // The swarm on its (test) listener: the address other Locals dial, with this PeerId.
        const swarm = doc.swarm as { enabled: boolean, addrs: string[] }
        assert.equal(swarm.enabled, true)
        assert.equal(swarm.addrs.length, 1)
        assert.match(swarm.addrs[0], new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/[1-9]\\d*/p2p/${String(doc.peerId)}$`))
        assert.equal(doc.cacheSize, 1000000)
        assert.deepEqual(doc.global, [global.addr])
        assert.equal(await exists(join(other.path, 'local.http')), false)
        assert.equal(await stopLocal(d), 0)
        assert.equal(d.stdout().split('\n').filter(l => l !== '').length, 1, 'nothing but the document')
      } finally {
        await other.cleanup()
      }
    })

    it('node\'s own --heap-growing-percent wins over the serving GC policy (gcPolicy "node")', async function () {
      const other = await tempDir('dstore-daemon-gc-')
      try {
        await writeFile(join(other.path, 'global.addr'), global.addr + '\n')
        const d = await startLocal(['--json', '--http', 'off', '--swarm', 'off'], { DSTORE_REPO: other.path }, { nodeArgs: ['--heap-growing-percent=0'] })
        assert.equal((JSON.parse(d.stdout()) as { gcPolicy: string }).gcPolicy, 'node')
        assert.equal(await stopLocal(d), 0)
      } finally {
        await other.cleanup()
      }
    })

    it('the default port taken: a free port, and a Note line saying so', async function () {
      // Whatever holds 5081 now (maybe nothing): the test holds it for the daemon's start.
      const { createServer } = await import('node:net')
      const blocker = createServer()
      const held = await new Promise<boolean>(resolve => { blocker.once('error', () => { resolve(false) }); blocker.listen(5081, '127.0.0.1', () => { resolve(true) }) })
      const other = await tempDir('dstore-daemon-port-')
      try {
        await writeFile(join(other.path, 'global.addr'), global.addr + '\n')
        const d = await startLocal([], { DSTORE_REPO: other.path })
        try {
          assert.notEqual(new URL(d.url).port, '5081')
          assert.match(d.stdout(), /^Note: HTTP port 5081 is taken, so a free port was chosen$/m)
        } finally {
          assert.equal(await stopLocal(d), 0)
        }
      } finally {
        if (held) await new Promise(resolve => blocker.close(resolve))
        await other.cleanup()
      }
    })
  })
})
