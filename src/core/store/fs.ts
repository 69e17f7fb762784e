/**
 * The filesystem store: Global's canonical, crash-safe copies. docs/STORAGE.md describes the
 * layout and the crash-safety argument; the pieces live in ./fs/: the folder layout
 * (layout.ts), the LOCK file (lock.ts), per-key locks (locks.ts), options and their defaults
 * (options.ts), the lmdb index and its record codec (index-db.ts, records.ts), file I/O and
 * storage errors (io.ts), readers of stored values (readers.ts), large puts (put.ts), direct
 * I/O past the page cache (direct.ts), verify and repair (verify.ts) and open's recovery
 * (recover.ts).
 *
 * A value becomes visible only through its `index` entry, which is committed (and flushed)
 * after the data file is fsynced and renamed into place (and its folder fsynced).
 */
import { availableParallelism } from 'node:os'
import { mkdir, open as openFile, realpath, rename, rm, unlink, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { CID } from 'multiformats/cid'
import { cidFromDigest, parseCID, type CIDLike } from '../cid.js'
import { throwIfAborted } from '../abort.js'
import { ClosedError, NotFoundError, OutOfRangeError, VerificationError } from '../errors.js'
import { blake3 } from '../blake3/index.js'
import { HashPool } from '../blake3/worker.js'
import type { ByteRange } from '../bao/index.js'
import { DEFAULT_GROUP_LOG, HEADER_LEN, TreeHasher, encodeHeader, outboardLength } from '../tree.js'
import type {
  AbortOptions, BlobReader, BlobStat, ByteSource, GetOptions, ListOptions, PutOptions, GlobalStore
} from './interface.js'
import { checkPutOptions, iterateSource, resolveRange, verifyPut } from './util.js'
import { IndexDb } from './fs/index-db.js'
import { fsyncDir, readFully, storage, storageError } from './fs/io.js'
import { FsLayout } from './fs/layout.js'
import { acquireLock, releaseLock } from './fs/lock.js'
import { FilePut, SLOT, newPutStats, type PutStats, type Staging } from './fs/put.js'
import { BouncePool, DIRECT_MIN_SIZE, DirectProbe, ReadAdmission, alignedSlot, pageCached } from './fs/direct.js'
import { KeyLocks, Shards } from './fs/locks.js'
import { fileReader, inlineReader } from './fs/readers.js'
import type { FsStoreOptions } from './fs/options.js'
import { KIND_FILE, KIND_INLINE, type IndexRecord } from './fs/records.js'
import { recover, type FsRecoveryReport } from './fs/recover.js'
import { checkStoredRange, verifyKey, type FsVerifyOptions, type FsVerifyProblem, type FsVerifyReport } from './fs/verify.js'
import { SuspectSet } from './suspects.js'

export type { FsRecoveryReport } from './fs/recover.js'
export type { FsVerifyOptions, FsVerifyProblem, FsVerifyReport } from './fs/verify.js'
export type { PutStats } from './fs/put.js'
export type { FsStoreOptions } from './fs/options.js'

/** Values of at most this many bytes live inside the index (see docs/STORAGE.md for why). */
export const DEFAULT_INLINE_THRESHOLD = 64 * 1024
/** Size of the pieces `get` yields (and the bound of `inlineThreshold`). */
const IO_PIECE = 1 << 20
/** Idle slots the store keeps for later puts. */
const FREE_SLOTS = 4
/**
 * With the native backend, none: it hashes about 4.5 GB/s on one core, and a worker cost more
 * CPU than it saved (a 256 MiB put from memory, 2 cores: 0.65 s/GB and 2,050–2,090 MB/s on the
 * main thread against 1.0–1.3 s/GB and 970–1,470 MB/s with one worker, 2026-12-03). With
 * WebAssembly, one core is left to the main thread (copies, tree merging) and the thread
 * pool's write syscalls.
 */
const DEFAULT_HASH_WORKERS = blake3.name.startsWith('native') ? 0 : Math.max(0, Math.min(4, availableParallelism() - 1))
/** Entries `list` reads from the index per batch. */
const LIST_BATCH = 256

export class FsBlobStore implements GlobalStore {
  readonly kind = 'fs'
  /** The store's folder: its real path (absolute, symlinks resolved). */
  readonly path: string
  readonly inlineThreshold: number
  readonly sync: boolean
  /** Worker threads hashing large puts (0: the main thread hashes). */
  readonly hashWorkers: number
  /** What the last open found and did. */
  readonly recovery: FsRecoveryReport
  /** Busy time of each stage of this store's file puts, for measurements; reset it by assigning its fields. */
  readonly putStats: PutStats = newPutStats()

  private closed = false
  private closing: Promise<void> | undefined
  /** In-process per-key mutex for the finalize step of put, for delete and for verify. */
  private readonly keyLocks = new KeyLocks()
  /** Puts and deletes in progress, awaited by close. */
  private readonly inflight = new Set<Promise<unknown>>()
  /** Values a read found bad (hex digests): a re-put re-verifies and heals them. */
  private readonly suspects = new SuspectSet()
  /** Shard folders under blobs/ known to exist durably. */
  private readonly shards: Shards
  private pool: HashPool | undefined
  /** Idle staging slots kept for the next large put. */
  private readonly freeSlots: Buffer[] = []
  /** Whether this store's folder takes direct I/O (with `directIO`). */
  private readonly directProbe: DirectProbe
  /** Which reads of files the page cache does not hold are direct (direct.ts). */
  private readonly readAdmission = new ReadAdmission()
  /** Aligned buffers of direct reads. */
  private readonly bounces = new BouncePool()

  private constructor (
    private readonly layout: FsLayout,
    private readonly db: IndexDb,
    options: { inlineThreshold: number, sync: boolean, hashWorkers: number, directIO: boolean },
    recovery: FsRecoveryReport,
    /** What the last open found (missing and unindexed files), reported by `verify`. */
    private readonly openProblems: FsVerifyProblem[]
  ) {
    this.path = layout.root
    this.hashWorkers = options.hashWorkers
    this.inlineThreshold = options.inlineThreshold
    this.sync = options.sync
    this.directProbe = new DirectProbe(layout.tmp, options.directIO)
    this.recovery = recovery
    this.shards = new Shards(layout.blobs, options.sync)
  }

  /** Opens (creating if needed) the store in `options.path`, cleaning and reconciling what a crash (or a lost index) left. */
  static async open (options: FsStoreOptions | string): Promise<FsBlobStore> {
    const opts = typeof options === 'string' ? { path: options } : options
    const inlineThreshold = opts.inlineThreshold ?? DEFAULT_INLINE_THRESHOLD
    if (!Number.isSafeInteger(inlineThreshold) || inlineThreshold < 0 || inlineThreshold >= IO_PIECE) {
      throw new OutOfRangeError(`inlineThreshold must be at least 0 and below ${IO_PIECE}`)
    }
    const sync = opts.sync ?? true
    const hashWorkers = opts.hashWorkers ?? DEFAULT_HASH_WORKERS
    if (!Number.isSafeInteger(hashWorkers) || hashWorkers < 0 || hashWorkers > 64) {
      throw new OutOfRangeError('hashWorkers must be an integer from 0 to 64')
    }
    const given = new FsLayout(opts.path)
    const root = await storage('create store folders', async () => {
      await mkdir(given.tmp, { recursive: true })
      await mkdir(given.blobs, { recursive: true })
      if (sync) await fsyncDir(given.root)
      // One spelling per folder (absolute, symlinks resolved), so the in-process lock sees
      // a relative path or a symlink to an open store as the same store.
      return await realpath(given.root)
    })
    const layout = new FsLayout(root)
    await acquireLock(root, layout.lock)
    let db: IndexDb | undefined
    try {
      const reindex = opts.reindexFiles ?? true
      // An open that only looks (verify without --repair) leaves a lost index looking lost.
      const opened = await IndexDb.open(layout.index, sync, reindex)
      db = opened.db
      const { report, problems } = await recover({
        layout,
        db,
        dropMissing: opts.dropMissingFiles ?? true,
        reindex,
        indexCreated: opened.created,
        log: opts.log ?? (() => {})
      })
      return new FsBlobStore(layout, db, { inlineThreshold, sync, hashWorkers, directIO: opts.directIO ?? sync }, report, problems)
    } catch (err) {
      if (db !== undefined) await db.close().catch(() => {})
      await releaseLock(layout.lock)
      throw err
    }
  }

  async has (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    this.check(options)
    return this.db.has(keyOf(cid))
  }

  async stat (cid: CIDLike, options?: AbortOptions): Promise<BlobStat> {
    this.check(options)
    const parsed = parseCID(cid)
    const record = this.db.record(parsed.multihash.digest)
    if (record === undefined) throw notFound(parsed)
    return { cid: parsed, size: record.size, pinned: record.pinned }
  }

  /** Values stored and the sum of their sizes, without a scan (kept by the index). */
  usage (): { values: number, bytes: number } {
    return this.db.usage()
  }

  async put (source: ByteSource, options: PutOptions = {}): Promise<CID> {
    this.check(options)
    return await this.track(this.doPut(source, options))
  }

  private async doPut (source: ByteSource, options: PutOptions): Promise<CID> {
    const expected = checkPutOptions(options)
    const hasher = new TreeHasher({ outboard: true })
    // While the value may still be inline, copies of its pieces; past the threshold, a FilePut.
    let head: Uint8Array[] | undefined = []
    let file: FilePut | undefined
    let received = 0
    const total = options.size ?? (source instanceof Uint8Array ? source.length : undefined)

    try {
      for await (const chunk of iterateSource(source, options.signal)) {
        if (this.closed) throw new ClosedError()
        received += chunk.length
        if (options.size !== undefined && received > options.size) {
          throw new VerificationError(`Expected ${options.size} bytes, received more`)
        }
        if (chunk.length === 0) continue
        if (head !== undefined) {
          if (received <= this.inlineThreshold) {
            head.push(chunk.slice())
            continue
          }
          // Too big to be inline: switch to streaming through a file.
          file = new FilePut(await this.staging(), hasher, options, total)
          for (const piece of head) await file.add(piece, false)
          head = undefined
        }
        // A Uint8Array source is the whole value, held by the caller until the put resolves:
        // it can be written from directly. Pieces of a stream may be reused by the producer.
        await (file as FilePut).add(chunk, chunk === source)
      }
      throwIfAborted(options.signal)
      if (this.closed) throw new ClosedError()

      if (head !== undefined) {
        // Inline: the value never touches a file; it goes into the index with its outboard parents.
        for (const piece of head) hasher.update(piece)
        const result = hasher.finalize()
        const cid = verifyPut(result.root, result.size, expected, options)
        const parents = (result.outboard as Uint8Array).subarray(HEADER_LEN)
        const value = Buffer.allocUnsafeSlow(parents.length + received)
        value.set(parents, 0)
        let at = parents.length
        for (const piece of head) { value.set(piece, at); at += piece.length }
        await this.commit(cid, { kind: KIND_INLINE, pinned: true, size: received }, value)
        options.onProgress?.({ type: 'blob:put:write', bytes: received, total: received })
        return cid
      }

      const f = file as FilePut
      await f.finish()
      const result = hasher.finalize()
      const cid = verifyPut(result.root, result.size, expected, options)
      await f.durable()
      throwIfAborted(options.signal)
      const parents = Buffer.from((result.outboard as Uint8Array).subarray(HEADER_LEN))
      const tk = performance.now()
      await this.commit(cid, { kind: KIND_FILE, pinned: true, size: result.size }, parents, f.tempPath)
      this.putStats.commit += performance.now() - tk
      f.committed()
      return cid
    } catch (err) {
      if (file !== undefined) await file.abort()
      throw err
    }
  }

  /**
   * Whether this store's file puts of DIRECT_MIN_SIZE or more write with O_DIRECT, past the
   * page cache (`directIO`, and the filesystem takes it: DirectProbe). The probe runs at the
   * first file put, at the first `open()` of a file value of DIRECT_MIN_SIZE or more (in the
   * background: close waits for it), or at this call.
   */
  async directWrites (): Promise<boolean> {
    return await this.directProbe.check()
  }

  /** What a file put may use of this store. */
  private async staging (): Promise<Staging> {
    return {
      sync: this.sync,
      direct: await this.directWrites(),
      stats: this.putStats,
      pool: this.hashPool(),
      takeSlot: () => this.freeSlots.pop() ?? alignedSlot(SLOT),
      releaseSlot: (slot) => { if (this.freeSlots.length < FREE_SLOTS) this.freeSlots.push(slot) },
      tempFile: () => this.layout.tempFile(),
      closed: () => this.closed
    }
  }

  /**
   * The worker pool for large puts (made at first use), or undefined when hashing stays on the
   * main thread. @internal exposed for tests (a worker crash).
   */
  hashPool (): HashPool | undefined {
    if (this.hashWorkers === 0 || this.closed) return undefined
    this.pool ??= new HashPool(this.hashWorkers)
    return this.pool
  }

  /**
   * Makes a verified value visible: under the key's lock, skips it if already stored (and
   * intact, see {@link storedIsBad}), else renames the data file into place (and fsyncs its
   * folder), then commits the index entry and the payload in one transaction and waits for
   * the flush. A stored copy found bad is replaced by the verified incoming bytes.
   */
  private async commit (cid: CID, record: IndexRecord, payload: Buffer, tempPath?: string): Promise<void> {
    const key = Buffer.from(cid.multihash.digest)
    await this.keyLocks.run(key, async () => {
      if (this.closed) throw new ClosedError()
      const existing = this.db.record(key)
      if (existing !== undefined && !await this.storedIsBad(key, existing, record, payload)) {
        if (tempPath !== undefined) await rm(tempPath, { force: true }).catch(() => {})
        // The stored copy was found good (or was not suspect): nothing is suspect any more.
        this.suspects.delete(key)
        return
      }
      const final = tempPath !== undefined ? this.layout.blob(key) : undefined
      try {
        if (tempPath !== undefined && final !== undefined) {
          await this.shards.ensure(dirname(final))
          await storage('rename data file into place', async () => { await rename(tempPath, final) })
          if (this.sync) await storage('fsync blob folder', async () => { await fsyncDir(dirname(final)) })
        }
        await this.db.put(key, record, payload)
        // Verified bytes are stored now (a heal, or a put after a delete that a re-check's mark outlived).
        this.suspects.delete(key)
        // Healing a file value with an inline copy (the threshold changed): the old file goes.
        if (existing?.kind === KIND_FILE && final === undefined) await unlink(this.layout.blob(key)).catch(() => {})
      } catch (err) {
        // Not committed, so not visible: the renamed file is unindexed (open would re-index it, as its bytes are verified).
        if (final !== undefined && !this.db.has(key)) await rm(final, { force: true }).catch(() => {})
        throw err
      }
    })
  }

  /**
   * Whether the stored copy of a value being put again is bad, checked only when that is cheap
   * (an inline value: its stored payload compared with the verified incoming one, which it
   * must equal byte for byte) or when the value is suspect ({@link markSuspect}: a read of it
   * failed verification; the file is re-hashed). Called under the key lock. Other re-puts of a
   * stored value stay no-ops.
   */
  private async storedIsBad (key: Buffer, existing: IndexRecord, incoming: IndexRecord, payload: Buffer): Promise<boolean> {
    if (existing.kind === KIND_INLINE && incoming.kind === KIND_INLINE) {
      const stored = this.db.payload(key)
      return stored === undefined || !stored.equals(payload)
    }
    // The mark is cleared by commit once this put has stored or re-verified the value.
    if (existing.kind !== KIND_INLINE && !this.suspects.has(key)) return false
    const ctx = { layout: this.layout, db: this.db, check: (o?: AbortOptions) => { this.check(o) } }
    const buffer = new Uint8Array(existing.kind === KIND_INLINE ? 0 : SLOT)
    return await verifyKey(ctx, key, { checked: 0, bytes: 0, problems: [] }, buffer, {}) !== undefined
  }

  /**
   * Marks a stored value as suspect (a read of it failed verification, e.g. Global's re-check
   * after a Local rejected it): the next put of it re-verifies the stored copy and, if it is
   * bad, replaces it with the put's verified bytes. Held in memory only (until close), for at
   * most 4096 values.
   */
  markSuspect (cid: CIDLike): void {
    this.suspects.add(keyOf(cid))
  }

  /** Whether a value is marked suspect and not yet re-verified by a put (so a STAT could ask for its bytes). */
  isSuspect (cid: CIDLike): boolean {
    return this.suspects.has(keyOf(cid))
  }

  cat (cid: CIDLike, options: GetOptions = {}): AsyncIterable<Uint8Array> {
    return this.read(cid, options)
  }

  private async * read (cid: CIDLike, options: GetOptions): AsyncGenerator<Uint8Array> {
    this.check(options)
    const parsed = parseCID(cid)
    const key = Buffer.from(parsed.multihash.digest)
    const record = this.db.record(key)
    if (record === undefined) throw notFound(parsed)
    const { start, end } = resolveRange(record.size, options)
    const total = end - start
    if (record.kind === KIND_INLINE) {
      const value = this.db.payload(key)
      if (value === undefined) throw notFound(parsed)
      const base = value.length - record.size
      if (total > 0) {
        yield new Uint8Array(value.buffer, value.byteOffset + base + start, total)
        options.onProgress?.({ type: 'blob:get:read', bytes: total, total })
      }
      return
    }
    const handle = await this.openData(key, parsed)
    try {
      let pos = start
      while (pos < end) {
        this.check(options)
        const n = Math.min(IO_PIECE, end - pos)
        const piece = await readFully(handle, pos, n)
        pos += n
        yield piece
        options.onProgress?.({ type: 'blob:get:read', bytes: pos - start, total })
      }
    } finally {
      await handle.close().catch(() => {})
    }
  }

  async delete (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    this.check(options)
    const key = keyOf(cid)
    return await this.track(this.keyLocks.run(key, async () => {
      const record = this.db.record(key)
      if (record === undefined) return false
      // Index first: once committed the blob is gone for every reader. A crash before the
      // unlink leaves an unindexed file, which the next open re-indexes (the delete was not
      // acknowledged, so it did not happen).
      await this.db.remove([key])
      this.suspects.delete(key)
      if (record.kind === KIND_FILE) await unlink(this.layout.blob(key)).catch(() => {})
      return true
    }))
  }

  async * list (options?: ListOptions): AsyncGenerator<BlobStat> {
    this.check(options)
    let after: Buffer | undefined = options?.after !== undefined ? Buffer.from(options.after) : undefined
    for (;;) {
      this.check(options)
      // Read a batch synchronously so no cursor stays open across the consumer's awaits.
      const batch: BlobStat[] = []
      let last: Buffer | undefined
      for (const { key, record } of this.db.entries(after, LIST_BATCH + 1)) {
        if (after !== undefined && key.equals(after)) continue
        if (batch.length === LIST_BATCH) break
        batch.push({ cid: cidFromDigest(new Uint8Array(key)), size: record.size, pinned: record.pinned })
        last = key
      }
      for (const stat of batch) yield stat
      if (batch.length < LIST_BATCH || last === undefined) return
      after = Buffer.from(last)
    }
  }

  async outboard (cid: CIDLike, options?: AbortOptions): Promise<Uint8Array> {
    this.check(options)
    const parsed = parseCID(cid)
    const key = Buffer.from(parsed.multihash.digest)
    const record = this.db.record(key)
    const value = record === undefined ? undefined : this.db.payload(key)
    if (record === undefined || value === undefined) throw notFound(parsed)
    return outboardOf(record.size, value)
  }

  /**
   * A value held inline in the index (at most `inlineThreshold` bytes) and its outboard, read
   * synchronously: no file and no await, the fast path for small GETs. Undefined when the value
   * is absent or stored as a file. The arrays are copies.
   */
  readInline (cid: CIDLike): { data: Uint8Array, outboard: Uint8Array } | undefined {
    this.check()
    const key = Buffer.from(parseCID(cid).multihash.digest)
    const record = this.db.record(key)
    if (record === undefined || record.kind !== KIND_INLINE) return undefined
    const value = this.db.payload(key)
    if (value === undefined) return undefined
    return { data: new Uint8Array(value.subarray(value.length - record.size)), outboard: outboardOf(record.size, value) }
  }

  /**
   * Opens a value for random access. A file-backed reader holds the open file, so it can
   * finish reading after the value is deleted (and after the store is closed). Reads return
   * fresh arrays. Where this store writes directly, a file the page cache does not hold is
   * read directly too, unless it was read whole directly lately (direct.ts, ReadAdmission) or
   * is smaller than DIRECT_MIN_SIZE.
   */
  async open (cid: CIDLike, options?: AbortOptions): Promise<BlobReader> {
    this.check(options)
    const parsed = parseCID(cid)
    const key = Buffer.from(parsed.multihash.digest)
    const record = this.db.record(key)
    if (record === undefined) throw notFound(parsed)
    const size = record.size
    if (record.kind === KIND_INLINE) {
      const value = this.db.payload(key)
      if (value === undefined) throw notFound(parsed)
      return inlineReader(value.subarray(value.length - size))
    }
    const handle = await this.openData(key, parsed)
    // A small file goes through the page cache whatever the probe says (direct.ts).
    if (size < DIRECT_MIN_SIZE) return fileReader(handle, size)
    // Reads use the probe's settled answer only; a read of a store that has not probed yet (no
    // file put since it opened) starts the probe, or joins the one running, and reads through
    // the page cache (check() neither probes twice at once nor within a minute of a failure).
    if (!this.directProbe.settledYes) {
      if (!this.closed) void this.track(this.directProbe.check())
      return fileReader(handle, size)
    }
    const hex = key.toString('hex')
    return fileReader(handle, size, {
      bounces: this.bounces,
      choose: (fd) => !pageCached(fd, size) && this.readAdmission.direct(hex, size),
      counted: (bytes) => { this.readAdmission.record(hex, bytes) }
    })
  }

  /**
   * Re-hashes every stored value against its key and its stored outboard (docs/STORAGE.md,
   * "Verify and repair"). Each entry is checked under its key lock, so a concurrent put or
   * delete of the same value waits; other keys are not blocked. With `repair`, a value whose
   * bytes are wrong is removed from the index (so it is no longer listed or served; a later
   * put of the right bytes stores it again) and its bytes are moved to `quarantine/<hex>`; a
   * bad outboard over good bytes is rebuilt; a missing file's entry is dropped. What the last
   * open found (dropped entries, unindexed files) is reported first.
   */
  async verify (options: FsVerifyOptions = {}): Promise<FsVerifyReport> {
    this.check(options)
    const report: FsVerifyReport = { checked: 0, bytes: 0, problems: [] }
    for (const p of this.openProblems) { report.problems.push(p); options.onProblem?.(p) }
    const buffer = new Uint8Array(SLOT)
    const ctx = { layout: this.layout, db: this.db, check: (o?: AbortOptions) => { this.check(o) } }
    for await (const { cid } of this.list(options)) {
      const key = keyOf(cid)
      const problem = await this.keyLocks.run(key, async () => await verifyKey(ctx, key, report, buffer, options))
      if (problem !== undefined) { report.problems.push(problem); options.onProblem?.(problem) }
    }
    return report
  }

  /**
   * Checks a byte range of a stored value against its key through the stored outboard (the
   * same check a Local makes on a verified stream). Cost: reading and hashing the range only.
   * Resolves with what is wrong, or undefined when the range verifies or the value is absent.
   */
  async verifyRange (cid: CIDLike, range: ByteRange, options?: AbortOptions): Promise<string | undefined> {
    this.check(options)
    return await checkStoredRange(this, parseCID(cid), range, options)
  }

  /** Waits for puts and deletes in flight (puts still streaming fail with ClosedError), then closes the index. */
  async close (): Promise<void> {
    if (this.closing !== undefined) return await this.closing
    this.closed = true
    this.closing = (async () => {
      await Promise.allSettled([...this.inflight])
      const pool = this.pool
      this.pool = undefined
      this.freeSlots.length = 0
      this.bounces.clear()
      if (pool !== undefined) await pool.close()
      await this.db.close()
      await releaseLock(this.layout.lock)
    })()
    return await this.closing
  }

  /** Whether close has begun. */
  get isClosed (): boolean {
    return this.closed
  }

  private async openData (key: Uint8Array, cid: CID): Promise<FileHandle> {
    try {
      return await openFile(this.layout.blob(key), 'r')
    } catch (err) {
      // Deleted between the index lookup and the open.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(cid)
      throw storageError('open data file', err)
    }
  }

  /** Keeps `task` in the set close waits for. */
  private async track<T> (task: Promise<T>): Promise<T> {
    this.inflight.add(task)
    try {
      return await task
    } finally {
      this.inflight.delete(task)
    }
  }

  private check (options?: AbortOptions): void {
    if (this.closed) throw new ClosedError()
    throwIfAborted(options?.signal)
  }
}

/** Opens (creating if needed) a filesystem store. */
export async function createFsStore (options: FsStoreOptions): Promise<FsBlobStore> {
  return await FsBlobStore.open(options)
}

function keyOf (cid: CIDLike): Buffer {
  return Buffer.from(parseCID(cid).multihash.digest)
}

function notFound (cid: CID): NotFoundError {
  return new NotFoundError(`Not in store: ${String(cid)}`)
}

/** A value's outboard (header and parents) from its size and its payload's first part. */
function outboardOf (size: number, payload: Uint8Array): Uint8Array {
  const parentsLen = outboardLength(size, DEFAULT_GROUP_LOG) - HEADER_LEN
  const out = new Uint8Array(HEADER_LEN + parentsLen)
  encodeHeader(size, out)
  out.set(payload.subarray(0, parentsLen), HEADER_LEN)
  return out
}
