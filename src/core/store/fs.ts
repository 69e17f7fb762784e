/**
 * The filesystem store: Global's canonical, crash-safe copies. docs/STORAGE.md describes the
 * layout and the crash-safety argument; in short:
 *
 *   <root>/LOCK              pid of the process that has the store open
 *   <root>/index.mdb(-lock)  lmdb: `index` (digest → kind, flags, size) and
 *                            `payload` (digest → outboard parents [+ the value when inline])
 *   <root>/blobs/<hh>/<hex>  values above the inline threshold, named by the hex BLAKE3 digest
 *                            (<hh>: its first byte; shard folders are made when first needed)
 *   <root>/tmp/              puts in progress; emptied at every open
 *   <root>/quarantine/<hex>  values `verify({ repair: true })` found corrupt (never read by the store)
 *
 * A value becomes visible only through its `index` entry, which is committed (and flushed)
 * after the data file is fsynced and renamed into place (and its folder fsynced).
 */
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { mkdir, open as openFile, readdir, readFile, realpath, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb'
import type { CID } from 'multiformats/cid'
import { cidFromDigest, parseCID, type CIDLike } from '../cid.js'
import { ClosedError, DstoreError, NotFoundError, OutOfRangeError, StorageError, VerificationError, throwIfAborted } from '../errors.js'
import { HashPool, type GroupHashResult } from '../blake3/worker.js'
import { decodeRange, encodeRange, type ByteRange } from '../bao/index.js'
import { CHUNK_LEN } from '../blake3/interface.js'
import { DEFAULT_GROUP_LOG, HEADER_LEN, TreeHasher, encodeHeader, outboardLength } from '../tree.js'
import type {
  AbortOptions, BlobReader, BlobStat, ByteSource, GetOptions, ListOptions, PutOptions, VerifiableBlobStore
} from './interface.js'
import { checkPutOptions, checkRead, iterateSource, resolveRange, verifyPut } from './util.js'

/** Values of at most this many bytes live inside the index (see docs/STORAGE.md for why). */
export const DEFAULT_INLINE_THRESHOLD = 64 * 1024
/** Size of the pieces `get` yields (and the bound of `inlineThreshold`). */
const IO_PIECE = 1 << 20
/**
 * Staging slot of a large put: the unit that is hashed (by a worker) and written (one write
 * call). A multiple of the 16 KiB chunk group.
 */
const SLOT = 4 << 20
/** Slots one put keeps in flight (hashing or writing): 16 MiB of staging per put. */
const SLOTS_IN_FLIGHT = 4
/** Idle slots the store keeps for later puts. */
const FREE_SLOTS = 4
/** A large put starts an early fdatasync (in the background) every this many bytes written. */
const EARLY_SYNC = 32 << 20
/** One core is left to the main thread (copies, tree merging) and the thread pool's write syscalls. */
const DEFAULT_HASH_WORKERS = Math.min(4, availableParallelism() - 1)
/** Entries `list` reads from the index per batch. */
const LIST_BATCH = 256
/** On-disk format version, stored in the `meta` database. */
const FORMAT_VERSION = 1

const KIND_INLINE = 1
const KIND_FILE = 2
const FLAG_PINNED = 1
const RECORD_LEN = 10

export interface FsStoreOptions {
  /** Folder of the store; created when missing. */
  path: string
  /** Largest value kept inside the index rather than as a file. Default 64 KiB. 0 keeps every non-empty value as a file. */
  inlineThreshold?: number
  /**
   * Wait for data and index to reach the disk (fsync, lmdb flush) before `put` and `delete`
   * resolve. Default true. Without it a process crash still loses nothing acknowledged, but
   * an OS crash or power loss may lose the latest puts (never corrupting older ones).
   */
  sync?: boolean
  /**
   * Worker threads that hash values larger than one staging slot (4 MiB), so a large put
   * hashes on several cores while the main thread copies and the thread pool writes. Default:
   * 2 when the machine has at least 2 cores, else 0 (hash on the main thread). Made at the
   * first large put, unreferenced while idle, terminated by `close`.
   */
  hashWorkers?: number | undefined
  /**
   * Drop, at open, index entries whose data file is missing (so they are not listed). Default
   * true. `dstore verify` without `--repair` opens with false, so it reports them without
   * changing the index (`verify` then finds them as `missing`).
   */
  dropMissingFiles?: boolean
}

/**
 * Busy time in ms of each stage of file puts in this process, summed (the stages overlap, so
 * the sum exceeds the wall time). For measurements (`scripts/measure-put.ts`); not part of the API.
 */
export const putStats = { copy: 0, hash: 0, write: 0, earlySync: 0, fsync: 0, commit: 0 }

/** What `open` found and repaired, for diagnostics and tests. */
export interface FsRecoveryReport {
  /** Leftover temp files of interrupted puts, removed. */
  tempFilesRemoved: number
  /** Data files without an index entry (crash between rename and commit, or a delete's unlink), removed. */
  orphanFilesRemoved: number
  /** Index entries whose data file was missing (external damage), dropped. */
  missingFilesDropped: number
}

/** One value `verify` found bad. */
export interface FsVerifyProblem {
  cid: CID
  /** Size the index records. */
  size: number
  /** Where the value lives. */
  kind: 'inline' | 'file'
  /**
   * - `corrupt`: the bytes do not hash to the key (or have the wrong length);
   * - `outboard`: the bytes are right but the stored outboard is not (Locals would reject it);
   * - `missing`: the index names a data file that does not exist (dropped at open, or gone since).
   */
  problem: 'corrupt' | 'outboard' | 'missing'
  /** What was found, for people. */
  reason: string
  /**
   * With `repair`: the entry no longer serves bad bytes (a corrupt value is removed from the
   * index and its bytes moved to `quarantine/`; an outboard is rebuilt from the good bytes; a
   * missing file's entry is dropped). Entries dropped by open's recovery are always `true`.
   */
  repaired: boolean
}

export interface FsVerifyOptions extends AbortOptions {
  /** Remove (quarantine) bad values and rebuild bad outboards. Default false: only report. */
  repair?: boolean
  /** Called for each bad value as it is found (after its repair, with `repair`). */
  onProblem?: (problem: FsVerifyProblem) => void
}

export interface FsVerifyReport {
  /** Values checked (index entries read during this run). */
  checked: number
  /** Bytes hashed. */
  bytes: number
  /** Everything found bad, including entries the last open dropped because their file was missing. */
  problems: FsVerifyProblem[]
}

interface IndexRecord {
  kind: number
  pinned: boolean
  size: number
}

/** Paths open in this process, so a second open of the same folder is refused. */
const openInProcess = new Set<string>()

export class FsBlobStore implements VerifiableBlobStore {
  /** The store's folder: its real path (absolute, symlinks resolved). */
  readonly path: string
  readonly inlineThreshold: number
  readonly sync: boolean
  /** What the last open cleaned up. */
  readonly recovery: FsRecoveryReport

  private readonly env: RootDatabase
  private readonly index: Database<Buffer, Buffer>
  private readonly payload: Database<Buffer, Buffer>
  private closed = false
  private closing: Promise<void> | undefined
  /** In-process per-key mutex for the finalize step of put and for delete. */
  private readonly keyLocks = new Map<string, Promise<void>>()
  /** Puts and deletes in progress, awaited by close. */
  private readonly inflight = new Set<Promise<unknown>>()
  private tempCounter = 0
  /**
   * Shard folders under blobs/: the promise resolves once the folder exists and its entry in
   * blobs/ is durable. Concurrent puts into a new shard share one creation.
   */
  private readonly shards = new Map<string, Promise<void>>()
  /** Worker threads hashing large puts (0: the main thread hashes). */
  readonly hashWorkers: number
  private pool: HashPool | undefined
  /** Idle staging slots kept for the next large put. */
  private readonly freeSlots: Buffer[] = []
  /** Entries the last open dropped because their data file was missing (reported by `verify`). */
  private readonly droppedAtOpen: FsVerifyProblem[] = []

  private constructor (path: string, options: Required<Omit<FsStoreOptions, 'path' | 'dropMissingFiles'>>, env: RootDatabase, recovery: FsRecoveryReport) {
    this.path = path
    this.hashWorkers = options.hashWorkers
    this.inlineThreshold = options.inlineThreshold
    this.sync = options.sync
    this.env = env
    this.index = env.openDB<Buffer, Buffer>({ name: 'index', encoding: 'binary', keyEncoding: 'binary' })
    this.payload = env.openDB<Buffer, Buffer>({ name: 'payload', encoding: 'binary', keyEncoding: 'binary' })
    this.recovery = recovery
  }

  /** Opens (creating if needed) the store in `options.path`, cleaning what a crash left. */
  static async open (options: FsStoreOptions | string): Promise<FsBlobStore> {
    const opts = typeof options === 'string' ? { path: options } : options
    const given = opts.path
    const inlineThreshold = opts.inlineThreshold ?? DEFAULT_INLINE_THRESHOLD
    if (!Number.isSafeInteger(inlineThreshold) || inlineThreshold < 0 || inlineThreshold >= IO_PIECE) {
      throw new OutOfRangeError(`inlineThreshold must be at least 0 and below ${IO_PIECE}`)
    }
    const sync = opts.sync ?? true
    const hashWorkers = opts.hashWorkers ?? DEFAULT_HASH_WORKERS
    if (!Number.isSafeInteger(hashWorkers) || hashWorkers < 0 || hashWorkers > 64) {
      throw new OutOfRangeError('hashWorkers must be an integer from 0 to 64')
    }
    const root = await storage('create store folders', async () => {
      await mkdir(join(given, 'tmp'), { recursive: true })
      await mkdir(join(given, 'blobs'), { recursive: true })
      if (sync) await fsyncDir(given)
      // One spelling per folder (absolute, symlinks resolved), so the in-process lock sees
      // a relative path or a symlink to an open store as the same store.
      return await realpath(given)
    })
    await acquireLock(root)
    let env: RootDatabase | undefined
    try {
      env = storageSync('open index', () => openLmdb({
        path: join(root, 'index.mdb'),
        maxDbs: 4,
        noSync: !sync,
        encoding: 'binary',
        keyEncoding: 'binary'
      }))
      const meta = env.openDB<number, string>({ name: 'meta', encoding: 'json', keyEncoding: 'ordered-binary' })
      const version = meta.get('format')
      if (version === undefined) {
        await storage('write format version', async () => { await meta.put('format', FORMAT_VERSION) })
      } else if (version !== FORMAT_VERSION) {
        throw new StorageError(`Store format ${String(version)} is not supported (expected ${FORMAT_VERSION})`)
      }
      const store = new FsBlobStore(root, { inlineThreshold, sync, hashWorkers }, env, { tempFilesRemoved: 0, orphanFilesRemoved: 0, missingFilesDropped: 0 })
      await store.recover(opts.dropMissingFiles ?? true)
      return store
    } catch (err) {
      if (env !== undefined) await env.close().catch(() => {})
      await releaseLock(root)
      throw err
    }
  }

  async has (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    this.check(options)
    return this.index.getBinaryFast(keyOf(cid)) !== undefined
  }

  async stat (cid: CIDLike, options?: AbortOptions): Promise<BlobStat> {
    this.check(options)
    const parsed = parseCID(cid)
    const record = this.record(parsed.multihash.digest)
    if (record === undefined) throw notFound(parsed)
    return { cid: parsed, size: record.size, pinned: record.pinned }
  }

  async put (source: ByteSource, options: PutOptions = {}): Promise<CID> {
    this.check(options)
    const task = this.doPut(source, options)
    this.inflight.add(task)
    try {
      return await task
    } finally {
      this.inflight.delete(task)
    }
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
          file = new FilePut(this, hasher, options, total)
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
      putStats.commit += performance.now() - tk
      f.committed()
      return cid
    } catch (err) {
      if (file !== undefined) await file.abort()
      throw err
    }
  }

  /** The worker pool for large puts (made at first use), or undefined when hashing stays on the main thread. */
  hashPool (): HashPool | undefined {
    if (this.hashWorkers === 0 || this.closed) return undefined
    this.pool ??= new HashPool(this.hashWorkers)
    return this.pool
  }

  /** A staging slot (SLOT bytes, SharedArrayBuffer so workers can read it). */
  takeSlot (): Buffer {
    return this.freeSlots.pop() ?? Buffer.from(new SharedArrayBuffer(SLOT))
  }

  /** Returns a slot no one reads or writes any more. */
  releaseSlot (slot: Buffer): void {
    if (this.freeSlots.length < FREE_SLOTS) this.freeSlots.push(slot)
  }

  /** A new temp file path under tmp/. */
  newTempPath (): string {
    return this.tempPath()
  }

  /**
   * Makes a verified value visible: under the key's lock, skips it if already stored, else
   * renames the data file into place (and fsyncs its folder), then commits the index entry
   * and the payload in one transaction and waits for the flush.
   */
  private async commit (cid: CID, record: IndexRecord, payload: Buffer, tempPath?: string): Promise<void> {
    const digest = cid.multihash.digest
    const key = Buffer.from(digest)
    await this.withKeyLock(key, async () => {
      if (this.closed) throw new ClosedError()
      if (this.index.getBinaryFast(key) !== undefined) {
        if (tempPath !== undefined) await rm(tempPath, { force: true }).catch(() => {})
        return
      }
      const final = tempPath !== undefined ? this.filePath(key) : undefined
      try {
        if (tempPath !== undefined && final !== undefined) {
          await this.ensureShard(final)
          await storage('rename data file into place', async () => { await rename(tempPath, final) })
          if (this.sync) await storage('fsync blob folder', async () => { await fsyncDir(dirname(final)) })
        }
        await storage('commit index', async () => {
          await this.env.transaction(() => {
            void this.index.put(key, encodeRecord(record))
            void this.payload.put(key, payload)
          })
          if (this.sync) await this.env.flushed
        })
      } catch (err) {
        // Not committed, so not visible: the renamed file is an orphan. (Open removes it too.)
        if (final !== undefined && this.index.getBinaryFast(key) === undefined) await rm(final, { force: true }).catch(() => {})
        throw err
      }
    })
  }

  get (cid: CIDLike, options: GetOptions = {}): AsyncIterable<Uint8Array> {
    return this.read(cid, options)
  }

  private async * read (cid: CIDLike, options: GetOptions): AsyncGenerator<Uint8Array> {
    this.check(options)
    const parsed = parseCID(cid)
    const key = Buffer.from(parsed.multihash.digest)
    const record = this.record(key)
    if (record === undefined) throw notFound(parsed)
    const { start, end } = resolveRange(record.size, options)
    const total = end - start
    if (record.kind === KIND_INLINE) {
      const value = this.payload.getBinary(key)
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
    const task = this.withKeyLock(key, async () => {
      const record = this.record(key)
      if (record === undefined) return false
      // Index first: once committed the blob is gone for every reader; a crash before the
      // unlink leaves an orphan file that the next open removes.
      await storage('commit index removal', async () => {
        await this.env.transaction(() => {
          void this.index.remove(key)
          void this.payload.remove(key)
        })
        if (this.sync) await this.env.flushed
      })
      if (record.kind === KIND_FILE) {
        await unlink(this.filePath(key)).catch(() => {})
      }
      return true
    })
    this.inflight.add(task)
    try {
      return await task
    } finally {
      this.inflight.delete(task)
    }
  }

  async * list (options?: ListOptions): AsyncGenerator<BlobStat> {
    this.check(options)
    let after: Buffer | undefined = options?.after !== undefined ? Buffer.from(options.after) : undefined
    for (;;) {
      this.check(options)
      // Read a batch synchronously so no cursor stays open across the consumer's awaits.
      const batch: BlobStat[] = []
      let last: Buffer | undefined
      const range = this.index.getRange({ start: after, limit: LIST_BATCH + 1, snapshot: false })
      for (const { key, value } of range) {
        if (after !== undefined && key.equals(after)) continue
        if (batch.length === LIST_BATCH) break
        const record = decodeRecord(value)
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
    const record = this.record(key)
    const value = record === undefined ? undefined : this.payload.getBinary(key)
    if (record === undefined || value === undefined) throw notFound(parsed)
    const parentsLen = outboardLength(record.size, DEFAULT_GROUP_LOG) - HEADER_LEN
    const out = new Uint8Array(HEADER_LEN + parentsLen)
    encodeHeader(record.size, out)
    out.set(value.subarray(0, parentsLen), HEADER_LEN)
    return out
  }

  /**
   * Opens a value for random access. A file-backed reader holds the open file, so it can
   * finish reading after the value is deleted (and after the store is closed). Reads return
   * fresh arrays.
   */
  /**
   * A value held inline in the index (at most `inlineThreshold` bytes) and its outboard, read
   * synchronously: no file and no await, the fast path for small GETs. Undefined when the value
   * is absent or stored as a file. The arrays are copies.
   */
  readInline (cid: CIDLike): { data: Uint8Array, outboard: Uint8Array } | undefined {
    this.check()
    const key = Buffer.from(parseCID(cid).multihash.digest)
    const record = this.record(key)
    if (record === undefined || record.kind !== KIND_INLINE) return undefined
    const value = this.payload.getBinary(key)
    if (value === undefined) return undefined
    const parentsLen = outboardLength(record.size, DEFAULT_GROUP_LOG) - HEADER_LEN
    const outboard = new Uint8Array(HEADER_LEN + parentsLen)
    encodeHeader(record.size, outboard)
    outboard.set(value.subarray(0, parentsLen), HEADER_LEN)
    return { data: new Uint8Array(value.subarray(value.length - record.size)), outboard }
  }

  async open (cid: CIDLike, options?: AbortOptions): Promise<BlobReader> {
    this.check(options)
    const parsed = parseCID(cid)
    const key = Buffer.from(parsed.multihash.digest)
    const record = this.record(key)
    if (record === undefined) throw notFound(parsed)
    const size = record.size
    if (record.kind === KIND_INLINE) {
      const value = this.payload.getBinary(key)
      if (value === undefined) throw notFound(parsed)
      const data = value.subarray(value.length - size)
      return {
        size,
        read: async (offset, length) => {
          checkRead(size, offset, length)
          return new Uint8Array(data.subarray(offset, offset + length))
        },
        close: async () => {}
      }
    }
    const handle = await this.openData(key, parsed)
    let open = true
    return {
      size,
      read: async (offset, length, into) => {
        if (!open) throw new ClosedError('The reader is closed')
        checkRead(size, offset, length)
        return await readFully(handle, offset, length, into)
      },
      close: async () => {
        if (open) { open = false; await handle.close().catch(() => {}) }
      }
    }
  }

  /**
   * Re-hashes every stored value against its key and its stored outboard (docs/STORAGE.md,
   * "Verify and repair"). Each entry is checked under its key lock, so a concurrent put or
   * delete of the same value waits; other keys are not blocked. With `repair`, a value whose
   * bytes are wrong is removed from the index (so it is no longer listed or served; a later
   * put of the right bytes stores it again) and its bytes are moved to `quarantine/<hex>`; a
   * bad outboard over good bytes is rebuilt; a missing file's entry is dropped.
   */
  async verify (options: FsVerifyOptions = {}): Promise<FsVerifyReport> {
    this.check(options)
    const report: FsVerifyReport = { checked: 0, bytes: 0, problems: [] }
    for (const p of this.droppedAtOpen) { report.problems.push(p); options.onProblem?.(p) }
    const buffer = new Uint8Array(SLOT)
    for await (const { cid } of this.list(options)) {
      const key = keyOf(cid)
      const problem = await this.withKeyLock(key, async () => await this.verifyKey(key, report, buffer, options))
      if (problem !== undefined) { report.problems.push(problem); options.onProblem?.(problem) }
    }
    return report
  }

  /** Checks one entry (under its key lock); repairs it with `options.repair`. */
  private async verifyKey (key: Buffer, report: FsVerifyReport, buffer: Uint8Array, options: FsVerifyOptions): Promise<FsVerifyProblem | undefined> {
    this.check(options)
    const record = this.record(key)
    if (record === undefined) return undefined // deleted meanwhile
    report.checked++
    const cid = cidFromDigest(new Uint8Array(key))
    const kind = record.kind === KIND_INLINE ? 'inline' : 'file'
    const parentsLen = outboardLength(record.size, DEFAULT_GROUP_LOG) - HEADER_LEN
    const payload = this.payload.getBinary(key)
    const hasher = new TreeHasher({ outboard: true })
    let reason: string | undefined
    let problem: FsVerifyProblem['problem'] = 'corrupt'
    if (record.kind === KIND_INLINE) {
      if (payload === undefined || payload.length !== parentsLen + record.size) {
        reason = `inline entry holds ${payload?.length ?? 0} bytes, expected ${parentsLen + record.size}`
      } else {
        hasher.update(payload.subarray(parentsLen))
        report.bytes += record.size
      }
    } else {
      let handle: FileHandle | undefined
      try {
        handle = await openFile(this.filePath(key), 'r')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('open data file', err)
        problem = 'missing'
        reason = 'data file missing'
      }
      if (handle !== undefined) {
        try {
          const { size } = await storage('stat data file', async () => await (handle as FileHandle).stat())
          if (size !== record.size) {
            reason = `data file has ${size} bytes, the index says ${record.size}`
          } else {
            for (let pos = 0; pos < size;) {
              this.check(options)
              const n = Math.min(SLOT, size - pos)
              hasher.update(await readFully(handle, pos, n, buffer))
              pos += n
              report.bytes += n
            }
          }
        } finally {
          await handle.close().catch(() => {})
        }
      }
    }
    let result: ReturnType<TreeHasher['finalize']> | undefined
    if (reason === undefined) {
      result = hasher.finalize()
      if (!key.equals(result.root)) {
        reason = 'bytes do not hash to the key'
      } else if (payload === undefined || payload.length < parentsLen ||
        !Buffer.from((result.outboard as Uint8Array).subarray(HEADER_LEN)).equals(payload.subarray(0, parentsLen))) {
        problem = 'outboard'
        reason = 'stored outboard does not match the bytes (the bytes are right)'
      }
    }
    if (reason === undefined) return undefined
    const found: FsVerifyProblem = { cid, size: record.size, kind, problem, reason, repaired: false }
    if (options.repair === true) {
      if (problem === 'outboard' && result !== undefined) {
        const parents = Buffer.from((result.outboard as Uint8Array).subarray(HEADER_LEN))
        const value = record.kind === KIND_INLINE
          ? Buffer.concat([parents, (payload as Buffer).subarray((payload as Buffer).length - record.size)])
          : parents
        await storage('rewrite outboard', async () => {
          await this.env.transaction(() => { void this.payload.put(key, value) })
          if (this.sync) await this.env.flushed
        })
      } else {
        await this.quarantine(key, record, payload)
      }
      found.repaired = true
    }
    return found
  }

  /** Moves a bad value's bytes to quarantine/ and removes its index entry. Called under the key lock. */
  private async quarantine (key: Buffer, record: IndexRecord, payload: Buffer | undefined): Promise<void> {
    const dir = join(this.path, 'quarantine')
    const hex = key.toString('hex')
    await storage('create quarantine folder', async () => { await mkdir(dir, { recursive: true }) })
    if (record.kind === KIND_FILE) {
      await storage('move data file to quarantine', async () => {
        try {
          await rename(this.filePath(key), join(dir, hex))
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        }
      })
    } else if (payload !== undefined) {
      await storage('write quarantined value', async () => { await writeFile(join(dir, `${hex}.inline`), payload) })
    }
    await storage('commit index removal', async () => {
      await this.env.transaction(() => {
        void this.index.remove(key)
        void this.payload.remove(key)
      })
      if (this.sync) await this.env.flushed
    })
  }

  /**
   * Checks a byte range of a stored value against its key through the stored outboard (the
   * same check a Local makes on a verified stream). Cost: reading and hashing the range only.
   * Resolves with what is wrong, or undefined when the range verifies or the value is absent.
   */
  async checkRange (cid: CIDLike, range: ByteRange, options?: AbortOptions): Promise<string | undefined> {
    this.check(options)
    const parsed = parseCID(cid)
    let outboard: Uint8Array
    let reader: BlobReader
    try {
      outboard = await this.outboard(parsed, options)
      reader = await this.open(parsed, options)
    } catch (err) {
      if (err instanceof NotFoundError) return undefined
      throw err
    }
    try {
      const source = encodeRange(reader, outboard, range, DEFAULT_GROUP_LOG, { signal: options?.signal })
      for await (const _ of decodeRange(source, parsed.multihash.digest, range, DEFAULT_GROUP_LOG, { signal: options?.signal })) { /* verified */ }
      return undefined
    } catch (err) {
      if (err instanceof VerificationError || err instanceof StorageError) return err.message
      throw err
    } finally {
      await reader.close()
    }
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
      if (pool !== undefined) await pool.close()
      await this.env.close()
      await releaseLock(this.path)
    })()
    return await this.closing
  }

  /** Removes temp files and orphan data files; drops index entries whose file vanished (with `dropMissing`). */
  private async recover (dropMissing: boolean): Promise<void> {
    const report = this.recovery
    const tmp = join(this.path, 'tmp')
    for (const name of await storage('list temp folder', async () => await readdir(tmp))) {
      await storage('remove temp file', async () => { await rm(join(tmp, name), { recursive: true, force: true }) })
      report.tempFilesRemoved++
    }
    const present = new Set<string>()
    const blobs = join(this.path, 'blobs')
    for (const shard of await storage('list blob folder', async () => await readdir(blobs))) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue
      for (const name of await storage('list blob shard', async () => await readdir(join(blobs, shard)))) {
        if (!/^[0-9a-f]{64}$/.test(name) || name.slice(0, 2) !== shard) continue
        const record = this.record(Buffer.from(name, 'hex'))
        if (record?.kind === KIND_FILE) {
          present.add(name)
        } else {
          await storage('remove orphan data file', async () => { await rm(join(blobs, shard, name), { force: true }) })
          report.orphanFilesRemoved++
        }
      }
    }
    const missing: Buffer[] = []
    for (const { key, value } of this.index.getRange({ snapshot: false })) {
      const record = decodeRecord(value)
      // Without dropMissing the entry stays, and verify reports its missing file itself.
      if (dropMissing && record.kind === KIND_FILE && !present.has(key.toString('hex'))) {
        missing.push(Buffer.from(key))
        this.droppedAtOpen.push({
          cid: cidFromDigest(new Uint8Array(key)),
          size: record.size,
          kind: 'file',
          problem: 'missing',
          reason: 'data file missing (its index entry was dropped when the store was opened)',
          repaired: true
        })
      }
    }
    if (missing.length > 0) {
      await storage('drop index entries without data', async () => {
        await this.env.transaction(() => {
          for (const key of missing) { void this.index.remove(key); void this.payload.remove(key) }
        })
        if (this.sync) await this.env.flushed
      })
      report.missingFilesDropped = missing.length
    }
  }

  private record (key: Uint8Array): IndexRecord | undefined {
    const value = this.index.getBinaryFast(key as Buffer)
    return value === undefined ? undefined : decodeRecord(value)
  }

  private filePath (key: Uint8Array): string {
    const hex = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')
    return join(this.path, 'blobs', hex.slice(0, 2), hex)
  }

  private async openData (key: Uint8Array, cid: CID): Promise<FileHandle> {
    try {
      return await openFile(this.filePath(key), 'r')
    } catch (err) {
      // Deleted between the index lookup and the open.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(cid)
      throw storageError('open data file', err)
    }
  }

  /**
   * Creates a data file's shard folder the first time this process needs it, and makes its
   * entry in blobs/ durable (also when it already existed: a crashed process may have made it
   * without the fsync). Concurrent callers wait for the same creation.
   */
  private async ensureShard (file: string): Promise<void> {
    const shard = basename(dirname(file))
    let ready = this.shards.get(shard)
    if (ready === undefined) {
      ready = storage('create blob shard folder', async () => {
        await mkdir(dirname(file), { recursive: true })
        if (this.sync) await fsyncDir(join(this.path, 'blobs'))
      })
      const mine = ready
      this.shards.set(shard, mine)
      mine.catch(() => { if (this.shards.get(shard) === mine) this.shards.delete(shard) })
    }
    await ready
  }

  private tempPath (): string {
    return join(this.path, 'tmp', `${process.pid}-${++this.tempCounter}-${randomBytes(6).toString('hex')}.part`)
  }

  private async withKeyLock<T> (key: Buffer, fn: () => Promise<T>): Promise<T> {
    const id = key.toString('hex')
    const previous = this.keyLocks.get(id)
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const chained = previous === undefined ? mine : previous.then(async () => await mine)
    this.keyLocks.set(id, chained)
    try {
      if (previous !== undefined) await previous
      return await fn()
    } finally {
      release()
      if (this.keyLocks.get(id) === chained) this.keyLocks.delete(id)
    }
  }

  /** Whether close has begun. */
  get isClosed (): boolean {
    return this.closed
  }

  private check (options?: AbortOptions): void {
    if (this.closed) throw new ClosedError()
    throwIfAborted(options?.signal)
  }
}

