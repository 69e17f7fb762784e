import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { blake3, OUT_LEN } from '../src/core/blake3/index.js'
import { HashPool } from '../src/core/blake3/worker.js'
import { StorageError } from '../src/core/errors.js'
import { createFsStore, type FsBlobStore } from '../src/core/store/fs.js'
import { TreeHasher } from '../src/core/tree.js'
import { collect, hex, pseudoRandom, tempDir } from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB
const GROUP = 16 * KiB
/** The fs store's staging slot (one worker job). */
const SLOT = 4 * MiB

function shared (bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(bytes.length))
  out.set(bytes)
  return out
}

function reference (value: Uint8Array): { root: string, outboard: string } {
  const result = new TreeHasher({ outboard: true }).update(value).finalize()
  return { root: hex(result.root), outboard: hex(result.outboard as Uint8Array) }
}

/** `value` in pieces of `piece` bytes (copies, like a producer reusing nothing). */
function * pieces (value: Uint8Array, piece: number): Generator<Uint8Array> {
  for (let off = 0; off < value.length; off += piece) yield value.slice(off, off + piece)
}

describe('hash worker pool', () => {
  let pool: HashPool | undefined
  afterEach(async () => { await pool?.close(); pool = undefined })

  it('computes the same group CVs as the main-thread backend, at any chunk counter', async () => {
    pool = new HashPool(2)
    for (const [groups, counter] of [[1, 0], [3, 16], [64, 0], [257, 4096], [300, 2 ** 32 + 16]]) {
      const data = pseudoRandom(groups * GROUP, groups)
      const want = new Uint8Array(groups * OUT_LEN)
      blake3.groupCVs(data, counter, 4, want, 0)
      const got = await pool.groupCVs(shared(data), counter, 4)
      assert.equal(hex(got.cvs), hex(want), `${groups} groups at chunk ${counter}`)
    }
  })

  it('hashes a range in the middle of a shared buffer and runs jobs concurrently', async () => {
    pool = new HashPool(2)
    const data = shared(pseudoRandom(12 * GROUP, 7))
    const jobs = [0, 4, 8].map(async g => await (pool as HashPool).groupCVs(data.subarray(g * GROUP, (g + 4) * GROUP), g * 16, 4))
    const got = (await Promise.all(jobs)).map(r => hex(r.cvs)).join('')
    const want = new Uint8Array(12 * OUT_LEN)
    blake3.groupCVs(data, 0, 4, want, 0)
    assert.equal(got, hex(want))
  })

  it('refuses data outside a SharedArrayBuffer and partial groups', async () => {
    pool = new HashPool(1)
    await assert.rejects(pool.groupCVs(new Uint8Array(GROUP), 0, 4), TypeError)
    await assert.rejects(pool.groupCVs(shared(new Uint8Array(GROUP + 1)), 0, 4), TypeError)
  })

  it('rejects with StorageError when a worker crashes, and replaces the worker', async () => {
    pool = new HashPool(1)
    await assert.rejects(pool.crashForTest(), StorageError)
    const data = shared(pseudoRandom(2 * GROUP, 3))
    const want = new Uint8Array(2 * OUT_LEN)
    blake3.groupCVs(data, 0, 4, want, 0)
    assert.equal(hex((await pool.groupCVs(data, 0, 4)).cvs), hex(want))
  })

  it('rejects pending jobs with StorageError when closed', async () => {
    pool = new HashPool(1)
    const job = assert.rejects(pool.groupCVs(shared(new Uint8Array(16 * MiB)), 0, 4), StorageError)
    await pool.close()
    await job
    await assert.rejects(pool.groupCVs(shared(new Uint8Array(GROUP)), 0, 4), StorageError)
  })

  it('does not keep the process alive when not closed', function () {
    this.timeout(30000)
    const module = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'src', 'core', 'blake3', 'worker.js')
    const script = `import { HashPool } from ${JSON.stringify(module)}
const pool = new HashPool(2)
const r = await pool.groupCVs(new Uint8Array(new SharedArrayBuffer(16384)), 0, 4)
console.log(r.cvs.length)`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20000 }).toString().trim()
    assert.equal(out, '32')
  })
})

describe('TreeHasher fed with precomputed group CVs', () => {
  it('gives the same root and outboard as feeding the bytes, for any split', () => {
    for (const size of [GROUP + 1, 2 * GROUP, 2 * GROUP + 1, 5 * GROUP, 64 * GROUP, 64 * GROUP + 100, 100 * GROUP - 1]) {
      const value = pseudoRandom(size, size)
      const want = reference(value)
      const whole = Math.floor(size / GROUP)
      for (const cvGroups of [1, 2, Math.floor(whole / 2), whole]) {
        if (cvGroups < 1 || cvGroups > whole || (cvGroups === whole && whole === 1 && size === GROUP)) continue
        const hasher = new TreeHasher({ outboard: true })
        // Feed CVs in two calls, then the rest as bytes.
        const cvs = new Uint8Array(cvGroups * OUT_LEN)
        blake3.groupCVs(value.subarray(0, cvGroups * GROUP), 0, 4, cvs, 0)
        const half = Math.floor(cvGroups / 2)
        hasher.updateGroupCVs(cvs.subarray(0, half * OUT_LEN))
        hasher.updateGroupCVs(cvs.subarray(half * OUT_LEN))
        hasher.update(value.subarray(cvGroups * GROUP))
        assert.equal(hasher.size, size)
        const got = hasher.finalize()
        assert.equal(hex(got.root), want.root, `size ${size}, ${cvGroups} groups as CVs`)
        assert.equal(hex(got.outboard as Uint8Array), want.outboard, `size ${size}, ${cvGroups} groups as CVs`)
      }
    }
  })

  it('accepts CVs after bytes that end on a group boundary', () => {
    const value = pseudoRandom(6 * GROUP, 9)
    const cvs = new Uint8Array(4 * OUT_LEN)
    blake3.groupCVs(value.subarray(2 * GROUP), 32, 4, cvs, 0)
    const got = new TreeHasher({ outboard: true }).update(value.subarray(0, 2 * GROUP)).updateGroupCVs(cvs).finalize()
    assert.deepEqual({ root: hex(got.root), outboard: hex(got.outboard as Uint8Array) }, reference(value))
  })

  it('refuses CVs when the bytes fed so far end inside a group, and a single group fed as a CV', () => {
    assert.throws(() => new TreeHasher().update(new Uint8Array(100)).updateGroupCVs(new Uint8Array(OUT_LEN)))
    assert.throws(() => new TreeHasher().updateGroupCVs(new Uint8Array(OUT_LEN)).finalize())
  })
})

