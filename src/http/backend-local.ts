/**
 * The HTTP backend of a Local daemon: reads are served from the Local's LRU cache, and a miss
 * is fetched (verified) from Global.
 *
 * Which path a read takes, by the value's size against the cache's budget:
 * - cached: straight from the cache (`getBytes`, which counts a hit and refreshes the entry);
 * - not cached, fits the cache, the whole value asked: streamed as it is verified and cached
 *   once complete (`local.cat` with `fill`: one transfer shared with concurrent requests), so
 *   the first byte goes out at once rather than after the whole value;
 * - not cached, fits the cache, a range asked: the WHOLE value is fetched once (`local.get`,
 *   single-flight) and cached, then the range is served from it, on purpose: the next read of
 *   any part of it is a hit, as a caching agent (Kraken's, dfdaemon) does;
 * - larger than the cache: streamed from Global (`local.cat`, verified piece by piece), never
 *   cached, in bounded memory.
 *
 * `encoded` (the bao encoding of a range, `application/vnd.dstore.bao`) needs the value's
 * outboard. A cached value has it (the cache builds and keeps it). A value larger than the
 * cache takes two passes over Global: the first streams the verified value through the tree
 * hasher to build the outboard (1/256 of the value: 4 MiB for 1 GiB), the second streams the
 * data of the selected groups into the encoder. Recent outboards of such values are kept in a
 * small bounded map, so repeated range reads of one large value pay the first pass once.
 * A value's size and outboard never change (the key is its hash), so neither map goes stale;
 * a delete drops them anyway.
 */
import type { CID } from 'multiformats/cid'
import { raceAbort, throwIfAborted } from '../core/abort.js'
import { encodeRange, encodedRangeLength, outboard as buildOutboard } from '../core/bao/encode.js'
import { planRange, type ByteRange } from '../core/bao/range.js'
import { StorageError, VerificationError } from '../core/errors.js'
import type { AbortOptions, BlobReader } from '../core/store/interface.js'
import { DEFAULT_GROUP_LOG, TreeHasher } from '../core/tree.js'
import type { LocalPeer } from '../peers/local/index.js'
import type { BackendPutOptions, BackendStat, EncodedRange, HttpBackend } from './backend.js'

/** Pieces a cached value is served in (views, no copies): bounded writes, so the server can apply backpressure. */
const SERVE_PIECE = 4 << 20

export interface LocalBackendOptions {
  /**
   * Outboards of values larger than the cache kept for `encoded` (least recently used dropped first).
   * @default 64 MiB
   */
  outboardBytes?: number
  /**
   * The document GET /status answers; the default is a minimal `{ role, peerId, global: { connected }, cache: {…} }`
   * (the daemon passes status.ts's `localStatus`).
   */
  status?: () => Promise<Record<string, unknown>>
}

/**
 * A minimal /status document for a Local: the shape of status.ts's `localStatus`, reduced to
 * what a client needs (its role, PeerId, Global's connection, the cache's figures).
 */
export function minimalLocalStatus (local: LocalPeer): Record<string, unknown> {
  const s = local.stats()
  return {
    role: 'local',
    peerId: local.peerId,
    global: { connected: s.connected },
    cache: { bytes: s.cacheBytes, limit: s.cacheSize, entries: s.cacheEntries, hits: s.hits, misses: s.misses, evictions: s.evictions }
  }
}

/** Sizes remembered, at most (a few dozen bytes each). */
const MAX_SIZES = 4096

/** An {@link HttpBackend} over a running Local peer. */
export function localBackend (local: LocalPeer, options: LocalBackendOptions = {}): HttpBackend {
  return new LocalBackend(local, options)
}

class LocalBackend implements HttpBackend {
  readonly role = 'local' as const
  /** Sizes of values seen by `stat` (the server stats before every read): spares a second STAT to Global. */
  private readonly sizes = new BoundedMap<number>(MAX_SIZES, () => 1)
  private readonly outboards: BoundedMap<Uint8Array>
  /** Outboards being computed for large values: concurrent requests share one first pass. */
  private readonly computing = new Map<string, Promise<Uint8Array>>()

