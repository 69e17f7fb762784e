/**
 * Who may write to and read from a Global: the writer and reader allow-lists, the refusal to
 * start with open writes on a non-loopback address, re-reading the list files, and the CLI's
 * flags, `dstore id` and SIGHUP. Real peers on 127.0.0.1, each with its own persistent identity
 * (a repository folder), so the PeerId checked is the one its handshake proves.
 */
import { strict as assert } from 'node:assert'
import { rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  createGlobal, createLocal, repoPeerId, READERS_FILE, WRITERS_FILE,
  type GlobalPeer, type GlobalOptions, type LocalPeer
} from '../src/index.js'
import { collect as collectBytes, pseudoRandom } from './helpers.js'
import { Cleanup, KiB, MiB, assertBytes, portOf, rejectsWith, waitFor } from './net.js'
import { ONE_LINE, dstore, startGlobal, stopGlobal } from './proc.js'

describe('access: writer and reader allow-lists', function () {
  const c = new Cleanup()
  let writerRepo: string
  let otherRepo: string
  let writerId: string
  let otherId: string

  before(async function () {
    writerRepo = await c.dir('dstore-acl-writer-')
    otherRepo = await c.dir('dstore-acl-other-')
    writerId = await repoPeerId(writerRepo)
    otherId = await repoPeerId(otherRepo)
  })
  after(async function () { await c.run() })

  async function global (options: Partial<GlobalOptions> = {}, lines: string[] = []): Promise<GlobalPeer> {
    const g = await createGlobal({ repo: await c.dir('dstore-acl-global-'), sync: false, log: (l) => lines.push(l), ...options })
    c.add(async () => { await g.stop() })
    return g
  }

  async function local (g: GlobalPeer, repo: string): Promise<LocalPeer> {
    const l = await createLocal({ global: g.multiaddrs, repo, connectTimeout: 5000 })
    c.add(async () => { await l.stop() })
    await l.ready()
    return l
  }

  it("a Local's PeerId is the one in its repository's local.key (mode 0600), the same each time it is loaded", async function () {
    const g = await global()
    const l = await local(g, writerRepo)
    assert.equal(l.peerId, writerId)
    assert.equal((await stat(join(writerRepo, 'local.key'))).mode & 0o777, 0o600)
    assert.notEqual(writerId, otherId)
  })

  it('writes only from listed writers: PUT (inline and streamed) and DELETE are refused with PermissionDeniedError, and nothing is stored', async function () {
    const lines: string[] = []
    const g = await global({ allowWriters: [writerId] }, lines)
    const writer = await local(g, writerRepo)
    const other = await local(g, otherRepo)

    const small = pseudoRandom(1000, 1)
    const big = pseudoRandom(3 * MiB + 17, 2) // a blob stream, not an inline PUT
    await rejectsWith(other.put(small), 'PermissionDeniedError')
    await rejectsWith(other.put(chunks(big, 64 * KiB)), 'PermissionDeniedError')
    const smallCid = await writer.put(small)
    assert.equal(await g.has(smallCid), true)
    const bigCid = await writer.put(big)
    assert.equal((await g.stat(bigCid)).size, big.length)
    // What the other peer tried to store went nowhere; Global holds exactly the writer's two values.
    const listed: string[] = []
    for await (const e of g.list()) listed.push(e.cid.toString())
    assert.deepEqual(listed.sort(), [smallCid.toString(), bigCid.toString()].sort())

    // Reads stay open: the other peer can read what the writer stored, verified.
    assertBytes(await other.get(bigCid), big)
    // But it may not delete, and the value survives its attempt.
    await rejectsWith(other.delete(smallCid), 'PermissionDeniedError')
    assert.equal(await g.has(smallCid), true)
    assert.equal(await writer.delete(smallCid), true)
    assert.equal(await g.has(smallCid), false)

    // Logged once per peer and access, not once per request.
    const refusals = lines.filter(l => l.includes(otherId))
    assert.equal(refusals.length, 1, lines.join('\n'))
    assert.match(refusals[0], /refused write access/)
  })

  it('reads only from listed readers (and writers) when a reader list is set: GET, cat, STAT and LIST are refused', async function () {
    const readerRepo = await c.dir('dstore-acl-reader-')
    const readerId = await repoPeerId(readerRepo)
    const lines: string[] = []
    const g = await global({ allowWriters: [writerId], allowReaders: [readerId] }, lines)
    const writer = await local(g, writerRepo)
    const reader = await local(g, readerRepo)
    const other = await local(g, otherRepo)

    const small = pseudoRandom(200, 3)
    const big = pseudoRandom(2 * MiB + 5, 4)
    const smallCid = await writer.put(small)
    const bigCid = await writer.put(big)
    // Writers may read what they write.
    await writer.stop()
    const writerAgain = await local(g, writerRepo)
    assertBytes(await writerAgain.get(bigCid), big)

    assertBytes(await reader.get(smallCid), small)
    assertBytes(await collectBytes(reader.cat(bigCid, { offset: 10, length: 1000 })), big.subarray(10, 1010))
    await rejectsWith(reader.put(pseudoRandom(10, 5)), 'PermissionDeniedError')

    await rejectsWith(other.get(smallCid), 'PermissionDeniedError')
    await rejectsWith(other.get(bigCid), 'PermissionDeniedError')
    await rejectsWith(collectBytes(other.cat(bigCid, { offset: 1, length: 10 })), 'PermissionDeniedError')
    await rejectsWith(other.stat(smallCid), 'PermissionDeniedError')
    await rejectsWith(other.has(smallCid), 'PermissionDeniedError')
    await rejectsWith((async () => { for await (const _ of other.list()) {} })(), 'PermissionDeniedError')
    assert.equal(other.stats().cacheEntries, 0, 'nothing refused was cached')
    assert.equal(lines.filter(l => l.includes(otherId) && /refused read access/.test(l)).length, 1, lines.join('\n'))
  })

  it('refuses to start on a non-loopback address with no writer list (ConfigError), and starts with a list or --insecure-open-writes', async function () {
    const repo = await c.dir('dstore-acl-public-')
    await assert.rejects(createGlobal({ repo, listen: ['/ip4/0.0.0.0/tcp/0'], sync: false }), (err: Error & { code?: string }) => {
      assert.equal(err.name, 'ConfigError')
      assert.equal(err.code, 'ERR_CONFIG')
      assert.match(err.message, /not loopback-only/)
      assert.match(err.message, /--allow-writer/)
      return true
    })
    // Nothing was started: no address file.
    await assert.rejects(stat(join(repo, 'global.addr')), { code: 'ENOENT' })
    await assert.rejects(createGlobal({ repo, listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/0.0.0.0/tcp/0'], sync: false }), { name: 'ConfigError' })

    const listed = await global({ listen: ['/ip4/0.0.0.0/tcp/0'], allowWriters: [writerId] })
    assert.deepEqual([...(listed.accessLists.writers ?? [])], [writerId])
    const open = await global({ listen: ['/ip4/0.0.0.0/tcp/0'], insecureOpenWrites: true })
    assert.equal(open.accessLists.writers, undefined)
    const anyone = await local(open, otherRepo)
    const cid = await anyone.put(pseudoRandom(100, 6))
    assert.equal(await open.has(cid), true)
    // Loopback alone (the default) needs no list.
    const loop = await global({ listen: ['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0'] })
    assert.equal(loop.accessLists.writers, undefined)
  })

  it('rejects a malformed PeerId in the options or in the list file with a ConfigError naming it', async function () {
    const repo = await c.dir('dstore-acl-bad-')
    await assert.rejects(createGlobal({ repo, allowWriters: ['not-a-peer-id'], sync: false }), (err: Error) => {
      assert.equal(err.name, 'ConfigError')
      assert.match(err.message, /--allow-writer: "not-a-peer-id" is not a PeerId/)
      return true
    })
    await writeFile(join(repo, WRITERS_FILE), `# writers\n${writerId}\n\nQmNotReally  # a typo\n`)
    await assert.rejects(createGlobal({ repo, sync: false }), (err: Error) => {
      assert.equal(err.name, 'ConfigError')
      assert.ok(err.message.includes(`${WRITERS_FILE}:4`), err.message)
      return true
    })
  })

  it('re-reads the list files on reloadAccess: a writer is added and then revoked on a live connection; a bad file keeps the lists in force', async function () {
    const repo = await c.dir('dstore-acl-file-')
    await writeFile(join(repo, WRITERS_FILE), `${writerId}  # the first writer\n`)
    const lines: string[] = []
    const g = await createGlobal({ repo, sync: false, log: (l) => lines.push(l) })
    c.add(async () => { await g.stop() })
    const other = await local(g, otherRepo)
    await rejectsWith(other.put(pseudoRandom(50, 7)), 'PermissionDeniedError')

    await writeFile(join(repo, WRITERS_FILE), `${writerId}\n${otherId}\n`)
    const lists = await g.reloadAccess()
    assert.deepEqual([...(lists.writers ?? [])].sort(), [writerId, otherId].sort())
    const cid = await other.put(pseudoRandom(50, 7))
    assert.equal(await g.has(cid), true)

    // A file that does not parse: the reload fails and the previous lists stay.
    await writeFile(join(repo, WRITERS_FILE), 'garbage\n')
    await assert.rejects(g.reloadAccess(), { name: 'ConfigError' })
    await other.put(pseudoRandom(60, 8))

    // Revoked: the same connection is refused from the next request on, and logged again.
    await writeFile(join(repo, WRITERS_FILE), `${writerId}\n`)
    await g.reloadAccess()
    await rejectsWith(other.put(pseudoRandom(70, 9)), 'PermissionDeniedError')
    assert.equal(lines.filter(l => l.includes(otherId)).length, 2, lines.join('\n'))

    // An empty reader file means nobody but the writers may read. (What `other` put itself is
    // in its own cache; a value it never had must come from Global, which now refuses.)
    await writeFile(join(repo, READERS_FILE), '# nobody\n')
    await g.reloadAccess()
    const unseen = await g.put(pseudoRandom(80, 11))
    await rejectsWith(other.get(unseen), 'PermissionDeniedError')
  })

  it('a reload that would leave a non-loopback Global with no writer list is refused: the lists in force stay', async function () {
    const repo = await c.dir('dstore-acl-public-reload-')
    await writeFile(join(repo, WRITERS_FILE), `${writerId}\n`)
    const g = await createGlobal({ repo, sync: false, listen: ['/ip4/0.0.0.0/tcp/0'] })
    c.add(async () => { await g.stop() })
    const other = await local(g, otherRepo)
    const writer = await local(g, writerRepo)
    // Deleting the file would mean "no list": on this address, open writes. Refused.
    await rm(join(repo, WRITERS_FILE))
    await assert.rejects(g.reloadAccess(), (err: Error) => {
      assert.equal(err.name, 'ConfigError')
      assert.match(err.message, /refusing to reload/)
      return true
    })
    await rejectsWith(other.put(pseudoRandom(40, 20)), 'PermissionDeniedError')
    await writer.put(pseudoRandom(40, 21))
    // An empty file is the way to allow nobody.
    await writeFile(join(repo, WRITERS_FILE), '')
    await g.reloadAccess()
    await rejectsWith(writer.put(pseudoRandom(40, 22)), 'PermissionDeniedError')
  })

  it('sends EVICT only to peers that may read, so a non-reader neither learns of deletes nor holds them up', async function () {
    const readerRepo = await c.dir('dstore-acl-evict-reader-')
    const g = await global({ allowWriters: [writerId], allowReaders: [await repoPeerId(readerRepo)] })
    const writer = await local(g, writerRepo)
    const reader = await local(g, readerRepo)
    const other = await local(g, otherRepo) // connected, but may not read
    const cid = await writer.put(pseudoRandom(300, 23))
    assertBytes(await reader.get(cid), pseudoRandom(300, 23))
    assert.equal(await writer.delete(cid), true)
    assert.deepEqual({ confirmed: g.stats().evictionsConfirmed, timedOut: g.stats().evictionsTimedOut }, { confirmed: 2, timedOut: 0 })
    assert.equal(reader.stats().cacheEntries, 0, 'the reader evicted its copy')
    assert.ok(other.connected)
  })

  it('lets many Locals sharing one repository (one PeerId) connect at once', async function () {
    const g = await global()
    const cid = await g.put(pseudoRandom(100, 24))
    const many = await Promise.all(Array.from({ length: 12 }, async () => await local(g, writerRepo)))
    assert.equal(new Set(many.map(l => l.peerId)).size, 1)
    for (const l of many) assert.equal(await l.has(cid), true)
  })

  it('keeps one identity when several processes create it at once, and ignores stale temp files', async function () {
    const repo = await c.dir('dstore-acl-key-')
    await writeFile(join(repo, `local.key.tmp-${process.pid}`), 'stale, from a crash')
    const ids = await Promise.all(Array.from({ length: 5 }, async () => await repoPeerId(repo)))
    assert.equal(new Set(ids).size, 1)
    assert.equal(await repoPeerId(repo), ids[0])
    assert.equal((await stat(join(repo, 'local.key'))).mode & 0o777, 0o600)
  })

  it('a Local that may no longer read drops its cache when it reconnects instead of serving it', async function () {
    const repo = await c.dir('dstore-acl-revoke-')
    const readerRepo = await c.dir('dstore-acl-revoke-reader-')
    const readerId = await repoPeerId(readerRepo)
    await writeFile(join(repo, READERS_FILE), `${readerId}\n`)
    const g1 = await createGlobal({ repo, sync: false })
    const port = portOf(g1)
    const value = pseudoRandom(5000, 10)
    const cid = await g1.put(value)
    const l = await createLocal({ global: g1.multiaddrs, repo: readerRepo, connectTimeout: 10_000 })
    c.add(async () => { await l.stop() })
    assertBytes(await l.get(cid), value)
    assert.equal(l.stats().cacheEntries, 1)

    await g1.stop()
    await writeFile(join(repo, READERS_FILE), '')
    const g2 = await createGlobal({ repo, sync: false, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    c.add(async () => { await g2.stop() })
    await waitFor(() => l.connected && l.stats().cacheEntries === 0, 15_000, 'the Local to reconnect and drop its cache')
    await rejectsWith(l.get(cid), 'PermissionDeniedError')
  })
})

describe('access: the CLI', function () {
  const c = new Cleanup()
  after(async function () { await c.run() })

  it('`dstore global` on 0.0.0.0 without a writer list exits 1 with one line, and starts with --allow-writer', async function () {
    const repo = await c.dir('dstore-acl-cli-')
    const r = await dstore(['global', '--repo', repo, '--listen', '/ip4/0.0.0.0/tcp/0'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, ONE_LINE)
    assert.match(r.stderr, /refusing to start.*--allow-writer/)
  })

  it('a repository that cannot hold an identity: reads still work with a temporary one, `dstore id` says why in one line', async function () {
    const repo = await c.dir('dstore-acl-cli-ro-global-')
    const work = await c.dir('dstore-acl-cli-ro-')
    await writeFile(join(work, 'a-file'), 'not a folder')
    const unusable = join(work, 'a-file', 'repo') // mkdir fails: its parent is a file
    const g = await startGlobal(['--repo', repo])
    c.add(async () => { await stopGlobal(g) })
    const put = await dstore(['put', '--global', g.addr, '-'], { input: 'readable anyway', env: { DSTORE_REPO: repo } })
    assert.equal(put.code, 0, put.stderr)
    const got = await dstore(['cat', '--repo', unusable, '--global', g.addr, put.out.trim()])
    assert.equal(got.code, 0, got.stderr)
    assert.equal(got.out, 'readable anyway')
    const id = await dstore(['id', '--repo', unusable])
    assert.equal(id.code, 1)
    assert.match(id.stderr, ONE_LINE)
    assert.match(id.stderr, /identity key/)
  })

  it('`dstore id` names the client; only listed writers may put; SIGHUP re-reads the list file', async function () {
    const repo = await c.dir('dstore-acl-cli-global-')
    const alice = await c.dir('dstore-acl-cli-alice-')
    const bob = await c.dir('dstore-acl-cli-bob-')
    const aliceId = (await dstore(['id', '--repo', alice])).out.trim()
    const bobJson = JSON.parse((await dstore(['id', '--repo', bob, '--json'])).out) as { peerId: string, keyFile: string }
    assert.equal(aliceId, await repoPeerId(alice))
    assert.equal(bobJson.peerId, await repoPeerId(bob))
    assert.equal(bobJson.keyFile, join(bob, 'local.key'))

    const g = await startGlobal(['--repo', repo, '--listen', '/ip4/0.0.0.0/tcp/0', '--allow-writer', aliceId])
    c.add(async () => { await stopGlobal(g) })
    assert.match(g.stdout(), /^Access: writers: 1 PeerId; readers: anyone$/m)
    const addr = g.stdout().match(/listening on (\/ip4\/127\.0\.0\.1\/\S+)/)?.[1]
    assert.ok(addr, g.stdout())
    const file = join(alice, 'v.txt')
    await writeFile(file, 'hello from alice\n')

    const ok = await dstore(['put', '--repo', alice, '--global', addr, file])
    assert.equal(ok.code, 0, ok.stderr)
    const cid = ok.out.trim()
    for (let i = 0; i < 2; i++) {
      const denied = await dstore(['put', '--repo', bob, '--global', addr, '-'], { input: 'from bob' })
      assert.equal(denied.code, 1)
      assert.match(denied.stderr, ONE_LINE)
      assert.match(denied.stderr, /may not write/)
    }
    const rm = await dstore(['rm', '--repo', bob, '--global', addr, cid])
    assert.equal(rm.code, 1)
    assert.match(rm.stderr, /may not write/)
    // Bob may still read.
    const got = await dstore(['cat', '--repo', bob, '--global', addr, cid])
    assert.equal(got.out, 'hello from alice\n')
    // One log line for Bob's three refused writes.
    assert.equal(g.stderr().split('\n').filter(l => l.includes(bobJson.peerId)).length, 1, g.stderr())

    await writeFile(join(repo, WRITERS_FILE), `${bobJson.peerId}\n`)
    g.proc.kill('SIGHUP')
    await waitFor(() => g.stderr().includes('access lists re-read'), 10_000, 'the SIGHUP reload')
    assert.match(g.stderr(), /access lists re-read: writers: 2 PeerIds; readers: anyone/)
    const now = await dstore(['put', '--repo', bob, '--global', addr, '-'], { input: 'from bob' })
    assert.equal(now.code, 0, now.stderr)

    // A bad file on SIGHUP: logged, the lists stay, the daemon keeps running.
    await writeFile(join(repo, WRITERS_FILE), 'nonsense\n')
    g.proc.kill('SIGHUP')
    await waitFor(() => g.stderr().includes('NOT re-read'), 10_000, 'the failed reload')
    const still = await dstore(['put', '--repo', bob, '--global', addr, '-'], { input: 'again from bob' })
    assert.equal(still.code, 0, still.stderr)
  })
})

function * chunks (data: Uint8Array, step: number): Generator<Uint8Array> {
  for (let o = 0; o < data.length; o += step) yield data.subarray(o, o + step)
}
