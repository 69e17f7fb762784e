/**
 * What a Local serves to other Locals, as a {@link VerifiableBlobStore} the existing provider
 * code (createProviderHandler, handleBlobStream) reads from: the cache first (whole verified
 * values; the memory store keeps or builds their outboards), else a download in flight (a
 * PartialValue of the registry) for the ranges it holds.
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
import { NotFoundError, PermissionDeniedError } from '../../core/errors.js'
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
    if (await this.cache.has(key)) return true
    return this.partial(key)?.complete() === true
  }

  /**
   * A cached value, or a download in flight that is complete (every piece verified): STAT says
   * what this Local holds whole. A value still downloading is absent here; HAVE tells its pieces.
   */
  async stat (cid: CIDLike): Promise<BlobStat> {
    const key = parseCID(cid)
    if (await this.cache.has(key)) return await this.cache.stat(key)
    const pv = this.partial(key)
    if (pv?.complete() === true) return { cid: key, size: pv.size, pinned: false }
    throw new NotFoundError(`${key.toString()} is not held here`)
  }

  /** @throws {NotFoundError} unless every piece the range overlaps is held (a cached value holds all). */
  async canServe (digest: Uint8Array, range: ByteRange): Promise<void> {
    const key = cidFromDigest(digest)
    if (await this.cache.has(key)) return
    const pv = this.partial(key)
    if (pv === undefined) throw new NotFoundError(`${key.toString()} is not held here`)
    if (!pv.holds(range)) throw new NotFoundError(`bytes ${range.offset}..${range.offset + range.length} of ${key.toString()} are not held here yet`)
  }

  async outboard (cid: CIDLike): Promise<Uint8Array> {
    const key = parseCID(cid)
    if (await this.cache.has(key)) return await this.cache.outboard(key)
    const pv = this.partial(key)
    if (pv === undefined) throw new NotFoundError(`${key.toString()} is not held here`)
    // Only the parents of held pieces are read (canServe): those were verified.
    return pv.outboard
  }

  async open (cid: CIDLike): Promise<BlobReader> {
    const key = parseCID(cid)
    if (await this.cache.has(key)) {
      const reader = await this.cache.open(key)
      return this.guarded(reader, async () => await this.cache.has(key), key)
    }
    const pv = this.partial(key)
    if (pv === undefined) throw new NotFoundError(`${key.toString()} is not held here`)
    const reader: BlobReader = {
      size: pv.size,
      read: async (offset, length) => pv.data.slice(offset, offset + length),
      close: async () => {}
    }
    return this.guarded(reader, async () => !pv.closed, key)
  }

  /** A reader that stops once the value is no longer held, and (test-only) lies. */
  private guarded (reader: BlobReader, held: () => Promise<boolean>, key: CID): BlobReader {
    const flip = this.options.flipServedByte === true
    return {
      size: reader.size,
      read: async (offset, length) => {
        if (!(await held())) throw new NotFoundError(`${key.toString()} is no longer held here`)
        const bytes = await reader.read(offset, length)
        // Both readers return copies: flipping one does not touch what is held.
        if (flip && bytes.length > 0) bytes[0] ^= 0x01
        return bytes
      },
      close: reader.close
    }
  }

  async put (): Promise<CID> { throw new PermissionDeniedError('a Local does not store values for peers') }
  async delete (): Promise<boolean> { throw new PermissionDeniedError('a Local does not delete values for peers') }
  // eslint-disable-next-line require-yield
  async * cat (): AsyncGenerator<Uint8Array> { throw new PermissionDeniedError('peers read verified ranges (GET), not raw bytes') }
  // eslint-disable-next-line require-yield
  async * list (): AsyncGenerator<BlobStat> { throw new PermissionDeniedError('a Local does not list what it holds to peers') }
  async close (): Promise<void> {}
}
