/**
 * The Local peer: a bounded in-memory LRU cache in front of one Global.
 *
 * - get: cache, else a verified fetch from Global, cached, returned.
 * - put: hashed here, sent to Global (nothing is sent when Global already has it), cached, and
 *   acknowledged only once Global has verified and stored it.
 * - delete: Global deletes and makes every connected Local evict before answering.
 * - coherence: Global sends EVICT to every connected Local; a Local that was disconnected
 *   reconciles its whole cache with Global (a batched STAT) each time it reconnects, and a
 *   fetch that raced with an eviction of the same value is not cached.
 * - connection: if Global goes away the Local redials with exponential backoff (100 ms to 5 s);
 *   calls made meanwhile wait up to `connectTimeout`, then fail with GlobalUnreachableError.
 *   Every operation is idempotent (keys are content hashes), so a call whose channel broke
 *   before it got an answer is retried once on the next connection.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { cidFromDigest, parseCID, type CIDLike } from '../core/cid.js'
import { hash } from '../core/blake3/index.js'
import { AbortError, ClosedError, DstoreError, GlobalUnreachableError, NotFoundError, PermissionDeniedError, ProtocolError, TooLargeError } from '../core/errors.js'
import { createMemoryStore, type MemoryBlobStore } from '../core/store/memory.js'
import { iterateSource } from '../core/store/util.js'
import { abortError, asAbortError, raceAbort, throwIfAborted } from '../core/abort.js'
import type { AbortOptions, ProgressEvent } from '../core/store/interface.js'
import { INLINE_MAX, KIND, RPC_PROTOCOL } from '../protocol/constants.js'
import { MessageReader, decodeEvict, encodeEvictResponse } from '../protocol/messages.js'
import { RpcChannel } from '../protocol/rpc.js'
import { checkRangeArgs, deleteBlob, getRange, listBlobs, putBytes, putHashed, statMany, type GetRangeOptions, type RequesterContext } from '../protocol/requester.js'
import { loadOrCreateIdentity } from './identity.js'
import { createNode, type DstoreNode, type Encryption } from './node.js'

/** Bytes accepted by {@link LocalPeer.put}: a Node `Readable` is an `AsyncIterable<Buffer>`. */
export type PutSource = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>

export interface LocalOptions {
  /** Global's multiaddr(s), each with `/p2p/<peerId>`. */
  global: string | Multiaddr | Array<string | Multiaddr>
  /** Cache budget in bytes; default 256 MiB. */
  cacheSize?: number
  /** Folder for a persistent identity (`local.key`); without it the identity is new each start. */
  repo?: string
  /** Encrypters in order of preference; default TLS 1.3, then noise. */
  encryption?: Encryption[]
  /** How long a call waits for a connection to Global; default 10 s. */
  connectTimeout?: number
  /** How long a request or transfer may go without progress; default 30 s. */
  requestTimeout?: number
}

/** Options of every Local call. */
export interface CallOptions extends AbortOptions {
  /** Progress of long transfers: bytes done, and the total when known. */
  onProgress?: (event: ProgressEvent) => void
}

export interface CatOptions extends CallOptions {
  /** First byte; default 0. */
  offset?: number
  /** Number of bytes; default to the end. */
  length?: number
}

export interface LocalStats {
  /** Gets answered from the cache. */
  hits: number
  /** Gets that went to Global. */
  misses: number
  /** Values dropped from the cache to make room (not deletes). */
  evictions: number
  /** Values removed because Global deleted them (EVICT notices and reconciliation). */
  invalidations: number
  /** Bytes received from and sent to Global. */
  bytesIn: number
  bytesOut: number
  /** Bytes and values in the cache, and its budget. */
  cacheBytes: number
  cacheEntries: number
  cacheSize: number
  /** Whether the rpc channel to Global is open now. */
  connected: boolean
}