interface Dispatched {
  /** The staging slot to release once both are done (none when written from the caller's array and hashed on the main thread). */
  slot: Buffer | undefined
  /** The worker's CVs for this slot's groups (undefined: hashed on the main thread already). */
  hashed: Promise<GroupHashResult> | undefined
  written: Promise<void>
}

/**
 * The file half of a put, once the value is too large to be inline. Bytes are copied into
 * staging slots (SharedArrayBuffer, SLOT bytes); a full slot is dispatched: hashed by a worker
 * (or on the main thread without workers) while the same slot is written to the temp file by
 * a chain of positioned writes (one at a time, in order, in the thread pool). At most
 * SLOTS_IN_FLIGHT slots are in flight; the oldest is retired (its CVs fed to the tree hasher,
 * in order) before another is taken. With `sync`, a background fdatasync starts every
 * EARLY_SYNC bytes so the disk works while hashing goes on; the last one, after the last
 * write, is what makes the data durable. The value's last (partial) slot is hashed on the
 * main thread, so values of at most one slot never use a worker.
 */
class FilePut {
  tempPath: string | undefined
  private handle: FileHandle | undefined
  private cur: Buffer | undefined
  private fill = 0
  /** Bytes dispatched: the file offset of the current slot. */
  private position = 0
  private readonly queue: Dispatched[] = []
  private chain: Promise<void> = Promise.resolve()
  private written = 0
  private syncedTo = 0
  private syncing: Promise<void> | undefined
  private syncError: unknown
  private readonly pool: HashPool | undefined