describe('fs store put with hash workers', () => {
  let dir: { path: string, cleanup: () => Promise<void> }
  let store: FsBlobStore | undefined
  beforeEach(async () => { dir = await tempDir('dstore-hw-') })
  afterEach(async () => {
    await store?.close()
    store = undefined
    await dir.cleanup()
  })

  const sizes = [0, 1, GROUP - 1, GROUP, GROUP + 1, 64 * KiB, 64 * KiB + 1, MiB - 1, MiB, MiB + 1,
    SLOT - 1, SLOT, SLOT + 1, SLOT + GROUP, 3 * SLOT + 12345, 4 * SLOT, 5 * SLOT, 9 * SLOT + GROUP - 1]

  for (const workers of [2, 0]) {
    it(`stores the same CID and outboard as TreeHasher, whole and streamed in odd pieces (${workers} workers)`, async function () {
      this.timeout(120000)
      store = await createFsStore({ path: dir.path, hashWorkers: workers, inlineThreshold: 0 })
      for (const size of sizes) {
        const value = pseudoRandom(size, size + 1)
        const want = reference(value)
        for (const [label, source] of [
          ['whole', value],
          ['pieces of 1 MiB + 1', pieces(value, MiB + 1)],
          ['pieces of 7 KiB - 3', pieces(value, 7 * KiB - 3)],
          ['pieces of 5 MiB', pieces(value, 5 * MiB)]
        ] as const) {
          const cid = await store.put(source, { size })
          assert.equal(hex(cid.multihash.digest), want.root, `${size} bytes, ${label}`)
          assert.equal(hex(await store.outboard(cid)), want.outboard, `${size} bytes, ${label}`)
        }
        const cid = await store.put(value)
        const back = await collect(store.cat(cid))
        assert.ok(Buffer.from(back).equals(value), `${size} bytes read back`)
        await store.delete(cid)
      }
    })
  }

  it('fails a put with StorageError when a hash worker crashes, removes the temp file, and recovers', async () => {
    store = await createFsStore({ path: dir.path, hashWorkers: 1 })
    const pool = store.hashPool() as HashPool
    const original = pool.groupCVs.bind(pool)
    let calls = 0
    pool.groupCVs = async (...args) => {
      if (++calls === 2) return await pool.crashForTest()
      return await original(...args)
    }
    const value = pseudoRandom(6 * SLOT + 5, 77)
    await assert.rejects(store.put(pieces(value, MiB)), StorageError)
    assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
    assert.equal((await readdir(join(dir.path, 'blobs'))).length, 0)
    pool.groupCVs = original
    const cid = await store.put(value)
    assert.equal(hex(cid.multihash.digest), reference(value).root)
  })

  it('hashes a whole Uint8Array on the main thread, written from the caller\'s array (no worker job, no staging copy); a stream still uses the workers', async () => {
    // Through the page cache: a direct write would need the caller's array aligned (below).
    store = await createFsStore({ path: dir.path, hashWorkers: 1, inlineThreshold: 0, directIO: false })
    const pool = store.hashPool() as HashPool
    const original = pool.groupCVs.bind(pool)
    let calls = 0
    pool.groupCVs = async (...args) => { calls++; return await original(...args) }
    const value = pseudoRandom(5 * SLOT + 777, 91)
    const cid = await store.put(value)
    assert.equal(calls, 0)
    assert.equal(hex(cid.multihash.digest), reference(value).root)
    assert.equal(hex(await store.outboard(cid)), reference(value).outboard)
    await store.delete(cid)
    const again = await store.put(pieces(value, MiB))
    assert.ok(calls >= 5, `${calls} worker jobs for a streamed put`)
    assert.ok(again.equals(cid))
  })

  it('with direct writes, copies an unaligned whole Uint8Array into slots, which the workers hash', async () => {
    store = await createFsStore({ path: dir.path, hashWorkers: 1, inlineThreshold: 0 })
    assert.equal(await store.directWrites(), true)
    const pool = store.hashPool() as HashPool
    const original = pool.groupCVs.bind(pool)
    let calls = 0
    pool.groupCVs = async (...args) => { calls++; return await original(...args) }
    const value = pseudoRandom(5 * SLOT + 777, 92).subarray(1)
    const cid = await store.put(value)
    assert.ok(calls >= 5, `${calls} worker jobs`)
    assert.equal(hex(cid.multihash.digest), reference(value).root)
    assert.equal(hex(await store.outboard(cid)), reference(value).outboard)
  })

  it('terminates its workers on close', async () => {
    store = await createFsStore({ path: dir.path, hashWorkers: 2 })
    await store.put(pseudoRandom(3 * SLOT, 5))
    const pool = store.hashPool() as HashPool
    await store.close()
    store = undefined
    await assert.rejects(pool.groupCVs(shared(new Uint8Array(GROUP)), 0, 4), StorageError)
  })
})