const DEFAULT_CACHE = 256 * 1024 * 1024
const DEFAULT_CONNECT_TIMEOUT = 10_000
const BACKOFF_MIN = 100
const BACKOFF_MAX = 5_000

/**
 * Watches a key while a value for it is fetched or put: `stale` once Global may have deleted
 * it meanwhile (an EVICT for it arrived, or the rpc channel closed, so an EVICT may have been
 * missed). A stale result is not cached.
 */
interface Watch { stale: boolean }

interface Inflight {
  promise: Promise<Uint8Array>
  settled: boolean
  /** The cache took the fetched array itself: callers must get copies. */
  cached: boolean
  /** Callers waiting for the result; the transfer is aborted when this drops to 0. */
  waiters: number
  controller: AbortController
  listeners: Set<(event: ProgressEvent) => void>
}

/** A running Local peer. Create it with {@link createLocal}. */
export class LocalPeer {
  readonly cache: MemoryBlobStore
  private readonly globalAddrs: Multiaddr[]
  private ctx: RequesterContext | undefined
  private readonly waiters = new Set<() => void>()
  private readonly inflight = new Map<string, Inflight>()
  private readonly watches = new Map<string, Set<Watch>>()
  /** Bumped by every invalidation and channel close (for puts whose key is known only at the end). */
  private staleEpoch = 0
  private readonly counters = { invalidations: 0, bytesIn: 0, bytesOut: 0 }
  private stopped = false
  private lastError: Error | undefined
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined

  private constructor (readonly node: DstoreNode, private readonly options: LocalOptions) {
    const list = Array.isArray(options.global) ? options.global : [options.global]
    if (list.length === 0) throw new TypeError('createLocal needs the multiaddr of a Global')
    this.globalAddrs = list.map(a => typeof a === 'string' ? multiaddr(a) : a)
    this.cache = createMemoryStore({ maxBytes: options.cacheSize ?? DEFAULT_CACHE })
  }

  /** @internal use {@link createLocal}. */
  static async create (options: LocalOptions): Promise<LocalPeer> {
    const privateKey = options.repo != null ? await loadOrCreateIdentity(options.repo, 'local.key') : undefined
    const node = await createNode({ privateKey, listen: [], encryption: options.encryption })
    const peer = new LocalPeer(node, options)
    peer.loop = peer.connectLoop()
    return peer
  }

  /** This peer's PeerId, as a string. */
  get peerId (): string { return this.node.peerId.toString() }

  /** Whether the channel to Global is open now. */
  get connected (): boolean { return this.ctx?.channel.open === true }

  /**
   * Resolves once connected to Global and the cache is reconciled with it (values Global deleted
   * meanwhile are dropped), or rejects with GlobalUnreachableError after `connectTimeout`.
   */
  async ready (options: AbortOptions = {}): Promise<void> {
    await this.context(options.signal)
  }

  /**
   * The value of `cid`: from the cache, or fetched from Global, verified, and cached.
   * @throws {NotFoundError} when Global does not have it.
   */
  async get (cid: CIDLike, options: CallOptions = {}): Promise<Uint8Array> {
    const key = parseCID(cid)
    const cached = this.cache.getBytes(key)
    if (cached !== undefined) return cached.slice()
    return await this.fetch(key, options)
  }

  /** Streams verified bytes of a value, or of a range of it. Ranges are not cached. */
  async * cat (cid: CIDLike, options: CatOptions = {}): AsyncGenerator<Uint8Array> {
    const key = parseCID(cid)
    const offset = options.offset ?? 0
    checkRangeArgs({ offset, length: options.length })
    const cachedSize = await this.cachedSize(key)
    if (cachedSize !== undefined) {
      // Same range rules as a fetch from Global (docs/PROTOCOL.md, "GET of a range"): a length
      // past the end is clipped, not refused as the memory store's get would.
      const length = options.length === undefined || offset > cachedSize ? options.length : Math.min(options.length, cachedSize - offset)
      yield * this.cache.get(key, { offset, length, signal: options.signal })
      return
    }
    let done = 0
    yield * this.withGlobal(options.signal, () => done === 0, (ctx) => {
      const gen = getRange(ctx, key.multihash.digest, { offset, length: options.length }, options)
      return (async function * () { for await (const part of gen) { done += part.length; yield part } })()
    })
  }