  constructor (
    private readonly store: FsBlobStore,
    private readonly hasher: TreeHasher,
    private readonly options: PutOptions,
    private readonly total: number | undefined
  ) {
    this.pool = store.hashPool()
  }

  /** Adds the next bytes. `stable`: `chunk` stays unchanged until the put ends, so it may be written from directly. */
  async add (chunk: Uint8Array, stable: boolean): Promise<void> {
    let off = 0
    while (off < chunk.length) {
      if (stable && this.fill === 0 && chunk.length - off >= SLOT) {
        // A whole slot of the caller's array: write it from there; copy it only for a worker.
        const piece = chunk.subarray(off, off + SLOT)
        let slot: Buffer | undefined
        if (this.pool !== undefined) {
          await this.makeRoom()
          slot = this.store.takeSlot()
          const tc = performance.now()
          slot.set(piece)
          putStats.copy += performance.now() - tc
        } else {
          await this.makeRoom()
        }
        this.dispatch(slot, piece, slot ?? piece)
        off += SLOT
        continue
      }
      if (this.cur === undefined) {
        await this.makeRoom()
        this.cur = this.store.takeSlot()
      }
      const take = Math.min(SLOT - this.fill, chunk.length - off)
      const tc = performance.now()
      this.cur.set(chunk.subarray(off, off + take), this.fill)
      putStats.copy += performance.now() - tc
      this.fill += take
      off += take
      if (this.fill === SLOT) {
        const slot = this.cur
        this.cur = undefined
        this.fill = 0
        this.dispatch(slot, slot, slot)
      }
    }
  }

