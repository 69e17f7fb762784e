/**
 * Faults that must lose nothing: a Global killed (SIGKILL) in the middle of a put and of a get,
 * a full disk under a network put, Global restarting again and again under load, and values
 * corrupted at rest (with `dstore verify [--repair]`). Real peers, real child processes, real
 * files; nothing of dstore is mocked.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, open, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createGlobal, DstoreError, outboardLength, type GlobalPeer, type LocalPeer } from '../src/index.js'
import { TreeHasher, HEADER_LEN } from '../src/core/tree.js'
import { pseudoRandom } from './helpers.js'
import { Cleanup, KiB, MiB, assertBytes, portOf, rejectsWith, waitFor } from './net.js'
import { ONE_LINE, blake3Cid, dstore, freePort, killGlobal, startGlobal, stopGlobal, type Daemon } from './proc.js'

/**
 * What a caller sees when Global dies under it and stays down: a connection error, not a
 * claim about the data (VerificationError) or about Global's behaviour (ProtocolError).
 */
const CONNECTION_ERRORS = ['GlobalUnreachableError']

async function partSizes (dir: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  const sizes: number[] = []
  for (const n of names) sizes.push((await stat(join(dir, n)).catch(() => ({ size: 0 }))).size)
  return sizes
}

async function listCids (local: LocalPeer): Promise<string[]> {
  const out: string[] = []
  for await (const e of local.list()) out.push(e.cid.toString())
  return out
}

