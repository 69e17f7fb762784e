import { strict as assert } from 'node:assert'
import { execFileSync, spawn } from 'node:child_process'
import { constants, existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, readdir, readFile, rm, statfs, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cidOfBytes } from '../src/core/cid.js'
import { createFsStore, DEFAULT_INLINE_THRESHOLD, FsBlobStore } from '../src/core/store/fs.js'
import { DIRECT_ALIGN, DIRECT_MIN_SIZE, READMIT_MS, ReadAdmission, alignedSlot, directFlags, isAligned, pageCached } from '../src/core/store/fs/direct.js'
import { Shards } from '../src/core/store/fs/locks.js'
import { TreeHasher } from '../src/core/tree.js'
import { collect, hex, pseudoRandom, tempDir } from './helpers.js'
import { chopped, expectReject, listAll, runBlobStoreCompliance } from './store-compliance.js'

runBlobStoreCompliance('fs store', async () => {
  const dir = await tempDir('dstore-fs-')
  return { store: await createFsStore({ path: dir.path }), cleanup: dir.cleanup }
}, { verifiable: true })

runBlobStoreCompliance('fs store without inline blobs', async () => {
  const dir = await tempDir('dstore-fs-')
  return { store: await createFsStore({ path: dir.path, inlineThreshold: 0 }), cleanup: dir.cleanup }
}, { verifiable: true })

/** Where the fs store keeps a value's data file. */
function dataPath (root: string, value: Uint8Array): string {
  const h = hex(cidOfBytes(value).multihash.digest)
  return join(root, 'blobs', h.slice(0, 2), h)
}

/** `count` deterministic pieces of 1 MiB: the value the crash child writes. */
/**
 * Mounts a 4 MiB tmpfs at `mnt` (unmount it with `umount -l`). No skipping: a disk-full test
 * that quietly does not run proves nothing, so without root it fails saying why (CI runs as root).
 */
async function smallTmpfs (mnt: string): Promise<string> {
  await mkdir(mnt)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { stdio: 'ignore' })
  } catch (err) {
    throw new Error(`this test mounts a 4 MiB tmpfs and needs root (mount failed: ${(err as Error).message})`)
  }
  return mnt
}

function * bigPieces (count: number): Generator<Uint8Array> {
  for (let i = 0; i < count; i++) yield pseudoRandom(1 << 20, 1000 + i)
}

/** The pid of a process that has exited. */
async function deadPid (): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise(resolve => child.once('exit', resolve))
  return child.pid as number
}

/** The built fs store and runtime shim, for child processes. */
const FS_STORE = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'core', 'store', 'fs.js')
const SHIM = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'runtime-shim.js')

/**
 * A child process that waits until `at`, opens the store, and, when it gets it, holds it for
 * 300 ms while counting the processes registered in `holders` (its own registration included).
 */