  /**
   * Stores a value on Global and returns its CID once Global has verified and stored it.
   * Accepts bytes, any (async) iterable of bytes, or a Node Readable.
   */
  async put (source: PutSource, options: CallOptions = {}): Promise<CID> {
    if (source instanceof Uint8Array) return await this.putBytes(source, options)
    // Read ahead up to the inline limit: a short stream is put like bytes (dedupe, one round trip).
    // Each chunk checked to be bytes (a string would otherwise be stored as zeros), aborts honoured.
    const it = iterateSource(source, options.signal)
    const head: Uint8Array[] = []
    let headBytes = 0
    let ended = false
    while (headBytes <= INLINE_MAX) {
      const { done, value } = await it.next()
      if (done === true) { ended = true; break }
      head.push(value.slice())
      headBytes += value.length
    }
    if (ended) return await this.putBytes(concat(head, headBytes), options)
    const keep: Uint8Array[] = [...head]
    let kept = headBytes
    const cacheLimit = Math.floor((this.options.cacheSize ?? DEFAULT_CACHE) / 4)
    let keeping = kept <= cacheLimit
    let sourceError: { err: unknown } | undefined
    async function * all (): AsyncGenerator<Uint8Array> {
      for (const part of head) yield part
      for (;;) {
        let step: IteratorResult<Uint8Array>
        try {
          step = await it.next()
        } catch (err) {
          sourceError = { err }
          throw err
        }
        const { done, value } = step
        if (done === true) return
        if (keeping) {
          kept += value.length
          if (kept > cacheLimit) { keeping = false; keep.length = 0 } else keep.push(value.slice())
        }
        yield value
      }
    }
    // A stream cannot be replayed, so it is sent once: no retry on a broken channel.
    const ctx = await this.context(options.signal)
    const epoch = this.staleEpoch
    let digest: Uint8Array
    try {
      digest = await putHashed(ctx, all(), options)
    } catch (err) {
      // The source's own errors pass unchanged; a connection failure says so (and is not retried).
      if (sourceError?.err === err) throw err
      if (options.signal?.aborted === true) throw asAbortError(err, options.signal)
      if (this.stopped || !(await isChannelFailure(err, ctx))) throw err
      throw connectionLost(err, 'during a streamed put (a stream cannot be replayed: put it again)')
    }
    const cid = cidFromDigest(digest)
    // Not cached if an eviction (or a channel failure) happened meanwhile: it may have been this value's.
    if (keeping && epoch === this.staleEpoch && ctx.channel.open) this.cacheQuietly(cid, concat(keep, kept), true)
    return cid
  }

  /** True when the value is cached here or stored on Global. */
  async has (cid: CIDLike, options: AbortOptions = {}): Promise<boolean> {
    const key = parseCID(cid)
    if (await this.cache.has(key)) return true
    const [size] = await this.withGlobalCall(options.signal, async ctx => await statMany(ctx, [key.multihash.digest], options))
    return size !== undefined
  }

  /** Which of `cids` Global does not have (a batched STAT, like FindMissingBlobs). */
  async missing (cids: CIDLike[], options: AbortOptions = {}): Promise<CID[]> {
    const keys = cids.map(c => parseCID(c))
    const sizes = await this.withGlobalCall(options.signal, async ctx => await statMany(ctx, keys.map(k => k.multihash.digest), options))
    return keys.filter((_, i) => sizes[i] === undefined)
  }