  constructor (private readonly local: LocalPeer, private readonly options: LocalBackendOptions) {
    this.outboards = new BoundedMap(options.outboardBytes ?? 64 << 20, ob => ob.length)
  }

  async stat (cid: CID, options: AbortOptions = {}): Promise<BackendStat> {
    const s = await this.local.stat(cid, options)
    this.sizes.set(cid.toString(), s.size)
    return { size: s.size, cached: s.cached }
  }

  async * cat (cid: CID, range: { offset: number, length: number }, options: AbortOptions = {}): AsyncGenerator<Uint8Array> {
    if (range.offset === 0 && !(await this.local.cache.has(cid))) {
      const size = await this.sizeOf(cid, options)
      if (range.length >= size) {
        // A whole value on a miss: sent as it is verified, cached once complete (one transfer
        // shared with concurrent requests), so the first byte goes out at once. One larger than
        // the cache streams uncached; either way the read counts as a miss.
        yield * this.local.cat(cid, { fill: true, signal: options.signal })
        return
      }
    }
    const value = await this.whole(cid, options)
    if (value === undefined) {
      yield * this.local.cat(cid, { offset: range.offset, length: range.length, signal: options.signal })
      return
    }
    const end = Math.min(value.length, range.offset + range.length)
    for (let at = range.offset; at < end; at += SERVE_PIECE) {
      throwIfAborted(options.signal)
      yield value.subarray(at, Math.min(end, at + SERVE_PIECE))
    }
  }

  async encoded (cid: CID, range: ByteRange, options: AbortOptions = {}): Promise<EncodedRange> {
    const value = await this.whole(cid, options)
    if (value !== undefined) {
      // Cached now (or just too contested to stay cached): the cache keeps its outboard.
      const ob = await this.local.cache.outboard(cid).catch(() => buildOutboard(value).outboard)
      return {
        size: value.length,
        length: encodedRangeLength(value.length, range),
        stream: encodeRange(value, ob, range, DEFAULT_GROUP_LOG, { signal: options.signal })
      }
    }
    const size = await this.sizeOf(cid, options)
    const ob = await this.largeOutboard(cid, size, options)
    return { size, length: encodedRangeLength(size, range), stream: this.encodeLarge(cid, size, ob, range, options) }
  }

  async put (source: AsyncIterable<Uint8Array>, options: BackendPutOptions = {}): Promise<CID> {
    return await this.local.put(source, { expected: options.expected, signal: options.signal, onProgress: options.onProgress })
  }

  async delete (cid: CID, options: AbortOptions = {}): Promise<boolean> {
    const key = cid.toString()
    this.outboards.delete(key)
    this.sizes.delete(key)
    return await this.local.delete(cid, options)
  }

  list (options: AbortOptions = {}): AsyncIterable<{ cid: CID, size: number }> {
    return this.local.list(options)
  }

  async missing (cids: CID[], options: AbortOptions = {}): Promise<CID[]> {
    return await this.local.missing(cids, options)
  }

  async status (): Promise<Record<string, unknown>> {
    return await (this.options.status ?? (async () => minimalLocalStatus(this.local)))()
  }

  // ---- internals ---------------------------------------------------------------------------

  /**
   * The whole value when it is cached or fits the cache (fetched once and cached on a miss);
   * undefined when it is larger than the cache (stream it instead).
   * `has` first, so that a miss is counted once (by local.get), not twice.
   */
  private async whole (cid: CID, options: AbortOptions): Promise<Uint8Array | undefined> {
    const cache = this.local.cache
    if (await cache.has(cid)) {
      const bytes = this.local.getCached(cid) // a hit (counted, and recorded as a transfer, by the Local)
      if (bytes !== undefined) return bytes
    }
    const size = await this.sizeOf(cid, options)
    if (size > cache.maxBytes) return undefined
    return await this.local.get(cid, { signal: options.signal })
  }

  private async sizeOf (cid: CID, options: AbortOptions): Promise<number> {
    return this.sizes.get(cid.toString()) ?? (await this.stat(cid, options)).size
  }

