/**
 * The blob store contract. Two implementations run one compliance suite
 * (`test/store-compliance.ts`): the memory store (a Local's LRU cache) and the filesystem
 * store (Global's canonical copies).
 *
 * Stores hold only verified values: `put` hashes what it receives and, when told which CID to
 * expect, refuses anything else before it becomes visible.
 */
import type { CID } from 'multiformats/cid'
import type { CIDLike } from '../cid.js'
import type { ByteRange } from '../bao/range.js'

/** Cancellation, as everywhere in dstore. */
export interface AbortOptions {
  signal?: AbortSignal
}

/** Progress of a long operation. `total` is undefined when not known in advance. */
export interface ProgressEvent {
  /** What is happening, named `area:verb:step`, e.g. `blob:put:write`. */
  type: string
  /** Bytes done so far. */
  bytes: number
  /** Total bytes, when known. */
  total?: number
}

export interface ProgressOptions {
  onProgress?: (event: ProgressEvent) => void
}

/** Bytes accepted by `put`. */
export type ByteSource = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>

export interface PutOptions extends AbortOptions, ProgressOptions {
  /** The CID the value must hash to; anything else is rejected with `VerificationError` and not stored. */
  expected?: CIDLike
  /** The size the value must have, when the caller knows it; a mismatch is a `VerificationError`. */
  size?: number
  /** Pin the value so it is never evicted (memory store). The filesystem store pins everything. */
  pin?: boolean
}

export interface GetOptions extends AbortOptions, ProgressOptions {
  /** First byte to return; default 0. */
  offset?: number
  /** Bytes to return; default to the end. A range past the end is an `OutOfRangeError`. */
  length?: number
}

/** What a store knows of one blob. */
export interface BlobStat {
  cid: CID
  /** Size in bytes. */
  size: number
  /** Whether the blob is pinned (never evicted). */
  pinned: boolean
}

/** A content-addressed blob store. */
export interface BlobStore {
  /** True when the store holds `cid`. */
  has: (cid: CIDLike, options?: AbortOptions) => Promise<boolean>

  /** Size and pin state. @throws {NotFoundError} when absent. */
  stat: (cid: CIDLike, options?: AbortOptions) => Promise<BlobStat>

  /**
   * Stores a value streamed in, and returns its CID once it is complete and visible.
   * Putting a value that is already stored is a cheap no-op that returns the same CID.
   * On failure nothing is stored: `VerificationError` (hash or size mismatch), `AbortError`,
   * `StorageError` (with the filesystem error as `cause`), `TooLargeError` (memory budget);
   * an error thrown by the source itself is passed on unchanged.
   *
   * A `Uint8Array` source is read in place (the fs store hashes it and writes it from the
   * caller's array, with no copy): it must not be changed or transferred until `put` settles,
   * or the stored bytes may not be the ones hashed. Pieces of a streamed source are copied.
   */
  put: (source: ByteSource, options?: PutOptions) => Promise<CID>

  /**
   * Streams a value (or a byte range of it) out, in bounded pieces the caller may keep. Named
   * as a Local's `cat` is (a Local's `get` returns the whole value as one buffer).
   * Lazy: `cat` itself never throws; its errors (`NotFoundError` when absent,
   * `InvalidCIDError`, `OutOfRangeError`, `AbortError`, `ClosedError`) reject the first `next()`.
   */
  cat: (cid: CIDLike, options?: GetOptions) => AsyncIterable<Uint8Array>

  /** Removes a value, pinned or not. Resolves true when it was present. */
  delete: (cid: CIDLike, options?: AbortOptions) => Promise<boolean>

  /** Every blob in the store (order unspecified, except where a store documents it: the filesystem store lists in digest order). */
  list: (options?: ListOptions) => AsyncIterable<BlobStat>

  /** Releases resources. Later calls throw `ClosedError`. */
  close: () => Promise<void>
}

/** A store that can also serve verified streams: random access to data plus its outboard. */
export interface VerifiableBlobStore extends BlobStore {
  /**
   * The value's outboard (8-byte length header and pre-order parent nodes at dstore's chunk
   * group size), as `docs/PROTOCOL.md` defines it. @throws {NotFoundError} when absent.
   */
  outboard: (cid: CIDLike, options?: AbortOptions) => Promise<Uint8Array>