  /** Size of a value, and whether it is cached here. @throws {NotFoundError} */
  async stat (cid: CIDLike, options: AbortOptions = {}): Promise<{ cid: CID, size: number, cached: boolean }> {
    const key = parseCID(cid)
    if (await this.cache.has(key)) {
      const { size } = await this.cache.stat(key)
      return { cid: key, size, cached: true }
    }
    const [size] = await this.withGlobalCall(options.signal, async ctx => await statMany(ctx, [key.multihash.digest], options))
    if (size === undefined) throw new NotFoundError(`${key.toString()} is not stored on Global`)
    return { cid: key, size, cached: false }
  }

  /**
   * Deletes a value from Global. Resolves once Global has deleted it and every connected Local
   * (this one included) has evicted its copy. Resolves false when Global did not have it.
   */
  async delete (cid: CIDLike, options: AbortOptions = {}): Promise<boolean> {
    const key = parseCID(cid)
    await this.invalidate(key)
    const existed = await this.withGlobalCall(options.signal, async ctx => await deleteBlob(ctx, key.multihash.digest, options))
    await this.invalidate(key)
    return existed
  }

  /** Every value pinned on Global, with its size. */
  async * list (options: AbortOptions = {}): AsyncGenerator<{ cid: CID, size: number }> {
    const ctx = await this.context(options.signal)
    for await (const e of listBlobs(ctx, options)) yield { cid: cidFromDigest(e.digest), size: e.size }
  }

  stats (): LocalStats {
    const c = this.cache.stats()
    return {
      hits: c.hits,
      misses: c.misses,
      evictions: c.evictions,
      invalidations: this.counters.invalidations,
      bytesIn: this.counters.bytesIn,
      bytesOut: this.counters.bytesOut,
      cacheBytes: c.bytes,
      cacheEntries: c.entries,
      cacheSize: c.maxBytes,
      connected: this.connected
    }
  }

  /** Disconnects and releases everything. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.wake?.()
    for (const w of this.waiters) w()
    await this.ctx?.channel.close().catch(() => {})
    await this.node.stop()
    await this.loop
    await this.cache.close()
  }

  // ---- internals ---------------------------------------------------------------------------

  private async putBytes (data: Uint8Array, options: CallOptions): Promise<CID> {
    const digest = hash(data)
    const cid = cidFromDigest(digest)
    const watch = this.watch(cid)
    try {
      await this.withGlobalCall(options.signal, async ctx => {
        watch.stale = !ctx.channel.open
        const [size] = await statMany(ctx, [digest], options)
        if (size === undefined) await putBytes(ctx, digest, data, options)
        else options.onProgress?.({ type: 'blob:put:deduplicated', bytes: data.length, total: data.length })
      })
      // Not cached when a delete of it raced with the put (or may have: the channel broke).
      if (!watch.stale) this.cacheQuietly(cid, data, false)
    } finally {
      this.unwatch(cid, watch)
    }
    return cid
  }

  /**
   * Fetches `key` from Global. Concurrent gets of one value share one transfer, which runs on
   * its own AbortController: a caller's signal only abandons that caller's wait, and the
   * transfer is aborted once no caller waits for it any more. (Tying the shared transfer to the
   * first caller's signal failed every other caller when the first one aborted, and ignored a
   * later caller's own signal.)
   */
  private async fetch (key: CID, options: CallOptions): Promise<Uint8Array> {
    throwIfAborted(options.signal)
    const id = key.toString()
    let entry = this.inflight.get(id)
    const joined = entry != null
    if (entry == null) entry = this.startFetch(key)
    const shared = entry
    shared.waiters++
    const onProgress = options.onProgress
    if (onProgress != null) shared.listeners.add(onProgress)
    try {
      const value = await raceAbort(shared.promise, options.signal)
      // The cache may own `value`, and the first caller may modify the array it gets: everyone
      // else gets a copy.
      return joined || shared.cached ? value.slice() : value
    } finally {
      shared.waiters--
      if (onProgress != null) shared.listeners.delete(onProgress)
      if (shared.waiters === 0 && !shared.settled) {
        shared.controller.abort()
        // A later get must start afresh, not join an aborted transfer.
        if (this.inflight.get(id) === shared) this.inflight.delete(id)
      }
    }
  }