  /** First pass: the outboard of a value too large to cache, from the verified value streamed through the tree hasher. */
  private async largeOutboard (cid: CID, size: number, options: AbortOptions): Promise<Uint8Array> {
    const key = cid.toString()
    const known = this.outboards.get(key)
    if (known !== undefined) return known
    let pending = this.computing.get(key)
    if (pending === undefined) {
      // Not tied to one caller's signal: a shared pass must not fail the others when one leaves.
      pending = (async () => {
        const hasher = new TreeHasher({ outboard: true })
        for await (const piece of this.local.cat(cid)) hasher.update(piece)
        const r = hasher.finalize()
        // local.cat verified every byte; this only guards against a wrong size or a bug here.
        if (r.size !== size || !equalBytes(r.root, cid.multihash.digest)) throw new VerificationError(`the outboard built for ${key} does not match it`)
        const ob = r.outboard as Uint8Array
        this.outboards.set(key, ob)
        return ob
      })()
      pending.catch(() => {}).finally(() => { this.computing.delete(key) })
      this.computing.set(key, pending)
    }
    return await raceSignal(pending, options.signal)
  }

  /** Second pass: the encoding of `range`, the selected groups' data read sequentially from Global. */
  private async * encodeLarge (cid: CID, size: number, ob: Uint8Array, range: ByteRange, options: AbortOptions): AsyncGenerator<Uint8Array> {
    const plan = planRange(size, range, DEFAULT_GROUP_LOG)
    const start = plan.firstGroup * plan.groupLen
    const end = Math.min(size, (plan.lastGroup + 1) * plan.groupLen)
    const reader = new SequentialReader(size, start, this.local.cat(cid, { offset: start, length: end - start, signal: options.signal }))
    try {
      yield * encodeRange(reader, ob, range, DEFAULT_GROUP_LOG, { signal: options.signal })
    } finally {
      await reader.close()
    }
  }
}

/**
 * A {@link BlobReader} over a stream of a value's bytes from `start`: reads must come in order
 * (as the encoder makes them). Every read returns a fresh array, so read-ahead is safe.
 */
class SequentialReader implements BlobReader {
  private readonly it: AsyncIterator<Uint8Array>
  private leftover: Uint8Array = new Uint8Array(0)
  private chain: Promise<unknown> = Promise.resolve()

  constructor (readonly size: number, private position: number, source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]()
  }

  async read (offset: number, length: number): Promise<Uint8Array> {
    // Read-ahead may ask for the next piece before this one settles: serialise.
    const result = this.chain.then(async () => await this.take(offset, length))
    this.chain = result.catch(() => {})
    return await result
  }

  private async take (offset: number, length: number): Promise<Uint8Array> {
    if (offset !== this.position) throw new StorageError(`out-of-order read at ${offset}, expected ${this.position}`)
    const out = new Uint8Array(length)
    let filled = 0
    while (filled < length) {
      if (this.leftover.length === 0) {
        const r = await this.it.next()
        if (r.done === true) throw new StorageError(`short read: the stream from Global ended ${length - filled} bytes early at ${offset + filled}`)
        this.leftover = r.value
        continue
      }
      const n = Math.min(length - filled, this.leftover.length)
      out.set(this.leftover.subarray(0, n), filled)
      this.leftover = this.leftover.subarray(n)
      filled += n
    }
    this.position += length
    return out
  }

  async close (): Promise<void> {
    await this.it.return?.()
  }
}

/** A Map with a budget (weights by `weigh`), dropping the least recently used entries above it. */
class BoundedMap<V> {
  private readonly map = new Map<string, V>()
  private total = 0
  constructor (private readonly budget: number, private readonly weigh: (v: V) => number) {}

  get (key: string): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) { this.map.delete(key); this.map.set(key, v) }
    return v
  }

  set (key: string, value: V): void {
    this.delete(key)
    const w = this.weigh(value)
    if (w > this.budget) return
    this.map.set(key, value)
    this.total += w
    for (const [k, v] of this.map) {
      if (this.total <= this.budget) break
      this.map.delete(k)
      this.total -= this.weigh(v)
    }
  }

  delete (key: string): void {
    const v = this.map.get(key)
    if (v === undefined) return
    this.map.delete(key)
    this.total -= this.weigh(v)
  }
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** `promise`, or an AbortError as soon as `signal` aborts (the promise itself goes on). */
async function raceSignal<T> (promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return await promise
  return await raceAbort(promise, signal)
}