  /** Hashes and writes the last partial slot, then waits for every write. */
  async finish (): Promise<void> {
    while (this.queue.length > 0) await this.retire()
    if (this.cur !== undefined && this.fill > 0) {
      const tail = this.cur.subarray(0, this.fill)
      const th = performance.now()
      this.hasher.update(tail)
      putStats.hash += performance.now() - th
      const slot = this.cur
      this.cur = undefined
      this.dispatch(slot, tail, undefined)
      await this.retire()
    }
    await this.chain
  }

  /** After {@link finish}: makes the data durable (fdatasync, with `sync`) and closes the file. */
  async durable (): Promise<void> {
    const handle = this.handle as FileHandle
    if (this.store.sync) {
      const ts = performance.now()
      if (this.syncing !== undefined) await this.syncing
      if (this.syncError !== undefined) throw storageError('fsync temp file', this.syncError)
      // fdatasync: the file is new, so its data and size (all a reader needs) are flushed; the
      // name becomes durable by the rename and the folder fsync in commit.
      await storage('fsync temp file', async () => { await handle.datasync() })
      putStats.fsync += performance.now() - ts
    }
    this.handle = undefined
    await storage('close temp file', async () => { await handle.close() })
  }

  /** The temp file was renamed (or removed) by commit: nothing left to clean. */
  committed (): void {
    this.tempPath = undefined
    if (this.cur !== undefined) { this.store.releaseSlot(this.cur); this.cur = undefined }
  }