  private startFetch (key: CID): Inflight {
    const id = key.toString()
    const controller = new AbortController()
    const watch = this.watch(key)
    const entry: Inflight = { settled: false, cached: false, waiters: 0, controller, listeners: new Set(), promise: undefined as unknown as Promise<Uint8Array> }
    let target: Uint8Array | undefined
    const options: GetRangeOptions = {
      signal: controller.signal,
      onProgress: (event) => { for (const listener of entry.listeners) listener(event) },
      // Decoded straight into the value's buffer when the announced size could be cached (a
      // lying Global cannot make us allocate more than the cache could hold anyway).
      target: (size) => {
        target = size > 0 && size <= this.cache.maxBytes ? new Uint8Array(size) : undefined
        return target
      }
    }
    entry.promise = (async () => {
      try {
        const parts: Uint8Array[] = []
        let n = 0
        await this.withGlobalCall(options.signal, async ctx => {
          parts.length = 0
          n = 0
          // Nothing is asked on this channel yet: only what happens from now on makes it stale.
          watch.stale = !ctx.channel.open
          for await (const part of getRange(ctx, key.multihash.digest, { offset: 0 }, options)) { parts.push(part); n += part.length }
        })
        // Verified pieces that tile the target in order are the value itself: no copy.
        const value = target !== undefined && n === target.length && tiles(parts, target) ? target : concat(parts, n)
        // An eviction that arrived while we fetched means Global deleted it, and a channel that
        // closed meanwhile may have lost such an eviction: don't cache a possibly stale copy.
        if (!watch.stale && !controller.signal.aborted) entry.cached = this.cacheQuietly(key, value, true)
        return value
      } finally {
        this.unwatch(key, watch)
        entry.settled = true
        if (this.inflight.get(id) === entry) this.inflight.delete(id)
      }
    })()
    entry.promise.catch(() => {}) // abandoned transfers reject with nobody listening
    this.inflight.set(id, entry)
    return entry
  }

  /** Size of the cached copy of `key`, or undefined when it is not cached. */
  private async cachedSize (key: CID): Promise<number | undefined> {
    try {
      return (await this.cache.stat(key)).size
    } catch (err) {
      if (err instanceof NotFoundError) return undefined
      throw err
    }
  }

  /**
   * Caches a value already verified against `cid` (by the decoder, or hashed here for a put),
   * without hashing it again. With `owned`, the cache may keep `value` itself; otherwise (a
   * caller's array) it keeps a copy. A small view into a larger buffer is copied too, so the
   * cache never pins memory its budget does not count. Returns whether the value is cached.
   */
  private cacheQuietly (cid: CID, value: Uint8Array, owned: boolean): boolean {
    const compact = value.byteOffset === 0 && value.buffer.byteLength === value.length
    try {
      this.cache.adoptVerified(cid, owned && compact ? value : value.slice())
      return true
    } catch (err) {
      if (err instanceof TooLargeError) return false
      throw err
    }
  }

  private watch (key: CID): Watch {
    const id = key.toString()
    const w: Watch = { stale: false }
    let set = this.watches.get(id)
    if (set == null) { set = new Set(); this.watches.set(id, set) }
    set.add(w)
    return w
  }

  private unwatch (key: CID, w: Watch): void {
    const id = key.toString()
    const set = this.watches.get(id)
    set?.delete(w)
    if (set?.size === 0) this.watches.delete(id)
  }

  /** Marks any fetch or put of `key` in progress as stale and drops the cached copy. */
  private async invalidate (key: CID): Promise<void> {
    this.staleEpoch++
    for (const w of this.watches.get(key.toString()) ?? []) w.stale = true
    if (await this.cache.delete(key)) this.counters.invalidations++
  }