async function errorOfPromise (p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

function assertTyped (err: Error, names: string[], what: string): void {
  assert.ok(err instanceof DstoreError, `${what}: expected a DstoreError, got ${err.name}: ${err.message}`)
  assert.ok(names.includes(err.name), `${what}: expected one of ${names.join(', ')}, got ${err.name}: ${err.message}`)
  assert.match(err.code, /^ERR_[A-Z_]+$/)
}

/** Hex digest of bytes, computed with the tree hasher (the store's file name). */
function digestHex (bytes: Uint8Array): string {
  const h = new TreeHasher()
  h.update(bytes)
  return Buffer.from(h.finalize().root).toString('hex')
}

function flipByteIn<B extends Buffer> (buf: B, needle: Buffer, flipAt: number, what: string): B {
  const at = buf.indexOf(needle)
  assert.ok(at >= 0, `${what}: bytes not found in index.mdb`)
  assert.equal(buf.indexOf(needle, at + 1), -1, `${what}: bytes found twice in index.mdb`)
  buf[at + flipAt] ^= 0x40
  return buf
}

describe('faults', function () {
  this.timeout(60_000)
  const cleanup = new Cleanup()
  after(async () => { await cleanup.run() })

  describe('Global killed (SIGKILL) in the middle of a transfer', function () {
    let g: Daemon | undefined
    afterEach(async () => { if (g !== undefined) await stopGlobal(g); g = undefined })

    it('a 256 MiB put fails with a typed error; after restart nothing partial is visible, tmp/ is empty, and a retry stores it byte-identical', async function () {
      const repo = await cleanup.dir('dstore-fault-put-')
      const listen = `/ip4/127.0.0.1/tcp/${await freePort()}`
      g = await startGlobal(['--repo', repo, '--listen', listen])
      const local = await cleanup.local([g.addr], { connectTimeout: 1500, cacheSize: 64 * MiB })
      await local.ready()
      const value = pseudoRandom(256 * MiB, 7)
      const cid = blake3Cid(value)
      const hex = digestHex(value)
      const tmp = join(repo, 'store', 'tmp')

      const putting = local.put(value)
      putting.catch(() => {})
      // Wait until Global has written part of it (not just slept): a temp file of 32 MiB or more.
      let seen = 0
      await waitFor(async () => { seen = Math.max(0, ...await partSizes(tmp)); return seen >= 32 * MiB }, 30_000, 'a partial temp file')
      await killGlobal(g)
      const partial = await partSizes(tmp)
      assert.equal(partial.length, 1, 'the killed Global left its temp file behind')
      assert.ok(partial[0] < value.length, `the temp file is partial (${partial[0]} bytes)`)

      const err = await errorOfPromise(putting)
      assertTyped(err, CONNECTION_ERRORS, 'put while Global died')

      g = await startGlobal(['--repo', repo, '--listen', listen])
      assert.deepEqual(await readdir(tmp), [], 'open removed the temp file')
      assert.equal(existsSync(join(repo, 'store', 'blobs', hex.slice(0, 2), hex)), false, 'no data file for the value')
      // The same Local reconnects to the restarted Global (same port, same identity).
      await rejectsWith(local.stat(cid), 'NotFoundError')
      assert.equal((await listCids(local)).includes(cid), false, 'not listed')
      assert.equal(await local.has(cid), false)

      assert.equal((await local.put(value)).toString(), cid)
      const reader = await cleanup.local([g.addr], { cacheSize: 16 * MiB })
      assertBytes(await reader.get(cid), value, 'value read back after the retry')
      assert.deepEqual(await readdir(tmp), [])
      assert.ok(existsSync(join(repo, 'store', 'blobs', hex.slice(0, 2), hex)))
      assert.doesNotMatch(g.stderr(), /Error|at /, 'the restarted Global logged no failure')
    })

    it('a 64 MiB get fails cleanly or resumes; nothing unverified is returned or cached, and a get after restart succeeds', async function () {
      const repo = await cleanup.dir('dstore-fault-get-')
      const listen = `/ip4/127.0.0.1/tcp/${await freePort()}`
      g = await startGlobal(['--repo', repo, '--listen', listen])
      const value = pseudoRandom(64 * MiB, 11)
      const cid = blake3Cid(value)
      const writer = await cleanup.local([g.addr], { cacheSize: 16 * MiB })
      assert.equal((await writer.put(value)).toString(), cid)

      /** Polls (every ms, not blindly) until `local` has received at least `n` bytes, then SIGKILLs Global. */
      const killAfter = async (local: LocalPeer, n: number): Promise<void> => {
        const until = Date.now() + 20_000
        while (local.stats().bytesIn < n) {
          if (Date.now() > until) throw new Error('the get never started')
          await new Promise(resolve => setTimeout(resolve, 1))
        }
        await killGlobal(g as Daemon)
      }

      // 1. get: Global dies and stays down: a typed error, nothing cached.
      const a = await cleanup.local([g.addr], { connectTimeout: 1000 })
      await a.ready()
      const getting = a.get(cid)
      getting.catch(() => {})
      await killAfter(a, 4 * MiB)
      const received = a.stats().bytesIn
      assert.ok(received < value.length, `killed mid-transfer (${received} bytes in)`)
      const err = await errorOfPromise(getting)
      assertTyped(err, CONNECTION_ERRORS, 'get while Global died')
      assert.equal(await a.cache.has(cid), false, 'nothing cached')
      assert.equal(a.stats().cacheEntries, 0)
      assert.equal(a.stats().cacheBytes, 0)

      // 2. cat (streamed): what was yielded before Global died is a verified prefix, then a typed error.
      g = await startGlobal(['--repo', repo, '--listen', listen])
      const b = await cleanup.local([g.addr], { connectTimeout: 1000 })
      await b.ready()
      let got = 0
      let prefixOk = true
      let killed: Promise<void> | undefined
      const catErr = await errorOfPromise((async () => {
        for await (const piece of b.cat(cid)) {
          if (!Buffer.from(piece).equals(Buffer.from(value.buffer, value.byteOffset + got, piece.length))) prefixOk = false
          got += piece.length
          if (killed === undefined && got >= 4 * MiB) killed = killGlobal(g as Daemon)
          // A slow consumer: Global waits for credit, so the kill lands mid-stream.
          await new Promise(resolve => setTimeout(resolve, 5))
        }
      })())
      await killed
      assert.ok(prefixOk, 'every byte yielded is the value at its offset')
      assert.ok(got >= 4 * MiB && got < value.length, `stream cut mid-way (${got} bytes)`)
      assertTyped(catErr, CONNECTION_ERRORS, 'cat while Global died')
      assert.equal(await b.cache.has(cid), false)

      // 3. get: Global comes back within connectTimeout: the get is retried and resumes.
      g = await startGlobal(['--repo', repo, '--listen', listen])
      const c = await cleanup.local([g.addr], { connectTimeout: 15_000 })
      await c.ready()
      const resumed = c.get(cid)
      await killAfter(c, 4 * MiB)
      assert.equal(await c.cache.has(cid), false, 'nothing cached while the transfer is broken')
      g = await startGlobal(['--repo', repo, '--listen', listen])
      assertBytes(await resumed, value, 'get resumed after Global restarted')
      assert.equal(await c.cache.has(cid), true, 'the verified value is cached')

      // And the Locals whose gets failed succeed now.
      assertBytes(await a.get(cid), value, 'get after restart')
      assert.equal(await a.cache.has(cid), true)
    })
  })

  it('a full disk under a network put: StorageError (ENOSPC) reaches the Local, the store stays consistent and keeps serving (32 MiB tmpfs)', async function () {
    const base = await cleanup.dir('dstore-fault-full-')
    const mnt = join(base, 'repo')
    await mkdir(mnt)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', mnt], { stdio: 'ignore' })
    } catch (err) {
      // No skipping: a disk-full test that quietly does not run proves nothing. CI runs as root.
      throw new Error(`this test mounts a 32 MiB tmpfs and needs root (mount failed: ${(err as Error).message})`)
    }
    let global: GlobalPeer | undefined
    const locals: LocalPeer[] = []
    try {
      global = await createGlobal({ repo: mnt })
      const local = await cleanup.local(global, { cacheSize: 4 * MiB })
      locals.push(local)
      const earlier = [pseudoRandom(3 * MiB, 31), pseudoRandom(20 * KiB, 32), pseudoRandom(200 * KiB, 33)]
      const earlierCids = []
      for (const v of earlier) earlierCids.push((await local.put(v)).toString())

      const big = pseudoRandom(48 * MiB, 34)
      const err = await errorOfPromise(local.put(big))
      assert.equal(err.name, 'StorageError', `${err.name}: ${err.message}`)
      assert.equal((err as DstoreError).code, 'ERR_STORAGE')
      assert.match(err.message, /ENOSPC/)

      assert.deepEqual(await readdir(join(mnt, 'store', 'tmp')), [], 'no temp file left')
      const reader = await cleanup.local(global, { cacheSize: 1 })
      locals.push(reader)
      const listed = await listCids(reader)
      assert.deepEqual(listed.sort(), [...earlierCids].sort(), 'exactly the earlier values are listed')
      for (let i = 0; i < earlier.length; i++) assertBytes(await reader.get(earlierCids[i]), earlier[i], `earlier value ${i}`)
      await rejectsWith(reader.stat(blake3Cid(big)), 'NotFoundError')

      const smaller = pseudoRandom(2 * MiB, 35)
      const smallCid = (await local.put(smaller)).toString()
      assertBytes(await reader.get(smallCid), smaller, 'a smaller put after the full disk')
    } finally {
      for (const l of locals) await l.stop()
      await global?.stop()
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' })
    }
  })

  it('a full disk under an inline put: the `dstore global` process answers StorageError, stays up and serving, and takes the put once space is freed (8 MiB tmpfs)', async function () {
    const base = await cleanup.dir('dstore-fault-full-inline-')
    const mnt = join(base, 'repo')
    await mkdir(mnt)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { stdio: 'ignore' })
    } catch (err) {
      throw new Error(`this test mounts an 8 MiB tmpfs and needs root (mount failed: ${(err as Error).message})`)
    }
    let g: Daemon | undefined
    const locals: LocalPeer[] = []
    try {
      g = await startGlobal(['--repo', mnt, '--listen', '/ip4/127.0.0.1/tcp/0'])
      const local = await cleanup.local([g.addr], { connectTimeout: 1500, cacheSize: 1 })
      locals.push(local)
      const before = pseudoRandom(1000, 41)
      const beforeCid = (await local.put(before)).toString()
      // Fill the filesystem: the index cannot commit a page any more.
      const filler = join(mnt, 'filler')
      const handle = await open(filler, 'w')
      try {
        const block = Buffer.alloc(64 * KiB, 1)
        for (;;) await handle.write(block)
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC')
      } finally {
        await handle.close()
      }
      const value = pseudoRandom(60_000, 42) // below the 64 KiB inline threshold: only lmdb is written
      for (let i = 0; i < 2; i++) {
        const err = await errorOfPromise(local.put(value))
        assert.equal(err.name, 'StorageError', `${err.name}: ${err.message}`)
        assert.equal((err as DstoreError).code, 'ERR_STORAGE')
      }
      await new Promise(resolve => setTimeout(resolve, 200)) // an unhandled rejection would end the process by now
      assert.equal(g.proc.exitCode, null, `Global exited: ${g.stderr()}`)
      assert.equal(g.proc.signalCode, null)
      assertBytes(await local.get(beforeCid), before, 'a value stored before the disk filled')
      await rejectsWith(local.stat(blake3Cid(value)), 'NotFoundError')

      await unlink(filler)
      assert.equal((await local.put(value)).toString(), blake3Cid(value))
      const reader = await cleanup.local([g.addr], { connectTimeout: 1500, cacheSize: 1 })
      locals.push(reader)
      assertBytes(await reader.get(blake3Cid(value)), value, 'the put after space was freed')
      const stopped = await stopGlobal(g)
      g = undefined
      assert.equal(stopped.code, 0, stopped.stderr)
    } finally {
      for (const l of locals) await l.stop()
      if (g !== undefined) await stopGlobal(g)
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' })
    }
  })

  it('a lost index deletes nothing: `dstore verify` reports the unindexed files, `--repair` re-indexes them, and a Global started without an index rebuilds it and serves every file-backed value', async function () {
    const repo = await cleanup.dir('dstore-fault-noindex-')
    const store = join(repo, 'store')
    const logs: string[] = []
    const start = async (): Promise<GlobalPeer> => await createGlobal({ repo, sync: false, log: (line) => { logs.push(line) } })
    let global = await start()
    const files = [pseudoRandom(MiB + 7, 51), pseudoRandom(200 * KiB, 52), pseudoRandom(5 * MiB, 53)]
    const cids = []
    for (const v of files) cids.push((await global.put(v)).toString())
    const inline = pseudoRandom(10 * KiB, 54)
    await global.put(inline)
    await global.stop()
    const loseIndex = async (): Promise<void> => {
      await unlink(join(store, 'index.mdb'))
      await unlink(join(store, 'index.mdb-lock'))
    }
    await loseIndex()
    // A file whose bytes are not those its name promises.
    const named = pseudoRandom(100 * KiB, 55)
    const liar = join(store, 'blobs', digestHex(named).slice(0, 2), digestHex(named))
    await mkdir(join(liar, '..'), { recursive: true })
    await writeFile(liar, pseudoRandom(100 * KiB, 56))

    const v1 = await dstore(['verify', '--repo', repo])
    assert.equal(v1.code, 1, v1.stderr)
    assert.match(v1.stderr, ONE_LINE)
    assert.match(v1.out, /the index is missing 3 value\(s\) that have data files \(run with --repair to rebuild the index from them\)/)
    for (const cid of cids) assert.match(v1.out, new RegExp(`^unindexed\t${cid}\t`, 'm'))
    assert.match(v1.out, new RegExp(`^corrupt\t${blake3Cid(named)}\t.*do not hash to its name$`, 'm'))
    assert.equal(existsSync(liar), true, 'verify without --repair changes nothing')
    for (const v of files) assert.equal(existsSync(join(store, 'blobs', digestHex(v).slice(0, 2), digestHex(v))), true)

    const r = await dstore(['verify', '--repo', repo, '--repair'])
    assert.equal(r.code, 1, r.stderr)
    for (const cid of cids) assert.match(r.out, new RegExp(`^unindexed\t${cid}\t.*; re-indexed$`, 'm'))
    assert.match(r.out, new RegExp(`^corrupt\t${blake3Cid(named)}\t.*; quarantined$`, 'm'))
    assert.deepEqual(await readdir(join(store, 'quarantine')), [digestHex(named)])
    const clean = await dstore(['verify', '--repo', repo])
    assert.equal(clean.code, 0, clean.stderr)
    assert.match(clean.out, /^checked 3 value\(s\), .*: all good\n$/)

    // Lost again, and Global is simply started: it rebuilds the index itself and says so.
    await loseIndex()
    global = await start()
    cleanup.add(async () => { await global.stop() })
    assert.ok(logs.some(l => /3 data file\(s\) have no index entry \(the index was missing/.test(l)), logs.join('\n'))
    assert.ok(logs.some(l => /re-indexed 3 value\(s\)/.test(l)), logs.join('\n'))
    const local = await cleanup.local(global, { cacheSize: 1 })
    assert.deepEqual((await listCids(local)).sort(), [...cids].sort())
    for (let i = 0; i < files.length; i++) assertBytes(await local.get(cids[i]), files[i], `file value ${i} after the rebuild`)
    await rejectsWith(local.stat(blake3Cid(inline)), 'NotFoundError') // inline values lived only in the index
  })

  it('a put of the right bytes heals a stored value that a Local rejected: Global marks it suspect after its re-check, and its next put replaces the stored copy', async function () {
    const repo = await cleanup.dir('dstore-fault-heal-')
    const logs: string[] = []
    const global = await createGlobal({ repo, sync: false, log: (line) => { logs.push(line) } })
    cleanup.add(async () => { await global.stop() })
    const value = pseudoRandom(2 * MiB + 5, 71)
    const cid = (await global.put(value)).toString()
    const file = join(repo, 'store', 'blobs', digestHex(value).slice(0, 2), digestHex(value))
    const handle = await open(file, 'r+')
    await handle.write(Buffer.from([value[600_000] ^ 0x01]), 0, 1, 600_000)
    await handle.close()

    const local = await cleanup.local(global, { cacheSize: 64 * MiB })
    await rejectsWith(local.get(cid), 'VerificationError')
    await waitFor(() => global.stats().rechecksFailed >= 1 && global.stats().rechecksPending === 0, 10_000, 'the re-check to find it bad')
    assert.equal((await global.put(value)).toString(), cid)
    const reader = await cleanup.local(global, { cacheSize: 64 * MiB })
    assertBytes(await reader.get(cid), value, 'served after the re-put')
  })

  it('a Local\'s put of the right bytes heals a stored value a Local rejected (file and inline): the rejection is reported, Global\'s STAT then calls it absent, and the put sends it', async function () {
    const repo = await cleanup.dir('dstore-fault-heal-net-')
    const global = await createGlobal({ repo, sync: false, log: () => {} })
    cleanup.add(async () => { await global.stop() })
    const big = pseudoRandom(2 * MiB + 5, 72)
    const small = pseudoRandom(60_000, 73)
    const bigCid = (await global.put(big)).toString()
    const smallCid = (await global.put(small)).toString()
    const file = join(repo, 'store', 'blobs', digestHex(big).slice(0, 2), digestHex(big))
    const handle = await open(file, 'r+')
    await handle.write(Buffer.from([big[600_000] ^ 0x01]), 0, 1, 600_000)
    await handle.close()
    await global.stop()
    const mdbPath = join(repo, 'store', 'index.mdb')
    await writeFile(mdbPath, flipByteIn(await readFile(mdbPath), Buffer.from(small.subarray(30_000, 30_064)), 10, 'the inline value'))
    const restarted = await createGlobal({ repo, sync: false, log: () => {} })
    cleanup.add(async () => { await restarted.stop() })

    const local = await cleanup.local(restarted, { cacheSize: 64 * MiB })
    await rejectsWith(local.get(bigCid), 'VerificationError')
    await rejectsWith(local.get(smallCid), 'VerificationError')
    await waitFor(() => restarted.stats().rechecksFailed >= 2 && restarted.stats().rechecksPending === 0, 10_000, 'the re-checks to find both bad')
    const inBefore = restarted.stats().bytesIn
    assert.equal((await local.put(big)).toString(), bigCid)
    assert.equal((await local.put(small)).toString(), smallCid)
    assert.ok(restarted.stats().bytesIn - inBefore >= big.length + small.length, 'the puts sent the values')
    const reader = await cleanup.local(restarted, { cacheSize: 64 * MiB })
    assertBytes(await reader.get(bigCid), big, 'file value served after the re-put')
    assertBytes(await reader.get(smallCid), small, 'inline value served after the re-put')
    // Healed, so no longer suspect: STAT answers it present again (has, stat, a read-only peer's put).
    assert.deepEqual((await reader.missing([bigCid, smallCid])).map(String), [], 'Global\'s STAT after the heals')
  })

  it('20 Global restarts while 3 Locals put, get and delete: acknowledged puts survive byte-identical, acknowledged deletes are gone everywhere', async function () {
    const repo = await cleanup.dir('dstore-fault-restarts-')
    let global = await createGlobal({ repo })
    cleanup.add(async () => { await global.stop() })
    const listen = [`/ip4/127.0.0.1/tcp/${portOf(global)}`]
    const addrs = global.multiaddrs
    const locals = await Promise.all([0, 1, 2].map(async () => await cleanup.local(addrs, { connectTimeout: 4000, cacheSize: 8 * MiB })))
    await Promise.all(locals.map(async l => { await l.ready() }))

    type State = 'pending' | 'acked' | 'deleting' | 'deleted' | 'unknown'
    interface Entry { cid: string, bytes: Uint8Array, owner: number, state: State }
    const entries: Entry[] = []
    const violations: string[] = []
    const errorNames = new Map<string, number>()
    const counts = { putOk: 0, putFailed: 0, getOk: 0, getFailed: 0, deleteOk: 0, deleteFailed: 0, restarts: 0 }
    let running = true
    let seed = 1000
    const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
    const failed = (op: string, err: Error): void => {
      errorNames.set(err.name, (errorNames.get(err.name) ?? 0) + 1)
      if (process.env.FAULTS_DEBUG != null) console.log(`${op}: ${err.name}: ${err.message}`)
      // Failing because Global is down is fine, but only with a typed error.
      if (!(err instanceof DstoreError)) violations.push(`${op}: untyped ${err.name}: ${err.message}`)
      if (err.name === 'VerificationError') violations.push(`${op}: ${err.message}`)
    }

    const loop = async (i: number): Promise<void> => {
      const local = locals[i]
      let x = 0x9e3779b9 * (i + 1) >>> 0
      const rand = (): number => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32 }
      while (running) {
        const r = rand()
        const mine = entries.filter(e => e.owner === i && e.state === 'acked')
        const readable = entries.filter(e => e.state === 'acked')
        if (r < 0.4 || readable.length === 0) {
          // Small (inline on Global) or medium (a file, sent on a blob stream).
          const size = rand() < 0.6 ? 1 + Math.floor(rand() * 60 * KiB) : 100 * KiB + Math.floor(rand() * 1400 * KiB)
          const bytes = pseudoRandom(size, ++seed)
          const entry: Entry = { cid: blake3Cid(bytes), bytes, owner: i, state: 'pending' }
          entries.push(entry)
          try {
            const cid = await local.put(bytes)
            assert.equal(cid.toString(), entry.cid)
            entry.state = 'acked'
            counts.putOk++
          } catch (err) {
            entry.state = 'unknown'
            counts.putFailed++
            failed('put', err as Error)
          }
        } else if (r < 0.8 || mine.length === 0) {
          const entry = readable[Math.floor(rand() * readable.length)]
          try {
            const got = await local.get(entry.cid)
            if (!Buffer.from(got).equals(Buffer.from(entry.bytes))) violations.push(`get of ${entry.cid} returned other bytes`)
            counts.getOk++
          } catch (err) {
            counts.getFailed++
            failed('get', err as Error)
            // Only its owner deletes a value, and marks it before asking: NotFound for a value
            // still marked acknowledged means an acknowledged put was lost.
            if ((err as Error).name === 'NotFoundError' && entry.state === 'acked') violations.push(`get of acknowledged ${entry.cid}: NotFound`)
          }
        } else {
          const entry = mine[Math.floor(rand() * mine.length)]
          entry.state = 'deleting'
          try {
            await local.delete(entry.cid)
            entry.state = 'deleted'
            counts.deleteOk++
          } catch (err) {
            entry.state = 'unknown'
            counts.deleteFailed++
            failed('delete', err as Error)
          }
        }
      }
    }

    const loops = locals.map(async (_, i) => { await loop(i) })
    let y = 12345
    const rand = (): number => { y ^= y << 13; y ^= y >>> 17; y ^= y << 5; return (y >>> 0) / 2 ** 32 }
    // Each Global lives until the Locals got real work done on it (bounded), not for a fixed
    // time: on a loaded machine a fixed window let too few operations through to prove much.
    const progressed = async (k: number): Promise<void> => {
      const { putOk, getOk, deleteOk } = counts
      const deadline = Date.now() + 10_000
      while (Date.now() < deadline && !(counts.putOk - putOk >= 2 && counts.getOk - getOk >= 2 && (k % 4 !== 0 || counts.deleteOk - deleteOk >= 1))) await sleep(20)
    }
    for (let k = 0; k < 20; k++) {
      await sleep(150 + rand() * 250)
      await progressed(k)
      await global.stop()
      await sleep(rand() * 100)
      global = await createGlobal({ repo, listen })
      counts.restarts++
    }
    await sleep(200)
    running = false
    await Promise.all(loops)

    // Every Local back on the last Global (and done reconciling its cache with it).
    await Promise.all(locals.map(async l => { await l.ready() }))
    const live = entries.filter(e => e.state === 'acked')
    const gone = entries.filter(e => e.state === 'deleted')
    const summary = `${JSON.stringify(counts)}; failures: ${JSON.stringify(Object.fromEntries(errorNames))}`
    assert.deepEqual(violations, [], summary)
    assert.equal(counts.restarts, 20)
    assert.ok(counts.putOk >= 30 && counts.getOk >= 30 && counts.deleteOk >= 5, `too few operations succeeded: ${summary}`)

    // No Local cache holds a value Global does not have.
    for (const [i, local] of locals.entries()) {
      for await (const s of local.cache.list()) assert.ok(await global.has(s.cid), `Local ${i} caches ${s.cid.toString()}, which Global does not have`)
    }
    for (const e of gone) {
      assert.equal(await global.has(e.cid), false, `deleted ${e.cid} is still on Global`)
      for (const [i, local] of locals.entries()) {
        assert.equal(await local.cache.has(e.cid), false, `Local ${i} still caches deleted ${e.cid}`)
        await rejectsWith(local.get(e.cid), 'NotFoundError')
      }
    }
    for (const e of live) {
      assert.ok(await global.has(e.cid), `acknowledged ${e.cid} is missing on Global`)
      for (const local of locals) assertBytes(await local.get(e.cid), e.bytes, `acknowledged ${e.cid}`)
    }
    console.log(`      restarts: ${summary}; ${live.length} live, ${gone.length} deleted at the end`)
  })

  it('corruption at rest: a Local rejects it (VerificationError, nothing cached), Global logs it, `dstore verify` finds it and `--repair` quarantines it', async function () {
    const repo = await cleanup.dir('dstore-fault-corrupt-')
    const store = join(repo, 'store')
    const logs: string[] = []
    const start = async (): Promise<GlobalPeer> => await createGlobal({ repo, sync: false, log: (line) => { logs.push(line) } })
    let global = await start()
    cleanup.add(async () => { await global.stop() })

    const fileVal = pseudoRandom(MiB + 12345, 21) // a file on Global
    const inlineVal = pseudoRandom(40 * KiB, 22) // inline in the index
    const outbVal = pseudoRandom(2 * MiB, 23) // its outboard will be damaged
    const missVal = pseudoRandom(100 * KiB, 24) // its file will vanish
    const goodVal = pseudoRandom(300 * KiB, 25)
    const cids: Record<string, string> = {}
    for (const [name, v] of Object.entries({ fileVal, inlineVal, outbVal, missVal, goodVal })) cids[name] = (await global.put(v)).toString()
    const fileOf = (v: Uint8Array): string => { const hex = digestHex(v); return join(store, 'blobs', hex.slice(0, 2), hex) }

    // 1. A byte flipped in a data file, while Global runs.
    const handle = await open(fileOf(fileVal), 'r+')
    const one = Buffer.alloc(1)
    await handle.read(one, 0, 1, 700_000)
    one[0] ^= 0x01
    await handle.write(one, 0, 1, 700_000)
    await handle.close()

    const local = await cleanup.local(global, { cacheSize: 64 * MiB })
    await rejectsWith(local.get(cids.fileVal), 'VerificationError')
    assert.equal(await local.cache.has(cids.fileVal), false, 'a value that failed verification is not cached')
    assert.equal(local.stats().cacheEntries, 0)
    // Streamed: only verified bytes come out (a prefix of the value), then VerificationError.
    let got = 0
    const catErr = await errorOfPromise((async () => {
      for await (const piece of local.cat(cids.fileVal)) {
        assertBytes(piece, fileVal.subarray(got, got + piece.length), 'streamed bytes')
        got += piece.length
      }
    })())
    assert.equal(catErr.name, 'VerificationError', catErr.message)
    assert.ok(got <= 700_000, `nothing past the flipped byte was yielded (${got})`)
    assertBytes(await local.get(cids.goodVal), goodVal, 'a good value is still served')
    // Global re-checked what it sent when the Local reset the stream, and says what is wrong.
    await waitFor(() => logs.some(l => l.includes(cids.fileVal) && /fails verification/.test(l)), 10_000, 'Global to log the corrupt value')
    // Nothing left to re-check (so no later duplicate line can come), then count.
    await waitFor(() => global.stats().rechecksFailed >= 1 && global.stats().rechecksPending === 0, 10_000, 'the re-checks to finish')
    assert.equal(logs.filter(l => l.includes(cids.fileVal)).length, 1, `logged once for two failed reads: ${logs.join('\n')}`)
    // Only the streamed value's failed reads were re-checked (the first found it bad, the second
    // was known bad): a good value read in full is not, nor is one answered inline.
    assert.deepEqual({ rechecks: global.stats().rechecks, failed: global.stats().rechecksFailed }, { rechecks: 1, failed: 1 })
    assert.equal(logs.some(l => l.includes(cids.goodVal)), false, 'nothing logged about the good value')

    // 2. Verify refuses to run under a live Global (it holds the store's lock), and where there is no store.
    const none = await dstore(['verify', '--repo', join(repo, 'no-such-repo')])
    assert.equal(none.code, 1)
    assert.match(none.stderr, ONE_LINE)
    assert.match(none.stderr, /no store to verify/)
    assert.equal(existsSync(join(repo, 'no-such-repo')), false, 'verify created nothing')
    const busy = await dstore(['verify', '--repo', repo])
    assert.equal(busy.code, 1, busy.stderr)
    assert.match(busy.stderr, ONE_LINE)
    assert.match(busy.stderr, /in use by process \d+.*stop `dstore global` first/)
    assert.equal(busy.out, '')

    // 3. With Global stopped: damage an inline value and an outboard inside the lmdb file itself.
    await global.stop()
    const mdbPath = join(store, 'index.mdb')
    let mdb = await readFile(mdbPath)
    mdb = flipByteIn(mdb, Buffer.from(inlineVal.subarray(20_000, 20_064)), 10, 'the inline value')
    const h = new TreeHasher({ outboard: true })
    h.update(outbVal)
    const parents = (h.finalize().outboard as Uint8Array).subarray(HEADER_LEN)
    assert.equal(parents.length, outboardLength(outbVal.length, 4) - HEADER_LEN)
    mdb = flipByteIn(mdb, Buffer.from(parents.subarray(64 * 5, 64 * 6)), 3, 'an outboard parent')
    await writeFile(mdbPath, mdb)
    global = await start()
    const fresh = await cleanup.local(global, { cacheSize: 64 * MiB })
    await rejectsWith(fresh.get(cids.inlineVal), 'VerificationError')
    await rejectsWith(fresh.get(cids.outbVal), 'VerificationError')
    assert.equal(fresh.stats().cacheEntries, 0, 'nothing cached')
    await global.stop()
    // And a data file vanishes.
    await unlink(fileOf(missVal))

    // 4. dstore verify: each bad CID once, exit status 1; the good one is not named.
    const v1 = await dstore(['verify', '--repo', repo])
    assert.equal(v1.code, 1, v1.stderr)
    assert.match(v1.stderr, ONE_LINE)
    const lines = v1.out.trim().split('\n')
    const bad = new Map(lines.filter(l => l.includes('\t')).map(l => { const [problem, cid] = l.split('\t'); return [cid, problem] }))
    assert.deepEqual(Object.fromEntries(bad), {
      [cids.fileVal]: 'corrupt',
      [cids.inlineVal]: 'corrupt',
      [cids.outbVal]: 'outboard',
      [cids.missVal]: 'missing'
    }, v1.out)
    assert.match(lines[lines.length - 1], /^checked 5 value\(s\), .*: 4 bad$/)
    // Without --repair nothing changed: the same report again, as JSON.
    const v2 = await dstore(['verify', '--repo', repo, '--json'])
    assert.equal(v2.code, 1)
    const report = JSON.parse(v2.out) as { ok: boolean, checked: number, bad: Array<{ cid: string, problem: string, repaired: boolean }> }
    assert.equal(report.ok, false)
    assert.equal(report.checked, 5)
    assert.deepEqual(report.bad.map(b => `${b.problem} ${b.cid} ${String(b.repaired)}`).sort(),
      [...bad.entries()].map(([cid, problem]) => `${problem} ${cid} false`).sort())

    // 5. --repair: bad values quarantined, the outboard rebuilt, the missing entry dropped.
    const r = await dstore(['verify', '--repo', repo, '--repair'])
    assert.equal(r.code, 1, 'bad values were found (and repaired)')
    assert.match(r.out, new RegExp(`corrupt\t${cids.fileVal}\t.*; quarantined`))
    assert.match(r.out, new RegExp(`outboard\t${cids.outbVal}\t.*; outboard rebuilt`))
    assert.match(r.out, new RegExp(`missing\t${cids.missVal}\t.*; entry dropped`))
    assert.deepEqual((await readdir(join(store, 'quarantine'))).sort(), [digestHex(fileVal), `${digestHex(inlineVal)}.inline`].sort())
    const clean = await dstore(['verify', '--repo', repo])
    assert.equal(clean.code, 0, clean.stderr)
    assert.equal(clean.stderr, '')
    assert.match(clean.out, /^checked 2 value\(s\), .*: all good\n$/)

    // 6. Served again: bad values are no longer listed or served; re-putting the original bytes restores them.
    global = await start()
    const after = await cleanup.local(global, { cacheSize: 64 * MiB })
    assert.deepEqual((await listCids(after)).sort(), [cids.outbVal, cids.goodVal].sort())
    for (const name of ['fileVal', 'inlineVal', 'missVal']) await rejectsWith(after.stat(cids[name]), 'NotFoundError')
    assertBytes(await after.get(cids.outbVal), outbVal, 'served with its rebuilt outboard')
    for (const [name, v] of Object.entries({ fileVal, inlineVal, missVal })) assert.equal((await after.put(v)).toString(), cids[name])
    const reader = await cleanup.local(global, { cacheSize: 64 * MiB })
    for (const [name, v] of Object.entries({ fileVal, inlineVal, missVal, goodVal, outbVal })) assertBytes(await reader.get(cids[name]), v, `${name} after repair and re-put`)
  })
})