  /** After a failure: waits for work in flight, closes and removes the temp file. Slots are dropped, not reused. */
  async abort (): Promise<void> {
    const waits: Array<Promise<unknown>> = [this.chain]
    for (const d of this.queue) { waits.push(d.written); if (d.hashed !== undefined) waits.push(d.hashed) }
    if (this.syncing !== undefined) waits.push(this.syncing)
    this.queue.length = 0
    await Promise.allSettled(waits)
    if (this.handle !== undefined) await this.handle.close().catch(() => {})
    this.handle = undefined
    if (this.tempPath !== undefined) await rm(this.tempPath, { force: true }).catch(() => {})
    this.tempPath = undefined
  }

  /** Retires the oldest slots until another may be taken. */
  private async makeRoom (): Promise<void> {
    while (this.queue.length >= SLOTS_IN_FLIGHT) await this.retire()
  }

  /** Starts hashing `hash` (whole groups, in a slot; undefined: already hashed) and writing `data` at the current position. */
  private dispatch (slot: Buffer | undefined, data: Uint8Array, hash: Uint8Array | undefined): void {
    throwIfAborted(this.options.signal)
    if (this.store.isClosed) throw new ClosedError()
    let hashed: Promise<GroupHashResult> | undefined
    if (hash !== undefined) {
      if (this.pool !== undefined) {
        hashed = this.pool.groupCVs(hash, this.position / CHUNK_LEN, this.hasher.groupLog)
        hashed.catch(() => {})
      } else {
        const th = performance.now()
        this.hasher.update(hash)
        putStats.hash += performance.now() - th
      }
    }
    const position = this.position
    this.position += data.length
    if (this.tempPath === undefined) this.tempPath = this.store.newTempPath()
    const path = this.tempPath
    const written = this.chain.then(async () => {
      if (this.handle === undefined) {
        this.handle = await storage('create temp file', async () => await openFile(path, 'wx'))
      }
      const handle = this.handle
      const tw = performance.now()
      await storage('write temp file', async () => {
        let off = 0
        while (off < data.length) {
          const { bytesWritten } = await handle.write(data, off, data.length - off, position + off)
          off += bytesWritten
        }
      })
      putStats.write += performance.now() - tw
      this.written += data.length
      this.options.onProgress?.({ type: 'blob:put:write', bytes: this.written, total: this.total })
      this.earlySync(handle)
    })
    written.catch(() => {})
    this.chain = written
    this.queue.push({ slot, hashed, written })
  }