  /** Answers Global's EVICT requests; nothing else is expected from Global. */
  private readonly handleRequest = async (msg: MessageReader): Promise<Uint8Array> => {
    if (msg.kind !== KIND.EVICT) throw new ProtocolError(`a Local does not answer requests of kind 0x${msg.kind.toString(16)}`)
    for (const digest of decodeEvict(msg)) await this.invalidate(cidFromDigest(digest))
    return encodeEvictResponse(msg.id)
  }

  private async connectLoop (): Promise<void> {
    let delay = BACKOFF_MIN
    while (!this.stopped) {
      try {
        const connection = await this.node.dial(this.globalAddrs, { signal: AbortSignal.timeout(this.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT) })
        const stream = await connection.newStream(RPC_PROTOCOL)
        let closed!: () => void
        const whenClosed = new Promise<void>(resolve => { closed = resolve })
        const channel = new RpcChannel(stream, this.handleRequest, {
          requestTimeout: this.options.requestTimeout,
          onClose: (err) => {
            this.lastError = err
            // EVICTs may have been lost with the channel: nothing in progress may be cached.
            this.staleEpoch++
            for (const set of this.watches.values()) for (const w of set) w.stale = true
            closed()
          }
        })
        const ctx: RequesterContext = {
          channel,
          connection,
          requestTimeout: this.options.requestTimeout,
          onBytes: (dir, n) => { if (dir === 'in') this.counters.bytesIn += n; else this.counters.bytesOut += n }
        }
        this.lastError = undefined
        try {
          await this.reconcile(ctx)
        } catch (err) {
          // Cached values Global may have deleted would be served for as long as this channel
          // lasts: drop it, and reconcile again on the next connection (with backoff).
          this.lastError = err as Error
          channel.abort(err instanceof Error ? err : new Error(String(err)))
          await whenClosed
          throw err
        }
        delay = BACKOFF_MIN
        // Calls use the channel only once the cache is reconciled: `ready()` resolving means no
        // value Global deleted while we were away is still cached.
        this.ctx = ctx
        for (const w of this.waiters) w()
        await whenClosed
      } catch (err) {
        this.lastError = err as Error
      }
      this.ctx = undefined
      if (this.stopped) break
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, delay * (0.75 + Math.random() / 2))
        this.wake = () => { clearTimeout(timer); resolve() }
      })
      delay = Math.min(delay * 2, BACKOFF_MAX)
    }
  }

  /** Drops every cached value Global no longer has (after a reconnect: deletes we missed). */
  private async reconcile (ctx: RequesterContext): Promise<void> {
    const keys: CID[] = []
    for await (const stat of this.cache.list()) keys.push(stat.cid)
    if (keys.length === 0) return
    let sizes: Array<number | undefined>
    try {
      sizes = await statMany(ctx, keys.map(k => k.multihash.digest))
    } catch (err) {
      // Global no longer lets this peer read: nothing cached can be checked, so nothing is kept.
      // The channel stays, so calls fail with PermissionDeniedError rather than as unreachable.
      if (!(err instanceof PermissionDeniedError)) throw err
      for (const key of keys) await this.invalidate(key)
      return
    }
    for (let i = 0; i < keys.length; i++) if (sizes[i] === undefined) await this.invalidate(keys[i])
  }

  /** The open channel to Global, waiting for the connect loop up to `connectTimeout`. */
  private async context (signal?: AbortSignal): Promise<RequesterContext> {
    if (this.stopped) throw new ClosedError('this Local is stopped')
    if (this.ctx?.channel.open === true) return this.ctx
    const timeout = this.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT
    this.wake?.()
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.waiters.delete(done)
        resolve()
      }
      const onAbort = (): void => { this.waiters.delete(done); clearTimeout(timer); reject(abortError(signal)) }
      const timer = setTimeout(() => {
        this.waiters.delete(done)
        signal?.removeEventListener('abort', onAbort)
        const why = this.lastError != null ? `: ${this.lastError.message}` : ''
        reject(new GlobalUnreachableError(`Global at ${this.globalAddrs.map(a => a.toString()).join(', ')} is unreachable after ${timeout} ms${why}`))
      }, timeout)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(done)
    })
    // stop() may have run while we waited.
    if (this.isStopped()) throw new ClosedError('this Local is stopped')
    return await this.context(signal)
  }

  private isStopped (): boolean { return this.stopped }

  /** Runs `fn` on the channel, retrying once on a new connection if the channel broke under it. */
  private async withGlobalCall<T> (signal: AbortSignal | undefined, fn: (ctx: RequesterContext) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const ctx = await this.context(signal)
      try {
        return await fn(ctx)
      } catch (err) {
        if (signal?.aborted === true) throw asAbortError(err, signal)
        if (this.stopped || !(await isChannelFailure(err, ctx))) throw err
        if (attempt > 0) throw connectionLost(err, 'and again after a retry')
      }
    }
  }

  /** Streaming variant: retries only while `canRetry()` (nothing has been yielded yet). */
  private async * withGlobal<T> (signal: AbortSignal | undefined, canRetry: () => boolean, fn: (ctx: RequesterContext) => AsyncGenerator<T>): AsyncGenerator<T> {
    for (let attempt = 0; ; attempt++) {
      const ctx = await this.context(signal)
      try {
        yield * fn(ctx)
        return
      } catch (err) {
        if (signal?.aborted === true) throw asAbortError(err, signal)
        if (this.stopped || !(await isChannelFailure(err, ctx))) throw err
        // Part of the value was delivered (or the retry broke too): it cannot be resumed here.
        // Say the connection was lost, not that the data was bad (a truncated verified stream
        // is a VerificationError to the decoder; nothing unverified was delivered either way).
        if (attempt > 0 || !canRetry()) throw connectionLost(err, 'during a streamed read')
      }
    }
  }
}