async function raceChild (path: string, holders: string, at: number, tries: string, others: number): Promise<{ ok: boolean, most?: number, error?: string }> {
  const script = `
    import { readdirSync, unlinkSync, writeFileSync } from 'node:fs'
    import { join } from 'node:path'
    await import(${JSON.stringify(SHIM)})
    const { createFsStore } = await import(${JSON.stringify(FS_STORE)})
    const [path, holders, at, tries, others] = [process.argv[1], process.argv[2], Number(process.argv[3]), process.argv[4], Number(process.argv[5])]
    while (Date.now() < at) {}
    let store
    try {
      store = await createFsStore({ path, sync: false })
    } catch (err) {
      writeFileSync(join(tries, String(process.pid)), '')
      console.log(JSON.stringify({ ok: false, error: err.name, message: err.message }))
      process.exit(0)
    }
    const me = join(holders, String(process.pid))
    writeFileSync(me, '')
    let most = 0
    // Held until every other child has tried (a loaded machine may start some late), at least
    // 300 ms, at most 20 s: so each of them raced a held store, not one released already.
    for (const start = Date.now(); Date.now() < start + 20000 && (Date.now() < start + 300 || readdirSync(tries).length < others);) {
      most = Math.max(most, readdirSync(holders).length)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    unlinkSync(me)
    await store.close()
    console.log(JSON.stringify({ ok: true, most }))
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, path, holders, String(at), tries, String(others)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise(resolve => child.once('exit', resolve))
  assert.equal(code, 0, `race child exited with ${String(code)}: ${out}`)
  return JSON.parse(out)
}

describe('fs store', () => {
  let dir: { path: string, cleanup: () => Promise<void> }
  let store: FsBlobStore | undefined

  beforeEach(async () => { dir = await tempDir('dstore-fs-') })
  afterEach(async () => {
    await store?.close()
    store = undefined
    await dir.cleanup()
  })

  describe('open', () => {
    it('keeps every acknowledged blob, inline and file, across close and reopen', async () => {
      store = await createFsStore({ path: dir.path })
      const values = [0, 100, DEFAULT_INLINE_THRESHOLD, DEFAULT_INLINE_THRESHOLD + 1, 3_000_000].map((n, i) => pseudoRandom(n, i + 1))
      const cids = []
      for (const v of values) cids.push(await store.put(chopped(v)))
      await store.close()
      store = await FsBlobStore.open(dir.path)
      assert.equal((await listAll(store)).length, values.length)
      for (let i = 0; i < values.length; i++) {
        assert.equal((await store.stat(cids[i])).size, values[i].length)
        assert.deepEqual(await collect(store.cat(cids[i])), values[i])
        assert.deepEqual(await store.outboard(cids[i]), new TreeHasher({ outboard: true }).update(values[i]).finalize().outboard)
      }
      assert.deepEqual(store.recovery, { tempFilesRemoved: 0, filesReindexed: 0, filesQuarantined: 0, missingFilesDropped: 0 })
    })

    it('refuses a second open of the same folder with StorageError while the first is open', async () => {
      store = await createFsStore({ path: dir.path })
      await expectReject(createFsStore({ path: dir.path }), 'StorageError')
      await store.close()
      store = await createFsStore({ path: dir.path })
    })

    it('refuses a second open through another spelling of the path (relative, symlink) and keeps the first lock', async () => {
      store = await createFsStore({ path: dir.path })
      await expectReject(createFsStore({ path: relative(process.cwd(), dir.path) }), 'StorageError')
      const link = `${dir.path}-link`
      await symlink(dir.path, link)
      try {
        await expectReject(createFsStore({ path: link }), 'StorageError')
      } finally {
        await unlink(link)
      }
      assert.ok(existsSync(join(dir.path, 'LOCK')), 'a refused open removed the LOCK of the open store')
    })

    it('lets exactly one of two concurrent opens of one folder succeed', async () => {
      const results = await Promise.allSettled([createFsStore({ path: dir.path }), createFsStore({ path: dir.path })])
      const opened = results.filter(r => r.status === 'fulfilled').map(r => (r as PromiseFulfilledResult<FsBlobStore>).value)
      const refused = results.filter(r => r.status === 'rejected').map(r => (r as PromiseRejectedResult).reason)
      for (const extra of opened.slice(1)) await extra.close()
      store = opened[0]
      assert.equal(opened.length, 1, 'both concurrent opens succeeded')
      assert.equal(refused[0]?.name, 'StorageError')
    })

    it('refuses a folder whose LOCK names another live process with StorageError whose lockedBy is that pid', async () => {
      const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
      try {
        await writeFile(join(dir.path, 'LOCK'), `${String(child.pid)} 0123abcd\n`)
        const err = await expectReject(createFsStore({ path: dir.path }), 'StorageError') as Error & { lockedBy?: number }
        assert.equal(err.lockedBy, child.pid)
        assert.equal(await readFile(join(dir.path, 'LOCK'), 'utf8'), `${String(child.pid)} 0123abcd\n`, 'a refused open changed the LOCK')
        await writeFile(join(dir.path, 'LOCK'), String(child.pid)) // the old format: the pid alone
        assert.equal((await expectReject(createFsStore({ path: dir.path }), 'StorageError') as Error & { lockedBy?: number }).lockedBy, child.pid)
      } finally {
        child.kill('SIGKILL')
        await new Promise(resolve => child.once('exit', resolve))
      }
      store = await createFsStore({ path: dir.path })
      await store.put(pseudoRandom(10, 1))
    })

    it('takes over a LOCK left by a dead process or an empty LOCK (a crash of the old code), also past a crashed takeover, and removes dead processes\' lock files', async () => {
      const dead = await deadPid()
      for (const text of [`${dead} 0123abcd\n`, String(dead), '', 'garbage']) {
        await writeFile(join(dir.path, 'LOCK'), text)
        await writeFile(join(dir.path, `LOCK.${dead}.feedbeef`), `${dead} feedbeef\n`)
        await writeFile(join(dir.path, 'LOCK.break.0123abcd'), `${dead} 77aa\n`) // a takeover that crashed
        store = await createFsStore({ path: dir.path })
        const [pid] = (await readFile(join(dir.path, 'LOCK'), 'utf8')).split(' ')
        assert.equal(Number(pid), process.pid, `LOCK ${JSON.stringify(text)} was not taken over`)
        assert.deepEqual((await readdir(dir.path)).filter(n => n.startsWith('LOCK')), ['LOCK'], 'a lock temp file was left')
        await store.close()
        store = undefined
        assert.equal(existsSync(join(dir.path, 'LOCK')), false, 'close left LOCK')
      }
    })

    it('lets exactly one of 8 processes racing for one folder hold it at a time (fresh, stale and empty LOCK)', async function () {
      this.timeout(60_000)
      const holders = join(dir.path, '..', `${relative(join(dir.path, '..'), dir.path)}-holders`)
      await mkdir(holders)
      try {
        const dead = await deadPid()
        // Each round starts the children together (they spin until `at`); a child that opens the
        // store registers in `holders`, counts the holders while it holds the store (until the other
        // seven have tried), and reports the most it saw.
        for (const start of [undefined, `${dead} 0123abcd\n`, '', undefined, String(dead), '']) {
          if (start !== undefined) await writeFile(join(dir.path, 'LOCK'), start)
          const at = Date.now() + 1500
          const tries = await mkdtemp(`${holders}-tries-`)
          const reports = await Promise.all(Array.from({ length: 8 }, async () => await raceChild(dir.path, holders, at, tries, 7)))
          await rm(tries, { recursive: true, force: true })
          const opened = reports.filter(r => r.ok)
          assert.equal(opened.length, 1, `round with LOCK ${JSON.stringify(start)}: ${opened.length} of 8 opened: ${JSON.stringify(reports)}`)
          assert.equal(opened[0].most, 1, 'two processes held the store at once')
          for (const r of reports.filter(r => !r.ok)) assert.equal(r.error, 'StorageError', JSON.stringify(r))
          assert.equal(existsSync(join(dir.path, 'LOCK')), false, 'the holder left LOCK')
        }
      } finally {
        await rm(holders, { recursive: true, force: true })
      }
    })

    it('removes temp files, re-indexes a data file with no index entry whose bytes match its name, and leaves foreign files alone', async () => {
      store = await createFsStore({ path: dir.path })
      const kept = pseudoRandom(200_000, 1)
      await store.put(kept)
      await store.close()
      store = undefined
      const unindexed = pseudoRandom(200_000, 2) // as if the process died between rename and commit
      await mkdir(join(dataPath(dir.path, unindexed), '..'), { recursive: true })
      await mkdir(join(dir.path, 'blobs', 'ab'), { recursive: true })
      await writeFile(dataPath(dir.path, unindexed), unindexed)
      await writeFile(join(dir.path, 'tmp', '123-1-abc.part'), pseudoRandom(1000, 3))
      await writeFile(join(dir.path, 'blobs', 'ab', 'README'), 'not ours: left alone')
      store = await createFsStore({ path: dir.path })
      assert.deepEqual(store.recovery, { tempFilesRemoved: 1, filesReindexed: 1, filesQuarantined: 0, missingFilesDropped: 0 })
      assert.equal(existsSync(join(dir.path, 'blobs', 'ab', 'README')), true)
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
      assert.deepEqual(await collect(store.cat(cidOfBytes(unindexed))), unindexed)
      assert.deepEqual(await collect(store.cat(cidOfBytes(kept))), kept)
      const report = await store.verify()
      assert.deepEqual(report.problems.map(p => `${p.problem} ${String(p.repaired)}`), ['unindexed true'], 'open reported what it re-indexed')
      assert.equal(report.checked, 2)
    })

    it('after the index is lost: keeps every file-backed value (re-hashed, listed, verified), quarantines a file whose bytes do not match its name, removes temp files, and logs it', async function () {
      this.timeout(30_000)
      store = await createFsStore({ path: dir.path })
      const values = [pseudoRandom(70_000, 11), pseudoRandom(1 << 20, 12), pseudoRandom(9 << 20, 13), pseudoRandom(300_001, 14)]
      for (const v of values) await store.put(v)
      const inline = pseudoRandom(1000, 15)
      await store.put(inline)
      await store.close()
      store = undefined
      const liar = pseudoRandom(100_000, 16) // stored under the name of other bytes
      const liarName = dataPath(dir.path, pseudoRandom(100_000, 17))
      await mkdir(join(liarName, '..'), { recursive: true })
      await writeFile(liarName, liar)
      await unlink(join(dir.path, 'index.mdb'))
      await unlink(join(dir.path, 'index.mdb-lock'))

      // verify's view (nothing changed): each file is reported, nothing is re-indexed or moved.
      const logs: string[] = []
      store = await createFsStore({ path: dir.path, reindexFiles: false, dropMissingFiles: false, log: (l) => logs.push(l) })
      const seen = await store.verify()
      assert.equal(seen.problems.filter(p => p.problem === 'unindexed' && !p.repaired).length, values.length)
      assert.equal(seen.problems.filter(p => p.problem === 'corrupt' && !p.repaired).length, 1)
      assert.equal((await listAll(store)).length, 0)
      assert.equal(existsSync(liarName), true)
      await store.close()
      store = undefined

      assert.ok(logs.some(l => /5 data file\(s\) have no index entry \(the index was missing/.test(l)), logs.join('\n'))
      assert.ok(logs.some(l => /4 data file\(s\) match their name and can be re-indexed, 1 do not/.test(l)), logs.join('\n'))
      await writeFile(join(dir.path, 'tmp', '99-1-abc.part'), pseudoRandom(5000, 18))
      logs.length = 0
      store = await createFsStore({ path: dir.path, log: (l) => logs.push(l) })
      assert.deepEqual(store.recovery, { tempFilesRemoved: 1, filesReindexed: values.length, filesQuarantined: 1, missingFilesDropped: 0 })
      const listed = (await listAll(store)).map(s => s.cid.toString()).sort()
      assert.deepEqual(listed, values.map(v => cidOfBytes(v).toString()).sort())
      for (const v of values) assert.deepEqual(await collect(store.cat(cidOfBytes(v))), v)
      const report = await store.verify()
      assert.equal(report.checked, values.length)
      assert.deepEqual(report.problems.filter(p => !(p.problem === 'unindexed' || p.problem === 'corrupt') || !p.repaired), [], 'every value verifies (outboards rebuilt)')
      assert.equal(existsSync(liarName), false)
      assert.deepEqual(await readdir(join(dir.path, 'quarantine')), [hex(cidOfBytes(pseudoRandom(100_000, 17)).multihash.digest)])
      await expectReject(store.stat(cidOfBytes(inline)), 'NotFoundError') // inline values lived in the index
      assert.ok(logs.some(l => /re-indexed 4 value\(s\).*moved 1 file/.test(l)), logs.join('\n'))
      // The look before (verify without --repair) did not hide from this open that the index was lost.
      assert.ok(logs.some(l => /the index was missing/.test(l)), logs.join('\n'))
      assert.ok(logs.some(l => /were lost with it; put them again/.test(l)), logs.join('\n'))
    })

    it('rebuilds a lost index of 2000 small files in well under a synced commit per file (batched commits)', async function () {
      this.timeout(60_000)
      store = await createFsStore({ path: dir.path, inlineThreshold: 0, sync: false })
      const puts: Array<Promise<unknown>> = []
      for (let i = 0; i < 2000; i++) puts.push(store.put(pseudoRandom(1000, 5000 + i)))
      await Promise.all(puts)
      await store.close()
      store = undefined
      await unlink(join(dir.path, 'index.mdb'))
      await unlink(join(dir.path, 'index.mdb-lock'))
      const started = performance.now()
      store = await createFsStore({ path: dir.path }) // sync: true, as Global opens it
      const ms = performance.now() - started
      assert.equal(store.recovery.filesReindexed, 2000)
      assert.equal((await listAll(store)).length, 2000)
      // One synced commit per file took ~3.3 ms each here (6.6 s); batched, ~0.9 s.
      assert.ok(ms < 3000, `re-indexing 2000 files took ${ms.toFixed(0)} ms`)
    })

    it('drops index entries whose data file has vanished', async () => {
      store = await createFsStore({ path: dir.path })
      const gone = pseudoRandom(200_000, 1)
      await store.put(gone)
      await store.close()
      store = undefined
      await unlink(dataPath(dir.path, gone))
      store = await createFsStore({ path: dir.path })
      assert.equal(store.recovery.missingFilesDropped, 1)
      assert.equal(await store.has(cidOfBytes(gone)), false)
    })

    it('rejects an inline threshold outside 0 .. 1 MiB - 1 with OutOfRangeError', async () => {
      await expectReject(createFsStore({ path: dir.path, inlineThreshold: -1 }), 'OutOfRangeError')
      await expectReject(createFsStore({ path: dir.path, inlineThreshold: 1 << 20 }), 'OutOfRangeError')
    })
  })

  describe('put', () => {
    for (const threshold of [DEFAULT_INLINE_THRESHOLD, 1000]) {
      for (const delta of [-1, 0, 1]) {
        const size = threshold + delta
        const where = delta <= 0 ? 'inside the index' : 'as a file'
        it(`keeps a ${size}-byte value ${where} with threshold ${threshold}, readable whole and in ranges`, async () => {
          store = await createFsStore({ path: dir.path, inlineThreshold: threshold })
          const value = pseudoRandom(size, size)
          const cid = await store.put(chopped(value))
          assert.equal(existsSync(dataPath(dir.path, value)), delta > 0)
          assert.deepEqual(await collect(store.cat(cid)), value)
          assert.deepEqual(await collect(store.cat(cid, { offset: size - 5, length: 4 })), value.subarray(size - 5, size - 1))
          assert.equal((await store.stat(cid)).size, size)
          const reader = await store.open(cid)
          assert.deepEqual(await reader.read(1, size - 2), value.subarray(1, size - 1))
          await reader.close()
          await store.close()
          store = await createFsStore({ path: dir.path, inlineThreshold: threshold })
          assert.deepEqual(await collect(store.cat(cid)), value)
        })
      }
    }

    it('does not let a put into a new shard folder go ahead before that folder is durable', async () => {
      // Two puts landing in one new shard: the second must wait for the first's folder fsync,
      // or it could be acknowledged while the shard folder itself may still vanish on power loss.
      await mkdir(join(dir.path, 'blobs'))
      const shards = new Shards(join(dir.path, 'blobs'), true)
      const order: string[] = []
      const shard = join(dir.path, 'blobs', 'ee')
      await Promise.all([
        shards.ensure(shard).then(() => order.push('first')),
        shards.ensure(shard).then(() => order.push('second'))
      ])
      assert.deepEqual(order, ['first', 'second'])
      assert.ok(existsSync(shard))
    })

    it('pins everything: stat says pinned', async () => {
      store = await createFsStore({ path: dir.path })
      const cid = await store.put(pseudoRandom(10, 1))
      assert.equal((await store.stat(cid)).pinned, true)
    })

    it('leaves no temp file behind after a verification failure, an abort or a failing source', async () => {
      store = await createFsStore({ path: dir.path })
      const value = pseudoRandom(3_000_000, 1)
      const other = cidOfBytes(pseudoRandom(10, 2))
      await expectReject(store.put(value, { expected: other }), 'VerificationError')
      const controller = new AbortController()
      await expectReject(store.put((async function * () {
        yield value
        controller.abort()
        yield value
      })(), { signal: controller.signal }), 'AbortError')
      await expectReject(store.put((async function * () {
        yield value
        throw new TypeError('source failed')
      })()), 'TypeError')
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
      assert.equal((await listAll(store)).length, 0)
    })

    it('fails a put still streaming when the store closes with ClosedError, leaving no temp file', async () => {
      store = await createFsStore({ path: dir.path })
      let release!: () => void
      const gate = new Promise<void>(resolve => { release = resolve })
      const put = store.put((async function * () {
        yield pseudoRandom(2_000_000, 1)
        await gate
        yield pseudoRandom(10, 2)
      })())
      await new Promise(resolve => setTimeout(resolve, 20))
      const closing = store.close()
      release()
      await expectReject(put, 'ClosedError')
      await closing
      store = undefined
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
    })

    it('surfaces a full disk as StorageError with the ENOSPC cause, and keeps working (tmpfs)', async function () {
      const mnt = await smallTmpfs(join(dir.path, 'small'))
      try {
        store = await createFsStore({ path: join(mnt, 'store') })
        const err = await expectReject(store.put(bigPieces(8)), 'StorageError')
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOSPC')
        assert.deepEqual(await readdir(join(mnt, 'store', 'tmp')), [])
        const small = pseudoRandom(200_000, 1)
        assert.deepEqual(await collect(store.cat(await store.put(small))), small)
        await store.close()
        store = undefined
        // A read-only filesystem: the store cannot even open.
        execFileSync('mount', ['-o', 'remount,ro', mnt], { stdio: 'ignore' })
        const roErr = await expectReject(createFsStore({ path: join(mnt, 'store') }), 'StorageError')
        assert.equal((roErr.cause as NodeJS.ErrnoException).code, 'EROFS')
      } finally {
        await store?.close()
        store = undefined
        execFileSync('umount', ['-l', mnt], { stdio: 'ignore' })
      }
    })

    it('a repair whose index commit fails on a full disk leaves the index and blobs/ agreeing, and the store still closes (tmpfs)', async function () {
      const mnt = await smallTmpfs(join(dir.path, 'small'))
      let reader: ReturnType<typeof spawn> | undefined
      try {
        const path = join(mnt, 'store')
        store = await createFsStore({ path })
        const value = pseudoRandom(300_000, 65)
        const cid = await store.put(value)
        const handle = await open(dataPath(path, value), 'r+')
        await handle.write(Buffer.from([value[1000] ^ 0x01]), 0, 1, 1000)
        await handle.close()
        await mkdir(join(path, 'quarantine'))
        // Another process's read transaction pins the index's pages, so the repair's commit
        // needs new pages and, once the disk is full, fails (lmdb would otherwise reuse freed ones).
        reader = spawn(process.execPath, ['--input-type=module', '-e', `
          import { open } from ${JSON.stringify(import.meta.resolve('lmdb'))}
          const txn = open({ path: ${JSON.stringify(join(path, 'index.mdb'))}, readOnly: true }).useReadTransaction()
          process.stdout.write('ready')
          process.stdin.on('end', () => { txn.done(); process.exit(0) }).resume()
        `], { stdio: ['pipe', 'pipe', 'inherit'] })
        await new Promise(resolve => reader?.stdout?.once('data', resolve))
        for (let i = 0; i < 20; i++) await store.put(pseudoRandom(1000, 700 + i)) // use up the free pages
        const filler = await open(join(mnt, 'filler'), 'w')
        try {
          for (;;) await filler.write(Buffer.alloc(64 << 10, 1))
        } catch (err) {
          assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC')
        } finally {
          await filler.close()
        }
        const err = await expectReject(store.verify({ repair: true }), 'StorageError')
        assert.match(err.message, /No space left/)
        // Not repaired, but consistent: an index entry names a data file that is there.
        assert.equal(await store.has(cid), true)
        assert.equal(existsSync(dataPath(path, value)), true, 'the data file of an indexed value is still in blobs/')
        reader.stdin?.end()
        // A failed commit does not leave close waiting forever (lmdb's overlapping sync kept a flush promise that never settled).
        const closing = store.close()
        store = undefined
        const closed = await Promise.race([closing.then(() => true), new Promise<false>(resolve => setTimeout(() => { resolve(false) }, 5000))])
        assert.equal(closed, true, 'close() resolved after the failed commit')
        await unlink(join(mnt, 'filler'))
        store = await createFsStore({ path })
        const report = await store.verify({ repair: true })
        assert.deepEqual(report.problems.map(p => [p.problem, p.repaired]), [['corrupt', true]])
        assert.equal(await store.has(cid), false)
        assert.deepEqual(await readdir(join(path, 'quarantine')), [hex(cid.multihash.digest)])
      } finally {
        reader?.kill()
        await store?.close()
        store = undefined
        execFileSync('umount', ['-l', mnt], { stdio: 'ignore' })
      }
    })

    it('streams a 192 MiB value in and out with RSS growth under 100 MiB', async function () {
      this.timeout(60_000)
      store = await createFsStore({ path: dir.path })
      const pieces = 192
      const rss0 = process.memoryUsage().rss
      let peak = rss0
      const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
      try {
        const hasher = new TreeHasher()
        const buf = new Uint8Array(1 << 20)
        const cid = await store.put((function * () {
          for (let i = 0; i < pieces; i++) {
            // Deterministic, reused buffer: the store must copy what it keeps.
            buf.fill(i & 0xff)
            buf[i] = 1
            hasher.update(buf)
            yield buf
          }
        })())
        assert.ok(cid.equals(cidOfBytes(new Uint8Array(0))) === false)
        const expected = hasher.finalize().root
        const check = new TreeHasher()
        let n = 0
        for await (const piece of store.cat(cid)) { check.update(piece); n += piece.length }
        assert.equal(n, pieces << 20)
        assert.deepEqual(check.finalize().root, expected)
        assert.deepEqual(cid.multihash.digest, expected)
      } finally {
        clearInterval(timer)
      }
      peak = Math.max(peak, process.memoryUsage().rss)
      const growth = (peak - rss0) / 2 ** 20
      assert.ok(growth < 100, `RSS grew by ${growth.toFixed(1)} MiB`)
    })
  })

  describe('direct I/O (O_DIRECT)', () => {
    const MiB = 1 << 20
    before(async () => {
      // A tmpfs temp folder takes O_DIRECT (Linux 6.6+) but keeps every file in memory, so what
      // these tests check of the page cache cannot hold there: say so rather than fail obscurely.
      const TMPFS_MAGIC = 0x01021994
      const { type } = await statfs(tmpdir())
      assert.notEqual(type, TMPFS_MAGIC, `these tests need a disk-backed temp folder; ${tmpdir()} is tmpfs (set TMPDIR)`)
    })
    /** Whether the page cache holds most of the value's data file now. */
    async function inPageCache (root: string, value: Uint8Array): Promise<boolean> {
      const h = await open(dataPath(root, value), 'r')
      try { return pageCached(h.fd, value.length) } finally { await h.close() }
    }

    it('writes large values past the page cache here, and small ones through it, each file byte-exact at sizes around the 4 KiB alignment and the 4 MiB slot', async function () {
      this.timeout(120_000)
      store = await createFsStore({ path: dir.path })
      // This project's machines (ext4, the addon built by npm install) take O_DIRECT.
      assert.equal(await store.directWrites(), true, 'the temp folder should take O_DIRECT writes')
      // (The 4 MiB slot and DIRECT_MIN_SIZE are the same size: a value just under it is written through the page cache.)
      assert.equal(DIRECT_MIN_SIZE, 4 * MiB)
      const sizes = [65_537, 17 * 4096, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 8 * MiB + 4095, 12 * MiB + 4097]
      for (const [i, size] of sizes.entries()) {
        const value = pseudoRandom(size, 500 + i)
        // The whole array (unaligned: copied into slots) and a stream of odd pieces.
        const whole = await store.put(value)
        assert.ok(whole.equals(cidOfBytes(value)), `CID of ${size} bytes`)
        const direct = size >= DIRECT_MIN_SIZE
        assert.equal(await inPageCache(dir.path, value), !direct, direct ? `the page cache holds none of the ${size}-byte file` : `the page cache holds the ${size}-byte file`)
        await store.delete(whole)
        // A stream of unknown size too: it is written once it is known to be small, or directly.
        const streamed = await store.put(chopped(value))
        assert.ok(streamed.equals(whole))
        assert.equal(await inPageCache(dir.path, value), !direct, `streamed, the ${size}-byte file is ${direct ? 'not ' : ''}in the page cache`)
        // The file holds exactly the value: the padded last write was truncated away.
        const file = await readFile(dataPath(dir.path, value))
        assert.equal(file.length, size)
        assert.ok(file.equals(value), `file of ${size} bytes`)
        assert.deepEqual(await collect(store.cat(whole, { offset: size - 4097, length: 4097 })), value.subarray(size - 4097))
      }
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
    })

    it('writes an aligned array from the caller\'s memory, copying none of it; an unaligned one is copied into slots', async () => {
      store = await createFsStore({ path: dir.path })
      assert.equal(await store.directWrites(), true)
      const aligned = alignedSlot(8 * MiB)
      assert.ok(isAligned(aligned))
      aligned.set(pseudoRandom(8 * MiB, 7))
      store.putStats.copy = 0
      const cid = await store.put(aligned)
      assert.equal(store.putStats.copy, 0)
      assert.ok((await readFile(dataPath(dir.path, aligned))).equals(aligned))
      const unaligned = aligned.subarray(1)
      assert.equal(isAligned(unaligned), false)
      await store.put(unaligned)
      assert.ok(store.putStats.copy > 0)
      assert.ok((await readFile(dataPath(dir.path, unaligned))).equals(unaligned))
      assert.ok(cid.equals(cidOfBytes(aligned)))
    })

    it('reads a value the page cache does not hold past it, the same bytes at any offset; its second whole read goes through the page cache', async () => {
      store = await createFsStore({ path: dir.path })
      const size = 6 * MiB + 12_345
      const value = pseudoRandom(size, 11)
      const cid = await store.put(value)
      assert.equal(await inPageCache(dir.path, value), false, 'a direct write leaves the page cache empty')
      // Only opened (for its size, as a get's first answer may): no read, so no choice yet.
      const peek = await store.open(cid)
      assert.equal(peek.size, size)
      await peek.close()
      const reader = await store.open(cid)
      for (const [offset, length] of [[0, 1], [1, 4095], [4095, 2], [4096, 4096], [5000, 70_000], [size - 1, 1], [size - 5000, 5000], [0, 0]]) {
        assert.deepEqual(await reader.read(offset, length), value.subarray(offset, offset + length), `read(${offset}, ${length})`)
      }
      const into = new Uint8Array(3 * MiB)
      assert.deepEqual(await reader.read(7, 2 * MiB, into), value.subarray(7, 7 + 2 * MiB))
      // readv scatters one span over several targets; the whole value, in pieces of a get's kind.
      assert.ok(reader.readv !== undefined)
      for (let off = 0; off < size; off += MiB) {
        const n = Math.min(MiB, size - off)
        const parts = [new Uint8Array(Math.min(100, n)), new Uint8Array(n - Math.min(100, n))]
        await reader.readv(off, parts)
        assert.deepEqual(Buffer.concat(parts), Buffer.from(value.subarray(off, off + n)), `readv(${off})`)
      }
      await reader.close()
      assert.equal(await inPageCache(dir.path, value), false, 'direct reads leave the page cache as it was')
      // Read whole once directly: the next reader goes through the page cache, which then holds it.
      const again = await store.open(cid)
      assert.deepEqual(await again.read(0, size), value)
      await again.close()
      assert.equal(await inPageCache(dir.path, value), true)
      assert.deepEqual(await collect(store.cat(cid)), value)
    })

    it('reads a file under DIRECT_MIN_SIZE through the page cache, even one the page cache does not hold', async () => {
      store = await createFsStore({ path: dir.path })
      // Probed explicitly (the put below is a small one's): reads could be direct here.
      assert.equal(await store.directWrites(), true)
      const value = alignedSlot(3 * MiB)
      value.set(pseudoRandom(value.length, 16))
      const cid = await store.put(value)
      assert.equal(await inPageCache(dir.path, value), true, 'written through the page cache')
      // The same bytes written over it directly: the kernel drops the file's cached pages.
      const h = await open(dataPath(dir.path, value), directFlags('read') | constants.O_WRONLY)
      try { assert.equal((await h.write(value, 0, value.length, 0)).bytesWritten, value.length) } finally { await h.close() }
      assert.equal(await inPageCache(dir.path, value), false, 'a direct write drops the cached pages')
      const reader = await store.open(cid)
      assert.ok(Buffer.from(await reader.read(0, value.length)).equals(value))
      await reader.close()
      assert.equal(await inPageCache(dir.path, value), true, 'read through the page cache, which now holds it')
    })

    it('still reads a value deleted after its reader opened, where reads are direct', async () => {
      store = await createFsStore({ path: dir.path })
      const value = pseudoRandom(5 * MiB + 3, 12)
      const cid = await store.put(value)
      const watch = await open(dataPath(dir.path, value), 'r')
      const reader = await store.open(cid)
      await store.delete(cid)
      assert.equal(existsSync(dataPath(dir.path, value)), false)
      assert.deepEqual(await reader.read(0, value.length), value)
      assert.equal(pageCached(watch.fd, value.length), false, 'read directly')
      await reader.close()
      await watch.close()
    })

    it('serves concurrent reads of one reader, the first of them choosing for all, and fails a read racing close with ClosedError, leaking no descriptor', async () => {
      store = await createFsStore({ path: dir.path })
      const size = 9 * MiB + 77
      const value = pseudoRandom(size, 13)
      const cid = await store.put(value)
      const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length
      const before = await fds()
      // Racing close: the value's first reader (so a direct one: its first byte read), closed
      // while a read of several direct read calls is under way; then a reader through the page
      // cache (directIO false), closed at its read's start.
      const racing = await store.open(cid)
      assert.deepEqual(await racing.read(0, 1), value.subarray(0, 1))
      const read = racing.read(0, 9 * MiB)
      read.catch(() => {})
      await new Promise(resolve => setImmediate(resolve))
      await racing.close()
      await expectReject(read, 'ClosedError')
      assert.equal(await fds(), before)
      const buffered = await createFsStore({ path: join(dir.path, 'buffered'), directIO: false })
      try {
        const other = await buffered.open(await buffered.put(value))
        const r2 = other.read(0, 9 * MiB)
        r2.catch(() => {})
        await other.close()
        await expectReject(r2, 'ClosedError')
      } finally {
        await buffered.close()
      }
      const reader = await store.open(cid)
      const offsets = Array.from({ length: 9 }, (_, i) => i * MiB + i)
      const parts = await Promise.all(offsets.map(async o => await reader.read(o, MiB)))
      for (const [i, o] of offsets.entries()) assert.deepEqual(parts[i], value.subarray(o, o + MiB), `read at ${o}`)
      // A read larger than one direct read call (4 MiB) is made of several.
      assert.deepEqual(await reader.read(3, 9 * MiB), value.subarray(3, 3 + 9 * MiB))
      await reader.close()
      assert.equal(await inPageCache(dir.path, value), false)
      assert.equal(await fds(), before)
    })

    it('writes an aligned array with an unaligned tail, and values under 4 KiB as files (through the page cache, as any under DIRECT_MIN_SIZE), byte-exact', async () => {
      store = await createFsStore({ path: dir.path, inlineThreshold: 0 })
      const value = alignedSlot(8 * MiB + DIRECT_ALIGN).subarray(0, 8 * MiB + 5)
      value.set(pseudoRandom(value.length, 14))
      await store.put(value)
      assert.equal(await inPageCache(dir.path, value), false)
      assert.ok((await readFile(dataPath(dir.path, value))).equals(value))
      for (const size of [1, 100, 4095, 4096, 4097]) {
        const small = pseudoRandom(size, 15 + size)
        const cid = await store.put(small)
        assert.equal(await inPageCache(dir.path, small), true, `the page cache holds the ${size}-byte file`)
        assert.ok((await readFile(dataPath(dir.path, small))).equals(small), `file of ${size} bytes`)
        await store.close()
        store = await createFsStore({ path: dir.path, inlineThreshold: 0 })
        const reader = await store.open(cid)
        assert.deepEqual(await reader.read(0, size), small)
        await reader.close()
      }
    })

    it('writes and reads through the page cache without sync, unless asked', async () => {
      store = await createFsStore({ path: dir.path, sync: false })
      assert.equal(await store.directWrites(), false)
      await store.close()
      store = await createFsStore({ path: dir.path, sync: false, directIO: true })
      assert.equal(await store.directWrites(), true)
    })

    it('admits a value to the page cache after a whole direct read, for a minute, remembering a bounded number of values', () => {
      const a = new ReadAdmission()
      assert.equal(a.direct('v', 100, 0), true)
      a.record('v', 60, 0)
      assert.equal(a.direct('v', 100, 1), true, 'part of it read: still direct')
      a.record('v', 40, 2)
      assert.equal(a.direct('v', 100, 3), false, 'read whole: the next read goes through the page cache')
      assert.equal(a.direct('v', 100, 2 + READMIT_MS + 1), true, 'a minute later: direct again')
      a.record('w', 100, 0)
      for (let i = 0; i < 5000; i++) a.record(`x${i}`, 1, 0)
      assert.equal(a.direct('w', 100, 1), true, 'forgotten among 5,000 newer values')
      assert.equal(a.direct('x4999', 1, 1), false)
    })

    it('writes through the page cache where the filesystem refuses O_DIRECT (ramfs) and with directIO false', async () => {
      const mnt = join(dir.path, 'ramfs')
      await mkdir(mnt)
      try {
        execFileSync('mount', ['-t', 'ramfs', 'ramfs', mnt], { stdio: 'ignore' })
      } catch (err) {
        throw new Error(`this test mounts a ramfs and needs root (mount failed: ${(err as Error).message})`)
      }
      try {
        for (const options of [{ path: join(mnt, 'store') }, { path: join(dir.path, 'buffered'), directIO: false }]) {
          const s = await createFsStore(options)
          try {
            assert.equal(await s.directWrites(), false)
            const value = pseudoRandom(5 * MiB + 3, 9)
            const cid = await s.put(chopped(value))
            assert.ok(cid.equals(await s.put(value)))
            assert.ok((await readFile(dataPath(options.path, value))).equals(value))
            const reader = await s.open(cid)
            assert.deepEqual(await reader.read(0, value.length), value)
            await reader.close()
            if ('directIO' in options) assert.equal(await inPageCache(options.path, value), true)
            assert.deepEqual(await readdir(join(options.path, 'tmp')), [])
          } finally {
            await s.close()
          }
        }
      } finally {
        execFileSync('umount', ['-l', mnt], { stdio: 'ignore' })
      }
    })
  })

  describe('put of a value already stored, whose stored copy is bad', () => {
    it('heals an inline value at once: the stored bytes are compared with the verified incoming ones and replaced', async () => {
      store = await createFsStore({ path: dir.path })
      const value = pseudoRandom(40_000, 61)
      const cid = await store.put(value)
      await store.close()
      store = undefined
      const mdb = await readFile(join(dir.path, 'index.mdb'))
      const at = mdb.indexOf(Buffer.from(value.subarray(20_000, 20_064)))
      assert.ok(at >= 0, 'the inline value is in index.mdb')
      mdb[at + 10] ^= 0x01
      await writeFile(join(dir.path, 'index.mdb'), mdb)
      store = await createFsStore({ path: dir.path })
      assert.notDeepEqual(await collect(store.cat(cid)), value, 'the stored copy is corrupt')
      assert.equal((await store.put(value)).toString(), cid.toString())
      assert.deepEqual(await collect(store.cat(cid)), value)
      assert.deepEqual((await store.verify()).problems, [])
    })

    it('heals a file value once it is marked suspect (a read failed verification); before that a re-put is a no-op', async () => {
      store = await createFsStore({ path: dir.path })
      const value = pseudoRandom(3 << 20, 62)
      const cid = await store.put(value)
      const handle = await open(dataPath(dir.path, value), 'r+')
      await handle.write(Buffer.from([value[1_000_000] ^ 0x01]), 0, 1, 1_000_000)
      await handle.close()
      await store.put(value)
      assert.equal((await store.verify()).problems.length, 1, 'not suspect: the re-put did not re-hash the file')
      store.markSuspect(cid)
      await store.put(value)
      assert.deepEqual(await collect(store.cat(cid)), value)
      assert.deepEqual((await store.verify()).problems, [])
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
    })

    it('clears the suspect mark once a put has stored or re-verified the value (inline, file, and a value deleted while it was being re-checked)', async () => {
      store = await createFsStore({ path: dir.path })
      const small = pseudoRandom(40_000, 63)
      const big = pseudoRandom(3 << 20, 64)
      const smallCid = await store.put(small)
      const bigCid = await store.put(big)
      for (const [cid, value, what] of [[smallCid, small, 'inline'], [bigCid, big, 'file']] as const) {
        store.markSuspect(cid)
        assert.equal(store.isSuspect(cid), true)
        await store.put(value)
        // A mark left behind makes Global's STAT call a good stored value absent until restart.
        assert.equal(store.isSuspect(cid), false, `${what}: the re-put verified the stored copy`)
      }
      // A re-check that read the old bytes may mark the value after its delete: the next put stores it afresh.
      await store.delete(smallCid)
      store.markSuspect(smallCid)
      await store.put(small)
      assert.equal(store.isSuspect(smallCid), false, 'stored afresh after the delete')
    })
  })

  describe('readInline', () => {
    it('returns an inline value and its outboard synchronously, and nothing for file-backed or absent values', async () => {
      store = await createFsStore({ path: dir.path })
      const small = pseudoRandom(40_000, 5)
      const big = pseudoRandom(DEFAULT_INLINE_THRESHOLD + 1, 6)
      const smallCid = await store.put(small)
      const bigCid = await store.put(big)
      const got = store.readInline(smallCid)
      assert.ok(got !== undefined)
      assert.deepEqual(got.data, small)
      assert.deepEqual(got.outboard, await store.outboard(smallCid))
      assert.equal(store.readInline(bigCid), undefined)
      assert.equal(store.readInline(cidOfBytes(pseudoRandom(10, 7))), undefined)
    })
  })

  describe('list', () => {
    it('lists in digest order, and from just after `after` when given (across batches of 256)', async () => {
      store = await createFsStore({ path: dir.path, sync: false })
      for (let i = 0; i < 600; i++) await store.put(pseudoRandom(20, 1000 + i))
      const all: string[] = []
      for await (const e of store.list()) all.push(hex(e.cid.multihash.digest))
      assert.equal(all.length, 600)
      assert.deepEqual(all, [...all].sort())
      for (const at of [0, 255, 256, 599]) {
        const rest: string[] = []
        for await (const e of store.list({ after: Buffer.from(all[at], 'hex') })) rest.push(hex(e.cid.multihash.digest))
        assert.deepEqual(rest, all.slice(at + 1), `after entry ${at}`)
      }
    })
  })

  describe('usage', () => {
    /** What usage() must say: a scan of list(). */
    async function scanned (s: FsBlobStore): Promise<{ values: number, bytes: number }> {
      let values = 0
      let bytes = 0
      for await (const e of s.list()) { values++; bytes += e.size }
      return { values, bytes }
    }

    it('counts values and bytes through puts (inline and file), re-puts, deletes, a reopen and a re-index of lost entries', async () => {
      store = await createFsStore({ path: dir.path, sync: false })
      assert.deepEqual(store.usage(), { values: 0, bytes: 0 })
      const small = pseudoRandom(1000, 71)
      const big = pseudoRandom(300_000, 72) // past the inline threshold: a data file
      await store.put(small)
      await store.put(big)
      await store.put(small) // a re-put: no change
      await Promise.all([store.put(pseudoRandom(10, 73)), store.put(pseudoRandom(20, 74)), store.put(pseudoRandom(10, 73))])
      assert.deepEqual(store.usage(), { values: 4, bytes: 1000 + 300_000 + 10 + 20 })
      assert.deepEqual(store.usage(), await scanned(store))
      assert.equal(await store.delete(cidOfBytes(small)), true)
      assert.equal(await store.delete(cidOfBytes(small)), false)
      assert.deepEqual(store.usage(), { values: 3, bytes: 300_000 + 30 })
      await store.close()
      store = await createFsStore({ path: dir.path, sync: false })
      assert.deepEqual(store.usage(), { values: 3, bytes: 300_000 + 30 }, 'counted again at open')
      await store.close()
      // The index lost: the data file is re-indexed at open, and counted.
      await rm(join(dir.path, 'index.mdb'), { force: true })
      await rm(join(dir.path, 'index.mdb-lock'), { force: true })
      store = await createFsStore({ path: dir.path, sync: false })
      assert.deepEqual(store.usage(), { values: 1, bytes: 300_000 })
      assert.deepEqual(store.usage(), await scanned(store))
    })
  })

  describe('delete', () => {
    it('removes the data file of a file blob', async () => {
      store = await createFsStore({ path: dir.path })
      const value = pseudoRandom(200_000, 1)
      const cid = await store.put(value)
      assert.equal(existsSync(dataPath(dir.path, value)), true)
      assert.equal(await store.delete(cid), true)
      assert.equal(existsSync(dataPath(dir.path, value)), false)
    })

    it('serializes with a concurrent put of the same value: the end state is consistent', async () => {
      store = await createFsStore({ path: dir.path })
      const value = pseudoRandom(200_000, 1)
      const cid = await store.put(value)
      await Promise.all([store.delete(cid), store.put(value), store.delete(cid), store.put(value)])
      assert.equal(await store.has(cid), true)
      assert.deepEqual(await collect(store.cat(cid)), value)
      assert.equal(existsSync(dataPath(dir.path, value)), true)
    })
  })

  describe('crash safety', () => {
    it('shows no partial blob after a process is SIGKILLed mid-put, cleans its temp file, and a retry succeeds', async function () {
      this.timeout(60_000)
      const fsUrl = new URL('../src/core/store/fs.js', import.meta.url).href
      const helpersUrl = new URL('./helpers.js', import.meta.url).href
      const pieces = 64
      const child = `
        const { createFsStore } = await import(${JSON.stringify(fsUrl)})
        const { pseudoRandom } = await import(${JSON.stringify(helpersUrl)})
        const store = await createFsStore({ path: ${JSON.stringify(dir.path)} })
        await store.put(pseudoRandom(100, 1))
        await store.put(pseudoRandom(300000, 2))
        process.stdout.write('acked\\n')
        let told = false
        await store.put((async function * () {
          for (let i = 0; i < ${pieces}; i++) {
            yield pseudoRandom(1 << 20, 1000 + i)
            // After a few MiB, slow down so the kill lands while the put is still writing.
            if (i >= 4) await new Promise(resolve => setTimeout(resolve, 50))
          }
        })(), { onProgress: () => { if (!told) { told = true; process.stdout.write('progress\\n') } } })
        process.stdout.write('done\\n')
      `
      const proc = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      const exited = new Promise<NodeJS.Signals | null>(resolve => proc.on('exit', (_code, signal) => resolve(signal)))
      await new Promise<void>((resolve, reject) => {
        proc.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          if (out.includes('progress')) {
            // Let it write a few more MiB, then kill it.
            setTimeout(() => { proc.kill('SIGKILL'); resolve() }, 100)
          }
        })
        proc.on('exit', () => { reject(new Error(`child exited early: ${out}`)) })
      })
      assert.equal(await exited, 'SIGKILL')
      assert.ok(out.includes('acked') && !out.includes('done'), out)
      const leftovers = await readdir(join(dir.path, 'tmp'))
      assert.equal(leftovers.length, 1, 'the interrupted put left its temp file')

      store = await createFsStore({ path: dir.path })
      assert.equal(store.recovery.tempFilesRemoved, 1)
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
      const listed = await listAll(store)
      assert.deepEqual(listed.map(s => s.size).sort((a, b) => a - b), [100, 300000])
      for (const s of listed) assert.equal((await store.stat(s.cid)).size, s.size)
      assert.deepEqual(await collect(store.cat(cidOfBytes(pseudoRandom(300000, 2)))), pseudoRandom(300000, 2))

      const hasher = new TreeHasher()
      for (const p of bigPieces(pieces)) hasher.update(p)
      const bigRoot = hasher.finalize().root
      const cid = await store.put(bigPieces(pieces))
      assert.deepEqual(cid.multihash.digest, bigRoot)
      assert.equal((await store.stat(cid)).size, pieces << 20)
      assert.equal((await listAll(store)).length, 3)
      const h = hex(bigRoot)
      assert.deepEqual(await readdir(join(dir.path, 'blobs', h.slice(0, 2))).then(names => names.includes(h)), true)
    })
  })
})
