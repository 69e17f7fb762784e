/**
 * What a Local serves to other Locals, as a {@link VerifiableBlobStore} the existing provider
 * code (createProviderHandler, handleBlobStream) reads from: the cache first (whole verified
 * values; the memory store keeps or builds their outboards), else a download in flight (a
 * PartialValue of the registry) for the ranges it holds. The cache is read with `peek`: serving
 * a peer is not a use of the cache (its hits, misses and LRU order are its callers').
 *
 * Invariants:
 * - only verified bytes are served: a cached value was verified before it was cached, and a
 *   partial's range is served only when every piece it overlaps is held (`canServe`, checked
 *   by the provider before anything of the range is sent), its parents verified with them;
 * - a value this Local stopped holding (invalidated, evicted, its download closed) is not
 *   served further: each read checks it is still held, so a transfer in progress ends with
 *   NotFoundError at its next group batch;
 * - nothing is written through it: put and delete are refused (the serving handler refuses
 *   those requests before they get here).
 */
import type { CID } from 'multiformats/cid'
import { cidFromDigest, parseCID, type CIDLike } from '../../core/cid.js'
import { NotFoundError, OutOfRangeError, PermissionDeniedError } from '../../core/errors.js'
import type { ByteRange } from '../../core/bao/index.js'
import type { MemoryBlobStore } from '../../core/store/memory.js'
import type { BlobReader, BlobStat, VerifiableBlobStore } from '../../core/store/interface.js'
import type { PartialRegistry, PartialValue } from './partials.js'

export interface ServeStoreOptions {
  /** Test-only: flip one data byte of every read (so of every range served): a lying Local. */
  flipServedByte?: boolean
}

/** The cache and the downloads in flight, read-only, as the provider code reads a store. */
export class ServeStore implements VerifiableBlobStore {
  constructor (private readonly cache: MemoryBlobStore, private readonly partials: PartialRegistry, private readonly options: ServeStoreOptions = {}) {}

  /** The download of `cid` in flight, when the value is not cached. */
  private partial (cid: CID): PartialValue | undefined { return this.partials.get(cid) }

  async has (cid: CIDLike): Promise<boolean> {
    const key = parseCID(cid)
    if (this.cache.peek(key) !== undefined) return true
    return this.partial(key)?.complete() === true
  }

  /**
   * A cached value, or a download in flight that is complete (every piece verified): STAT says
   * what this Local holds whole. A value still downloading is absent here; HAVE tells its pieces.
   */
  async stat (cid: CIDLike): Promise<BlobStat> {
    const key = parseCID(cid)
    const cached = this.cache.peek(key)
    if (cached !== undefined) return { cid: key, size: cached.data.length, pinned: false }
    const pv = this.partial(key)
    if (pv?.complete() === true) return { cid: key, size: pv.size, pinned: false }
    throw new NotFoundError(`${key.toString()} is not held here`)
  }

  /** @throws {NotFoundError} unless every piece the range overlaps is held (a cached value holds all). */
  async canServe (digest: Uint8Array, range: ByteRange): Promise<void> {
    const key = cidFromDigest(digest)
    if (this.cache.peek(key) !== undefined) return
    const pv = this.partial(key)
    if (pv === undefined) throw new NotFoundError(`${key.toString()} is not held here`)
    if (!pv.holds(range)) throw new NotFoundError(`bytes ${range.offset}..${range.offset + range.length} of ${key.toString()} are not held here yet`)
  }

  async outboard (cid: CIDLike): Promise<Uint8Array> {
    const key = parseCID(cid)
    const cached = this.cache.peek(key)
    if (cached !== undefined) return cached.outboard()
    const pv = this.partial(key)
    if (pv === undefined) throw new NotFoundError(`${key.toString()} is not held here`)
    // Only the parents of held pieces are read (canServe): those were verified.
    return pv.outboard
  }

  async open (cid: CIDLike): Promise<BlobReader> {
    const key = parseCID(cid)
    const cached = this.cache.peek(key)
    if (cached !== undefined) return this.reader(cached.data, () => this.cache.peek(key) !== undefined, key)
    const pv = this.partial(key)
    if (pv === undefined) throw new NotFoundError(`${key.toString()} is not held here`)
    // Held while the download is registered, or once its bytes are the cache's: a download that
    // was cached leaves the registry without being closed, and a delete then finds only the
    // cache entry, so `closed` alone would let a transfer begun on the partial run on after it.
    return this.reader(pv.data, () => !pv.closed && (this.partials.get(key) === pv || this.cache.peek(key)?.data === pv.data), key)
  }

  /** Reads copies of `data`, stopping once the value is no longer `held`; (test-only) lying. */
  private reader (data: Uint8Array, held: () => boolean, key: CID): BlobReader {
    const flip = this.options.flipServedByte === true
    return {
      size: data.length,
      read: async (offset, length, into) => {
        if (!held()) throw new NotFoundError(`${key.toString()} is no longer held here`)
        if (offset < 0 || length < 0 || offset + length > data.length) throw new OutOfRangeError(`bytes ${offset}+${length} are outside the value`)
        // A copy: the encoder may keep what it is given, and the flip must not touch what is held.
        const bytes = into !== undefined && into.length >= length ? into.subarray(0, length) : new Uint8Array(length)
        bytes.set(data.subarray(offset, offset + length))
        if (flip && bytes.length > 0) bytes[0] ^= 0x01
        return bytes
      },
      close: async () => {}
    }
  }

  async put (): Promise<CID> { throw new PermissionDeniedError('a Local does not store values for peers') }
  async delete (): Promise<boolean> { throw new PermissionDeniedError('a Local does not delete values for peers') }
  async * cat (): AsyncGenerator<Uint8Array> { throw new PermissionDeniedError('peers read verified ranges (GET), not raw bytes') }
  async * list (): AsyncGenerator<BlobStat> { throw new PermissionDeniedError('a Local does not list what it holds to peers') }
  async close (): Promise<void> {}
}