/**
 * A failure of the connection itself (not an answer from Global), after which a retry may work:
 * a ClosedError (the rpc channel closed), a GlobalUnreachableError (the requester found a blob
 * stream cut under a transfer: reset by Global or the connection, or ended early while the
 * connection went down; it carries the close reason), or an error that is not dstore's
 * (libp2p's stream resets and EOFs: answers from Global are always typed). A truncated stream
 * or a missing answer on a healthy connection is Global's fault, and is not retried.
 */
async function isChannelFailure (err: unknown, _ctx: RequesterContext): Promise<boolean> {
  if (err instanceof DstoreError) return err instanceof ClosedError || err instanceof GlobalUnreachableError
  return true
}

/** The error a call gives up with when the connection to Global failed under it. */
function connectionLost (err: unknown, when: string): DstoreError {
  if (err instanceof GlobalUnreachableError) return err
  const why = err instanceof Error ? `${err.name}: ${err.message}` : err instanceof Event ? `a '${err.type}' event` : String(err)
  return new GlobalUnreachableError(`the connection to Global failed ${when} (${why})`, { cause: err })
}

/** Whether `parts` are consecutive views of `buffer` from its first byte. */
function tiles (parts: Uint8Array[], buffer: Uint8Array): boolean {
  let at = buffer.byteOffset
  for (const p of parts) {
    if (p.buffer !== buffer.buffer || p.byteOffset !== at) return false
    at += p.length
  }
  return at === buffer.byteOffset + buffer.length
}

function concat (parts: Uint8Array[], n: number): Uint8Array {
  if (parts.length === 1 && parts[0].length === n) return parts[0]
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

/** Starts a Local peer connected (in the background) to a Global. */
export async function createLocal (options: LocalOptions): Promise<LocalPeer> {
  if (options?.global == null) throw new TypeError('createLocal needs the multiaddr of a Global ({ global })')
  return await LocalPeer.create(options)
}