  /** Opens the value for random-access reads. The reader must be closed. */
  open: (cid: CIDLike, options?: AbortOptions) => Promise<BlobReader>

  /**
   * Optional fast path: a small value and its outboard, read synchronously, or undefined when
   * the store cannot (or does not hold it that way). Callers fall back to `open`/`outboard`.
   */
  readInline?: (cid: CIDLike) => { data: Uint8Array, outboard: Uint8Array } | undefined

  /**
   * Optional: whether the stored copy was found corrupt (a re-check after a Local rejected it)
   * and not yet replaced. Global's STAT answers such a value as absent, so a Local's put sends
   * its bytes, and the store replaces the bad copy with them.
   */
  isSuspect?: (cid: CIDLike) => boolean
}

/** Random access to one stored value. Reads after the value is deleted still see the old bytes. */
export interface BlobReader {
  readonly size: number
  /**
   * Reads `length` bytes at `offset` (must lie inside the value). May return a view into a
   * shared buffer only if documented. With `into` (at least `length` bytes, which the caller
   * does not touch until the read settles), a reader may read into it and return a view of it:
   * a caller that copies each piece away can then reuse two buffers instead of allocating one
   * per read (the encoder does, which spares the garbage collector on a busy Global).
   */
  read: (offset: number, length: number, into?: Uint8Array) => Promise<Uint8Array>
  /**
   * Optional scatter read: fills `targets`, in order, with the consecutive bytes from `offset`
   * (their total length must lie inside the value), and rejects unless every byte was read.
   * The caller does not touch `targets` until it settles. The encoder uses it to read a
   * value's data straight into its output pieces, between the parents, with no copy.
   */
  readv?: (offset: number, targets: Uint8Array[]) => Promise<void>
  close: () => Promise<void>
}

export interface ListOptions extends AbortOptions {
  /**
   * A 32-byte digest: a store that lists in digest order (the filesystem store) starts after
   * it, so paging costs one page, not a walk from the start. Others may ignore it; a caller
   * that needs the guarantee filters too.
   */
  after?: Uint8Array
}

/** Options of a call that may be cancelled and may report progress (a Local's calls, a requester's). */
export interface CallOptions extends AbortOptions, ProgressOptions {}

/**
 * What a Global needs of the store that holds its canonical copies: the filesystem store
 * (`createFsStore`, the default, in `<repo>/store`) or an object store (S3). Beyond a
 * {@link VerifiableBlobStore}: re-checking a stored range after a Local rejected it, marking a
 * copy suspect so the next put replaces it, usage figures for /status, and closing.
 */
export interface GlobalStore extends VerifiableBlobStore {
  /** A short name for /status and /metrics: `fs`, `s3`. */
  readonly kind: string
  /**
   * Checks a byte range of a stored value against its key through the stored outboard.
   * Resolves with what is wrong, or undefined when the range verifies or the value is absent.
   */
  verifyRange: (cid: CIDLike, range: ByteRange, options?: AbortOptions) => Promise<string | undefined>
  /** Marks the stored copy suspect: `isSuspect` answers true until a put re-verifies or replaces it. */
  markSuspect: (cid: CIDLike) => void
  isSuspect: (cid: CIDLike) => boolean
  /** Values stored and the sum of their sizes, without a scan (as far as this Global knows: another Global's puts on a shared store may not be counted). */
  usage: () => { values: number, bytes: number }
  /**
   * Requests this store has made to a remote service, by operation (`PutObject`, `GetObject`,
   * ...), for /status and /metrics. A store with no remote service (the fs store) has none.
   */
  operationStats?: () => StoreOperationStats
  /** Waits for puts in flight, then releases the store. */
  close: () => Promise<void>
}

/** One operation's counts since the store's client was made. */
export interface OperationCounts {
  /** Calls of the operation (each may take several attempts: see `retries`). */
  requests: number
  /** Calls that failed after their retries (a 404, a normal answer to `has`, is not an error). */
  errors: number
  /** Attempts beyond each call's first (throttling, 5xx, network failures). */
  retries: number
  /** Calls answered 404 (a key that is not there), where the store counts them. */
  notFound?: number
}

/** Counts by operation name (for S3: the API's names, `PutObject`, `HeadObject`, ...). */
export type StoreOperationStats = Record<string, OperationCounts>
