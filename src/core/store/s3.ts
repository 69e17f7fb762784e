/**
 * The S3 store: Global's canonical copies in an S3-compatible bucket (AWS S3, Ceph RGW, MinIO,
 * Swift s3api, R2, Garage), so several Globals can serve one bucket and hold no data of their
 * own. docs/STORAGE.md ("The S3 store") describes the layout and the crash-safety argument;
 * the pieces live in ./s3/: key layout (layout.ts), the request door with typed errors
 * (ops.ts, over the client layer in client.ts), staged multipart puts (upload.ts),
 * server-side copies (copy.ts), readers (reader.ts), staging clean-up (clean.ts) and verify
 * (verify.ts).
 *
 * A value becomes visible only when its final object `blobs/<cid>` exists, which is written
 * (a single PutObject, or a server-side copy of a complete, verified staging object) only
 * after its outboard object: an acknowledged put means both objects exist.
 */
import { DeleteObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import type { CID } from 'multiformats/cid'
import { parseCID, type CIDLike } from '../cid.js'
import { throwIfAborted } from '../abort.js'
import { ClosedError, NotFoundError, OutOfRangeError, StorageError, VerificationError } from '../errors.js'
import type { ByteRange } from '../bao/index.js'
import { TreeHasher } from '../tree.js'
import type {
  AbortOptions, BlobReader, BlobStat, ByteSource, GetOptions, GlobalStore, ListOptions, PutOptions, StoreOperationStats
} from './interface.js'
import { checkPutOptions, iterateSource, resolveRange, verifyPut } from './util.js'
import { KeyLocks } from './fs/locks.js'
import { checkStoredRange } from './fs/verify.js'
import { createS3Client, s3Error, s3Stats, type S3Config } from './s3/client.js'
import { S3Ops } from './s3/ops.js'
import { S3Layout } from './s3/layout.js'
import { StagingUpload, partSizeFor } from './s3/upload.js'
import { copyObject, type CopyOptions } from './s3/copy.js'
import { S3Reader, getObject, memoryReader, pieces, readAll } from './s3/reader.js'
import { cleanStaging, listKeys, type StagingCleanReport } from './s3/clean.js'
import { verifyS3, type S3VerifyOptions, type S3VerifyReport } from './s3/verify.js'
import { SuspectSet } from './suspects.js'

export type { StagingCleanReport } from './s3/clean.js'
export type { S3VerifyOptions, S3VerifyProblem, S3VerifyReport } from './s3/verify.js'

/** Default age past which staging left by an interrupted put is removed (1 hour). */
export const DEFAULT_STAGING_MAX_AGE = 60 * 60 * 1000
/** Default part size of multipart uploads (grown for a value whose size is known to fit 10 000 parts). */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024
/** Parts uploaded (or copied) at once per put. */
const DEFAULT_CONCURRENCY = 4
/** S3's limit for one CopyObject; above it a copy is a multipart UploadPartCopy. */
const COPY_SINGLE_MAX = 5 * 1024 * 1024 * 1024
/** Values up to this size are read whole at `open` (one GET; such a reader survives a delete). */
const SMALL_READ = 1024 * 1024

export interface S3StoreOptions extends S3Config {
  /** Where notes go (staging removed at open, outboards rebuilt). */
  log?: (message: string) => void
  /** Staging older than this (ms) is removed at open and by verify. Default 1 hour. */
  stagingMaxAge?: number
  /** Use this client instead of making one from the config (it is not destroyed at close). */
  client?: S3Client
  /** Multipart part size in bytes (at least 5 MiB). Default 8 MiB. */
  partSize?: number
  /** Parts in flight per put. Default 4 (memory per put: (concurrency + 1) × partSize). */
  concurrency?: number
  /** Largest object copied with one CopyObject; above it, UploadPartCopy. Default 5 GiB (for tests: lower). */
  copySingleMax?: number
}

export class S3BlobStore implements GlobalStore {
  readonly kind = 's3'
  readonly bucket: string
  /** Key prefix ('' or ending in `/`). */
  readonly prefix: string
  /** What open's staging clean-up removed. */
  readonly recovery: StagingCleanReport
  readonly partSize: number
  readonly stagingMaxAge: number

  private closed = false
  private closing: Promise<void> | undefined
  private readonly keyLocks = new KeyLocks()
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly suspects = new SuspectSet()
  private readonly counted = { values: 0, bytes: 0 }
  private readonly counting = new AbortController()
  private readonly concurrency: number
  private readonly copySingleMax: number
  private readonly log: (message: string) => void

  private constructor (
    /** @internal the request door (for verify and tests). */
    readonly ops: S3Ops,
    /** @internal */
    readonly layout: S3Layout,
    private readonly ownsClient: boolean,
    options: S3StoreOptions,
    recovery: StagingCleanReport
  ) {
    this.bucket = options.bucket
    this.prefix = layout.blobs.slice(0, -'blobs/'.length)
    this.recovery = recovery
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
    this.copySingleMax = options.copySingleMax ?? COPY_SINGLE_MAX
    this.stagingMaxAge = options.stagingMaxAge ?? DEFAULT_STAGING_MAX_AGE
    this.log = options.log ?? (() => {})
  }

  /**
   * Opens the store: checks the bucket answers (a typed error when it does not: unreachable,
   * credentials refused, no such bucket), removes staging older than `stagingMaxAge`, and starts
   * counting the values for `usage` in the background.
   */
  static async open (options: S3StoreOptions): Promise<S3BlobStore> {
    const partSize = options.partSize ?? DEFAULT_PART_SIZE
    if (!Number.isSafeInteger(partSize) || partSize < 5 * 1024 * 1024 || partSize > 5 * 1024 * 1024 * 1024) {
      throw new OutOfRangeError('partSize must be from 5 MiB to 5 GiB')
    }
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new OutOfRangeError('concurrency must be from 1 to 64')
    const maxAge = options.stagingMaxAge ?? DEFAULT_STAGING_MAX_AGE
    if (!Number.isFinite(maxAge) || maxAge < 0) throw new OutOfRangeError('stagingMaxAge must be at least 0')
    const client = options.client ?? createS3Client(options)
    const ops = new S3Ops(client, options.bucket, s3Error)
    const layout = new S3Layout(options.prefix ?? '')
    try {
      await ops.send('HeadBucket', new HeadBucketCommand({ Bucket: options.bucket }))
      const recovery = await cleanStaging(ops, layout, maxAge, true)
      const log = options.log ?? (() => {})
      if (recovery.uploadsAborted + recovery.objectsDeleted > 0) {
        log(`s3 store: removed staging left by interrupted puts (${recovery.uploadsAborted} uploads, ${recovery.objectsDeleted} objects)`)
      }
      const store = new S3BlobStore(ops, layout, options.client === undefined, options, recovery)
      store.countAtOpen()
      return store
    } catch (err) {
      if (options.client === undefined) client.destroy()
      throw err
    }
  }

  /** Counts what `blobs/` holds, for `usage` (in the background; puts and deletes meanwhile adjust it). */
  private countAtOpen (): void {
    const task = (async () => {
      for await (const o of listKeys(this.ops, this.layout.blobs, this.counting.signal)) {
        if (this.layout.cidOf(o.key, this.layout.blobs) === undefined) continue
        this.counted.values++
        this.counted.bytes += o.size
      }
    })().catch((err: Error) => {
      if (!this.closed) this.log(`s3 store: counting values for usage failed: ${err.message}`)
    })
    this.inflight.add(task)
    void task.finally(() => this.inflight.delete(task))
  }

  /** The size of a stored value, or undefined when absent (one HEAD of its final object). */
  private async head (cid: CID, signal?: AbortSignal): Promise<number | undefined> {
    const out = await this.ops.sendOrAbsent<{ ContentLength?: number }>('HeadObject', new HeadObjectCommand({ Bucket: this.bucket, Key: this.layout.blob(cid) }), signal)
    return out?.ContentLength
  }

  async has (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    this.check(options)
    return await this.head(parseCID(cid), options?.signal) !== undefined
  }

  async stat (cid: CIDLike, options?: AbortOptions): Promise<BlobStat> {
    this.check(options)
    const parsed = parseCID(cid)
    const size = await this.head(parsed, options?.signal)
    if (size === undefined) throw notFound(parsed)
    return { cid: parsed, size, pinned: true }
  }

  /** Values and bytes: a list of `blobs/` at open (in the background), adjusted by this process's puts and deletes. Another Global's puts and deletes are not seen. */
  usage (): { values: number, bytes: number } {
    return { values: this.counted.values, bytes: this.counted.bytes }
  }

  async put (source: ByteSource, options: PutOptions = {}): Promise<CID> {
    this.check(options)
    return await this.track(this.doPut(source, options))
  }

  private async doPut (source: ByteSource, options: PutOptions): Promise<CID> {
    const expected = checkPutOptions(options)
    const { signal } = options
    // A value already in the bucket is not uploaded again: with `expected`, one HEAD tells.
    const known = expected !== undefined && !this.isSuspect(expected) ? await this.head(expected, signal) !== undefined : false
    const hasher = new TreeHasher({ outboard: true })
    const total = options.size ?? (source instanceof Uint8Array ? source.length : undefined)
    // With `expected`, a large value's multipart upload goes to its final key at once: an upload
    // is invisible until completed, and it is completed only once verified (no copy). Without,
    // to a fresh staging key, copied to the final key once the hash names it.
    const target = expected !== undefined ? this.layout.blob(expected) : this.layout.newStaging()
    const upload = known ? undefined : new StagingUpload(this.ops, target, partSizeFor(this.partSize, total), this.concurrency, signal)
    let received = 0
    try {
      for await (const chunk of iterateSource(source, signal)) {
        if (this.closed) throw new ClosedError()
        received += chunk.length
        if (options.size !== undefined && received > options.size) {
          throw new VerificationError(`Expected ${options.size} bytes, received more`)
        }
        if (chunk.length === 0) continue
        hasher.update(chunk)
        if (upload !== undefined) await upload.add(chunk)
        options.onProgress?.({ type: 'blob:put:write', bytes: received, total })
      }
      throwIfAborted(signal)
      if (this.closed) throw new ClosedError()
      const result = hasher.finalize()
      const cid = verifyPut(result.root, result.size, expected, options)
      if (received === 0) options.onProgress?.({ type: 'blob:put:write', bytes: 0, total: 0 })
      if (upload === undefined) return cid
      const outboard = result.outboard as Uint8Array
      if (upload.multipart && !this.isDirect(upload)) {
        await upload.complete()
        await this.checkLength(upload.key, result.size, signal)
      }
      await this.keyLocks.run(keyOf(cid), async () => { await this.publish(cid, result.size, outboard, upload, signal) })
      return cid
    } finally {
      // Done or failed, the staging goes (after a success the final object is a copy of it).
      if (upload !== undefined) await this.discard(upload)
    }
  }

  /**
   * Makes a verified value visible, under its key lock: nothing when its final object already
   * exists (and is not suspect); else the outboard object first, then the final object (one
   * PutObject for a small value, a server-side copy of the staging object for a large one).
   */
  private async publish (cid: CID, size: number, outboard: Uint8Array, upload: StagingUpload, signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new ClosedError()
    const suspect = this.isSuspect(cid)
    // The HEAD and the outboard's write go together (one round trip fewer per put): writing an
    // outboard that exists rewrites the same bytes, and the order that matters (outboard, then
    // final object) is kept.
    const [size0] = await Promise.all([
      this.head(cid, signal),
      this.ops.send('PutObject', new PutObjectCommand({
        Bucket: this.bucket, Key: this.layout.outboard(cid), Body: outboard, ContentLength: outboard.length
      }), signal)
    ])
    const existed = size0 !== undefined
    if (existed && !suspect) return
    const small = upload.buffered()
    if (this.isDirect(upload) && small === undefined) {
      await upload.complete()
      try {
        await this.checkLength(upload.key, size, signal)
      } catch (err) {
        await this.ops.send('DeleteObject', new DeleteObjectCommand({ Bucket: this.bucket, Key: upload.key })).catch(() => {})
        throw err
      }
    } else if (small !== undefined) {
      await this.ops.send('PutObject', new PutObjectCommand({
        Bucket: this.bucket, Key: this.layout.blob(cid), Body: small, ContentLength: small.length
      }), signal)
    } else {
      await copyObject(this.ops, upload.key, this.layout.blob(cid), size, this.copyOptions(signal))
    }
    this.suspects.delete(keyOf(cid))
    if (!existed) { this.counted.values++; this.counted.bytes += size }
  }

  /** Whether `upload` goes straight to a final key (a put with `expected`). */
  private isDirect (upload: StagingUpload): boolean {
    return !upload.key.startsWith(this.layout.staging)
  }

  /** The object at `key` has `size` bytes (what was hashed), or a StorageError: a server that assembled other parts must not get its object copied or kept. */
  private async checkLength (key: string, size: number, signal?: AbortSignal): Promise<void> {
    const head = await this.ops.send<{ ContentLength?: number }>('HeadObject', new HeadObjectCommand({ Bucket: this.bucket, Key: key }), signal)
    if (head.ContentLength !== size) throw new StorageError(`S3 object ${key} has ${String(head.ContentLength)} bytes, ${size} were sent`)
  }

  /** Removes a put's staging: aborts its multipart upload unless completed, deletes a staging object; never throws. */
  private async discard (upload: StagingUpload): Promise<void> {
    if (!upload.multipart) return
    await upload.abort()
    if (!this.isDirect(upload)) await this.ops.send('DeleteObject', new DeleteObjectCommand({ Bucket: this.bucket, Key: upload.key })).catch(() => {})
  }

  /** @internal options of server-side copies. */
  copyOptions (signal?: AbortSignal): CopyOptions {
    return { singleMax: this.copySingleMax, partSize: this.partSize, concurrency: this.concurrency, signal }
  }

  /**
   * Marks a stored value suspect (a re-check found its bytes bad): the next put of it uploads
   * its verified bytes and replaces the bucket's objects. In memory only, at most 4096 values.
   */
  markSuspect (cid: CIDLike): void {
    this.suspects.add(keyOf(cid))
  }

  isSuspect (cid: CIDLike): boolean {
    return this.suspects.has(keyOf(cid))
  }

  cat (cid: CIDLike, options: GetOptions = {}): AsyncIterable<Uint8Array> {
    return this.read(cid, options)
  }

  private async * read (cid: CIDLike, options: GetOptions): AsyncGenerator<Uint8Array> {
    this.check(options)
    const parsed = parseCID(cid)
    const key = this.layout.blob(parsed)
    let body
    let total: number
    if ((options.offset ?? 0) === 0 && options.length === undefined) {
      // The whole value: one GET, no HEAD.
      const got = await this.getOrNotFound(parsed, key, undefined, options.signal)
      body = got.body
      total = got.length
    } else {
      const size = await this.head(parsed, options.signal)
      if (size === undefined) throw notFound(parsed)
      const range = resolveRange(size, options)
      total = range.end - range.start
      if (total === 0) return
      body = (await this.getOrNotFound(parsed, key, range, options.signal)).body
    }
    let done = 0
    for await (const piece of pieces(this.ops, body, total, key)) {
      this.check(options)
      done += piece.length
      yield piece
      options.onProgress?.({ type: 'blob:get:read', bytes: done, total })
    }
  }

  private async getOrNotFound (cid: CID, key: string, range: { start: number, end: number } | undefined, signal?: AbortSignal): Promise<Awaited<ReturnType<typeof getObject>>> {
    try {
      return await getObject(this.ops, key, range, signal)
    } catch (err) {
      if (err instanceof NotFoundError) throw notFound(cid)
      throw err
    }
  }

  async delete (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    this.check(options)
    const parsed = parseCID(cid)
    return await this.track(this.keyLocks.run(keyOf(parsed), async () => {
      const size = await this.head(parsed, options?.signal)
      if (size === undefined) return false
      // Value first: once it is gone the value is absent for every Global. A crash before the
      // outboard's delete leaves an orphan outboard, which verify removes (and a later put
      // rewrites).
      await this.ops.send('DeleteObject', new DeleteObjectCommand({ Bucket: this.bucket, Key: this.layout.blob(parsed) }), options?.signal)
      await this.ops.send('DeleteObject', new DeleteObjectCommand({ Bucket: this.bucket, Key: this.layout.outboard(parsed) }), options?.signal)
      this.suspects.delete(keyOf(parsed))
      this.counted.values = Math.max(0, this.counted.values - 1)
      this.counted.bytes = Math.max(0, this.counted.bytes - size)
      return true
    }))
  }

  /** Every value under `blobs/` (ListObjectsV2, paged), in key order (the CID's text, not digest order: `after` is ignored). */
  async * list (options?: ListOptions): AsyncGenerator<BlobStat> {
    this.check(options)
    for await (const o of listKeys(this.ops, this.layout.blobs, options?.signal)) {
      this.check(options)
      const cid = this.layout.cidOf(o.key, this.layout.blobs)
      if (cid !== undefined) yield { cid, size: o.size, pinned: true }
    }
  }

  /**
   * The value's outboard object. One missing beside a present value (a delete on another
   * Global raced this put, see STORAGE.md) is rebuilt from the value's bytes when they hash to
   * the key, and written back.
   */
  async outboard (cid: CIDLike, options?: AbortOptions): Promise<Uint8Array> {
    this.check(options)
    const parsed = parseCID(cid)
    try {
      const ob = await readAll(this.ops, this.layout.outboard(parsed), options?.signal)
      return new Uint8Array(ob.buffer, ob.byteOffset, ob.length)
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
    }
    const size = await this.head(parsed, options?.signal)
    if (size === undefined) throw notFound(parsed)
    const result = await this.hashStored(parsed, options?.signal)
    if (!Buffer.from(result.root).equals(keyOf(parsed))) {
      throw new VerificationError(`${String(parsed)}: outboard missing and the stored bytes do not hash to the key`)
    }
    const outboard = result.outboard as Uint8Array
    await this.ops.send('PutObject', new PutObjectCommand({ Bucket: this.bucket, Key: this.layout.outboard(parsed), Body: outboard, ContentLength: outboard.length }), options?.signal)
    this.log(`s3 store: rebuilt the missing outboard of ${String(parsed)}`)
    return outboard
  }

  /** @internal Hashes the stored value (streamed, bounded memory), with its outboard. */
  async hashStored (cid: CID, signal?: AbortSignal): Promise<ReturnType<TreeHasher['finalize']>> {
    const hasher = new TreeHasher({ outboard: true })
    for await (const piece of this.read(cid, { signal })) hasher.update(piece)
    return hasher.finalize()
  }

  /**
   * Opens a value for random access: a value up to 1 MiB is read whole (so the reader survives
   * a delete); a larger one is read with ranged GETs, streaming (a sequential scan is one GET).
   * A large value deleted meanwhile (by any Global) fails later reads with NotFoundError.
   */
  async open (cid: CIDLike, options?: AbortOptions): Promise<BlobReader> {
    this.check(options)
    const parsed = parseCID(cid)
    const size = await this.head(parsed, options?.signal)
    if (size === undefined) throw notFound(parsed)
    if (size <= SMALL_READ) {
      try {
        return memoryReader(await readAll(this.ops, this.layout.blob(parsed), options?.signal))
      } catch (err) {
        if (err instanceof NotFoundError) throw notFound(parsed)
        throw err
      }
    }
    return new S3Reader(this.ops, this.layout.blob(parsed), size)
  }

  /** Checks a byte range of a stored value against its key through the stored outboard. */
  async verifyRange (cid: CIDLike, range: ByteRange, options?: AbortOptions): Promise<string | undefined> {
    this.check(options)
    return await checkStoredRange(this, parseCID(cid), range, options)
  }

  /**
   * Re-hashes every value in the bucket against its key and its outboard, and looks for orphan
   * outboards and stale staging (docs/STORAGE.md, "Verify and repair (S3)"). With `repair`:
   * corrupt values are moved to `quarantine/`, bad or missing outboards rebuilt, orphan
   * outboards and stale staging removed.
   */
  async verify (options: S3VerifyOptions = {}): Promise<S3VerifyReport> {
    this.check(options)
    return await verifyS3(this, options)
  }

  /**
   * This store's S3 requests by operation, for /status and /metrics (the client layer's counters,
   * {@link s3Stats}; with a `client` given in the options, everything that client sent).
   */
  operationStats (): StoreOperationStats {
    return s3Stats(this.ops.client)
  }

  /** Removes staging older than `maxAge` (default: the store's `stagingMaxAge`). */
  async cleanStaging (maxAge = this.stagingMaxAge, options?: AbortOptions): Promise<StagingCleanReport> {
    this.check(options)
    return await cleanStaging(this.ops, this.layout, maxAge, true, options?.signal)
  }

  /** @internal runs `fn` under the key lock of `cid` (verify's repairs). */
  async locked<T> (cid: CID, fn: () => Promise<T>): Promise<T> {
    return await this.keyLocks.run(keyOf(cid), fn)
  }

  /** Waits for puts and deletes in flight (puts still streaming fail with ClosedError), then releases the client. */
  async close (): Promise<void> {
    if (this.closing !== undefined) return await this.closing
    this.closed = true
    this.counting.abort()
    this.closing = (async () => {
      await Promise.allSettled([...this.inflight])
      if (this.ownsClient) this.ops.client.destroy()
    })()
    return await this.closing
  }

  get isClosed (): boolean { return this.closed }

  private async track<T> (task: Promise<T>): Promise<T> {
    this.inflight.add(task)
    try {
      return await task
    } finally {
      this.inflight.delete(task)
    }
  }

  /** @internal throws ClosedError / AbortError. */
  check (options?: AbortOptions): void {
    if (this.closed) throw new ClosedError()
    throwIfAborted(options?.signal)
  }
}

/** Opens an S3 store (see {@link S3StoreOptions}; endpoint, region and credentials default to the AWS environment). */
export async function createS3Store (options: S3StoreOptions): Promise<S3BlobStore> {
  return await S3BlobStore.open(options)
}

/** Re-hashes an S3 store's values (and, with `repair`, quarantines bad ones): `dstore verify --store s3://…`. */
export async function verifyS3Store (store: S3BlobStore, options: S3VerifyOptions = {}): Promise<S3VerifyReport> {
  return await store.verify(options)
}

function keyOf (cid: CIDLike): Buffer {
  return Buffer.from(parseCID(cid).multihash.digest)
}

function notFound (cid: CID): NotFoundError {
  return new NotFoundError(`Not in store: ${String(cid)}`)
}
