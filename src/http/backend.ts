/**
 * What the HTTP server needs from the peer behind it: the same small surface on a Local (served
 * from its cache, fetched and verified from Global on a miss) and on a Global (its disk store).
 * The server (server.ts, routes) speaks HTTP; a backend (backend-local.ts, backend-global.ts)
 * speaks dstore. Nothing here knows about the other side.
 */
import type { CID } from 'multiformats/cid'
import type { ByteRange } from '../core/bao/range.js'
import type { AbortOptions, ProgressOptions } from '../core/store/interface.js'

export type Role = 'local' | 'global'

export interface BackendStat {
  size: number
  /** On a Local: whether the value is in its cache now. Always true on Global. */
  cached: boolean
}

/** A verified range, in the bao encoding (`application/vnd.dstore.bao`, docs/HTTP.md). */
export interface EncodedRange {
  /** The value's total size. */
  size: number
  /** Bytes of the encoding (`encodedRangeLength`), for Content-Length. */
  length: number
  stream: AsyncIterable<Uint8Array>
}

export interface BackendPutOptions extends AbortOptions, ProgressOptions {
  /** The CID the bytes must hash to (PUT /ipfs/{cid}); a mismatch is a VerificationError and nothing is stored. */
  expected?: CID
}

export interface HttpBackend {
  readonly role: Role
  /** @throws {NotFoundError} when the value is not stored. Does not fetch the value. */
  stat: (cid: CID, options?: AbortOptions) => Promise<BackendStat>
  /**
   * Verified bytes of `[offset, offset + length)` (already clipped to the value by the caller).
   * A Local serves from its cache, or fetches (and caches what fits) on a miss.
   */
  cat: (cid: CID, range: { offset: number, length: number }, options?: AbortOptions) => AsyncIterable<Uint8Array>
  /** The bao encoding of a range of the value, for clients that verify (connectLocal). @throws {NotFoundError} */
  encoded: (cid: CID, range: ByteRange, options?: AbortOptions) => Promise<EncodedRange>
  /** Stores a value (streamed; bounded memory) and returns its CID once it is verified and stored (on Global, for a Local). */
  put: (source: AsyncIterable<Uint8Array>, options?: BackendPutOptions) => Promise<CID>
  /** Deletes everywhere (Global, and every connected Local's cache). False when it was not stored. */
  delete: (cid: CID, options?: AbortOptions) => Promise<boolean>
  /** Every value stored (on Global; a Local asks Global). */
  list: (options?: AbortOptions) => AsyncIterable<{ cid: CID, size: number }>
  /** Which of `cids` are not stored (one batched STAT on a Local). */
  missing: (cids: CID[], options?: AbortOptions) => Promise<CID[]>
  /** The document GET /status answers (status.ts builds it). */
  status: () => Promise<Record<string, unknown>>
}