  /** Starts a background fdatasync when enough has been written since the last one. */
  private earlySync (handle: FileHandle): void {
    if (!this.store.sync || this.syncing !== undefined || this.written - this.syncedTo < EARLY_SYNC) return
    this.syncedTo = this.written
    const ts = performance.now()
    this.syncing = handle.datasync().then(
      () => { putStats.earlySync += performance.now() - ts },
      err => { this.syncError ??= err }
    ).finally(() => { this.syncing = undefined })
  }

  /** Waits for the oldest slot's write and hash, feeds its CVs to the tree, frees the slot. */
  private async retire (): Promise<void> {
    const d = this.queue[0]
    await d.written
    if (d.hashed !== undefined) {
      const { cvs, ms } = await d.hashed
      putStats.hash += ms
      this.hasher.updateGroupCVs(cvs)
    }
    this.queue.shift()
    if (d.slot !== undefined) this.store.releaseSlot(d.slot)
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

function encodeRecord (record: IndexRecord): Buffer {
  const out = Buffer.alloc(RECORD_LEN)
  out[0] = record.kind
  out[1] = record.pinned ? FLAG_PINNED : 0
  out.writeBigUInt64LE(BigInt(record.size), 2)
  return out
}

function decodeRecord (value: Uint8Array): IndexRecord {
  if (value.length < RECORD_LEN || (value[0] !== KIND_INLINE && value[0] !== KIND_FILE)) {
    throw new StorageError('Corrupt index record')
  }
  const view = new DataView(value.buffer, value.byteOffset, RECORD_LEN)
  return { kind: value[0], pinned: (value[1] & FLAG_PINNED) !== 0, size: Number(view.getBigUint64(2, true)) }
}

async function readFully (handle: FileHandle, position: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
  const buf = into !== undefined && into.length >= length ? into.subarray(0, length) : new Uint8Array(length)
  let off = 0
  while (off < length) {
    let bytesRead: number
    try {
      ({ bytesRead } = await handle.read(buf, off, length - off, position + off))
    } catch (err) {
      throw storageError('read data file', err)
    }
    if (bytesRead === 0) throw new StorageError(`Data file is shorter than its index entry (${position + off} bytes)`)
    off += bytesRead
  }
  return buf
}

async function fsyncDir (path: string): Promise<void> {
  const handle = await openFile(path, 'r')
  try { await handle.sync() } finally { await handle.close() }
}

/** Wraps a filesystem or index failure as StorageError, keeping the original as `cause` (its `code`, e.g. ENOSPC, stays readable there and in the message). */
function storageError (what: string, err: unknown): DstoreError {
  if (err instanceof DstoreError) return err
  const code = (err as NodeJS.ErrnoException)?.code
  return new StorageError(`Could not ${what}${code !== undefined ? ` (${code})` : ''}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

async function storage<T> (what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw storageError(what, err)
  }
}

function storageSync<T> (what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw storageError(what, err)
  }
}

/**
 * One process per store: `LOCK` holds the owner's pid. It is created exclusively (`wx`), so of
 * two processes opening a store at once only one gets it. A lock left by a dead process (a
 * crash) is taken over; a live owner, or a second open in this process, is refused. `root`
 * must be the folder's real path (see `open`).
 */
async function acquireLock (root: string): Promise<void> {
  const lock = join(root, 'LOCK')
  if (openInProcess.has(lock)) throw new StorageError(`Store ${root} is already open in this process`)
  // Claimed before any await, so a concurrent open in this process is refused above.
  openInProcess.add(lock)
  try {
    for (;;) {
      try {
        await writeFile(lock, String(process.pid), { flag: 'wx' })
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw storageError('create lock file', err)
      }
      let text: string
      try {
        text = await readFile(lock, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue // released meanwhile: try again
        throw storageError('read lock file', err)
      }
      const owner = Number.parseInt(text, 10)
      if (Number.isSafeInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new StorageError(`Store ${root} is in use by process ${owner} (remove ${lock} if that is wrong)`, { lockedBy: owner })
      }
      // Left by a process that is gone (or by an earlier process with our pid): take it over.
      await storage('write lock file', async () => { await writeFile(lock, String(process.pid)) })
      return
    }
  } catch (err) {
    openInProcess.delete(lock)
    throw err
  }
}

async function releaseLock (root: string): Promise<void> {
  const lock = join(root, 'LOCK')
  if (!openInProcess.delete(lock)) return
  await rm(lock, { force: true }).catch(() => {})
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
