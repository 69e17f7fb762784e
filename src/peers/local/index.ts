/**
 * The Local peer: a bounded in-memory LRU cache in front of one Global, or of several serving
 * one store (globals.ts: rendezvous hashing on the CID, failover).
 *
 * - get: cache, else a verified fetch from Global (single-flight: fetch.ts), cached, returned.
 * - put: hashed here, sent to Global only when Global lacks it (put.ts), cached (up to a quarter
 *   of the cache budget), and acknowledged only once Global has verified and stored it.
 * - delete: Global deletes and makes every connected Local evict before answering.
 * - coherence (coherence.ts): EVICT notices, reconciliation on every reconnect, and no caching
 *   of a value whose transfer raced with a delete of it.
 * - connection (connection.ts): redial with backoff; calls wait up to `connectTimeout`.
 * - retry (retry.ts): a call whose channel broke before it got an answer is retried once;
 *   a call in flight when `stop()` runs ends with ClosedError.
 * - recheck (recheck.ts): every `recheckInterval` the cached CIDs are re-checked with a Global.
 * - options.ts: the options, and the argument checks (ArgumentError).
 * - the swarm (swarm on): downloads in flight are registered (partials.ts) and, with `listen`
 *   addresses, verified ranges of what this Local holds are served to the peers Global vouches
 *   for, and its holdings announced to Global (serving.ts).
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { cidFromDigest, parseCID, type CIDLike } from '../../core/cid.js'
import { ArgumentError, ClosedError, NotFoundError, TooLargeError } from '../../core/errors.js'
import { createMemoryStore, type MemoryBlobStore } from '../../core/store/memory.js'
import { markReadOnly } from '../../core/read-only.js'
import type { AbortOptions, ByteSource, ProgressEvent } from '../../core/store/interface.js'
import { checkRangeArgs, deleteBlob, getRange, listBlobs, statMany } from '../../protocol/requester.js'
import { loadOrCreateIdentity } from '../identity.js'
import { createNode, type DstoreNode } from '../node.js'

/** Time a peer dialling this Local has to finish its handshake (TLS or noise, then yamux). */
const SWARM_HANDSHAKE_TIMEOUT_MS = 10_000
import { Traffic, type TrafficSnapshot, type TransferSource } from '../traffic.js'
import { Coherence } from './coherence.js'
import { checkInto, fetchInto, intoTooLarge } from './fetch-into.js'
import { GlobalSet, groupGlobals } from './globals.js'
import { claimInto } from './into-claims.js'
import { CacheRecheck, DEFAULT_RECHECK_INTERVAL } from './recheck.js'
import { SingleFlight } from './fetch.js'
import {
  DEFAULT_CACHE, DEFAULT_CONNECT_TIMEOUT, checkCallOptions, checkLocalOptions,
  type CallOptions, type CatOptions, type LocalGetOptions, type LocalOptions, type LocalPutOptions, type LocalStats
} from './options.js'
import { PartialRegistry } from './partials.js'
import { Putter } from './put.js'
import { callGlobal, stoppedError, withGlobal } from './retry.js'
import { Serving } from './serving.js'
import { SwarmCounters } from './swarm-stats.js'

export type { CallOptions, CatOptions, LocalGetOptions, LocalOptions, LocalPutOptions, LocalStats }

/**
 * Bytes accepted by {@link LocalPeer.put}: a Node `Readable` is an `AsyncIterable<Buffer>`.
 * @deprecated the same type as the stores' {@link ByteSource}; use that.
 */
export type PutSource = ByteSource

/** A running Local peer. Create it with {@link createLocal}. */
export class LocalPeer {
  readonly cache: MemoryBlobStore
  /** Downloads in flight (the swarm downloader registers them), served to peers while they download. */
  readonly partials: PartialRegistry
  /** Whether the swarm is on (the `swarm` option). */
  readonly swarmEnabled: boolean
  /** The swarm downloader's counters (LocalStats.swarm). */
  readonly swarmCounters = new SwarmCounters()
  /** The serving side: swarm on and listening. */
  private readonly serving: Serving | undefined
  private readonly connection: GlobalSet
  private readonly recheck: CacheRecheck
  private readonly coherence: Coherence
  private readonly fetcher: SingleFlight
  private readonly putter: Putter
  private readonly counters = { bytesIn: 0, bytesOut: 0 }
  /** Value bytes by source, verification failures, recent transfers (status, metrics). */
  private readonly moved = new Traffic()
  /** When this Local started (ms since the epoch). */
  readonly startedAt = Date.now()
  /** Aborted by stop(), after the connection is marked stopped (so what it ends is a ClosedError). */
  private readonly stopping = new AbortController()

  private constructor (readonly node: DstoreNode, options: LocalOptions, private readonly addrs: Multiaddr[]) {
    const cacheSize = options.cacheSize ?? DEFAULT_CACHE
    this.cache = createMemoryStore({ maxBytes: cacheSize })
    this.swarmEnabled = options.swarm !== false
    this.partials = new PartialRegistry({ onRemove: (cid) => { this.serving?.dropped(cid) } })
    this.coherence = new Coherence(this.cache, this.partials)
    this.connection = new GlobalSet(node, groupGlobals(addrs), {
      connectTimeout: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
      requestTimeout: options.requestTimeout,
      handleRequest: this.coherence.handleRequest,
      onOpen: async (ctx) => { await this.coherence.reconcile(ctx); this.serving?.opened(ctx) },
      onClose: () => { this.coherence.channelClosed() },
      onBytes: (dir, n) => {
        if (dir === 'in') { this.counters.bytesIn += n; this.moved.received('global', n) } else this.counters.bytesOut += n
      }
    })
    this.fetcher = new SingleFlight(this.connection, this.cache, this.coherence, !this.swarmEnabled ? undefined : {
      node, global: this.connection, counters: this.swarmCounters, partials: this.partials, requestTimeout: options.requestTimeout,
      onPeerBytes: (n) => { this.moved.received('peer', n) }
    })
    this.putter = new Putter(this.connection, this.coherence, cacheSize, this.stopping.signal)
    this.recheck = new CacheRecheck(this.connection, this.cache, this.coherence, options.recheckInterval ?? DEFAULT_RECHECK_INTERVAL, this.stopping.signal)
    if (this.swarmEnabled && (options.listen ?? []).length > 0) {
      const serving = new Serving({
        node, cache: this.cache, partials: this.partials, connection: this.connection, traffic: this.moved,
        requestTimeout: options.requestTimeout, flipServedByte: options.unsafeTestHooks?.flipServedByte
      })
      this.serving = serving
      this.coherence.onCached = (cid, size) => { serving.cached(cid, size) }
      this.cache.onEvict = (cid) => { serving.dropped(cid) }
    }
  }

  /** @internal use {@link createLocal}. */
  static async create (options: LocalOptions): Promise<LocalPeer> {
    const addrs = await checkLocalOptions(options)
    const privateKey = options.repo != null ? await loadOrCreateIdentity(options.repo, 'local.key') : undefined
    // Listening only to serve the swarm: with it off, a dial-only node as before.
    const listen = options.swarm !== false ? options.listen ?? [] : []
    // Peers dialling a serving Local get longer than Global's 3 s to finish their handshake: a
    // flash crowd of Locals handshaking with each other on busy hosts took longer (bench/swarm.ts).
    const node = await createNode({ privateKey, listen, encryption: options.encryption, metricsRegistry: options.metricsRegistry, limits: { handshakeTimeout: SWARM_HANDSHAKE_TIMEOUT_MS } })
    const peer = new LocalPeer(node, options, addrs)
    try {
      await peer.serving?.start()
    } catch (err) {
      await node.stop()
      throw err
    }
    peer.connection.start()
    peer.recheck.start()
    return peer
  }

  /** This peer's PeerId, as a string. */
  get peerId (): string { return this.node.peerId.toString() }

  /** Where peers dial this Local to be served (with `/p2p/`); empty when it serves nobody. */
  get swarmAddrs (): string[] { return this.serving === undefined ? [] : this.node.getMultiaddrs().map(a => a.toString()) }

  /** Whether the channel to Global (to at least one, with several) is open now. */
  get connected (): boolean { return this.connection.connected }

  /** How many Globals this Local is configured with (addresses grouped by `/p2p/` id). */
  get globalCount (): number { return this.connection.connections.length }

  /**
   * Re-checks every cached CID with a Global now, as the `recheckInterval` period does:
   * drops what Global no longer has, or the whole cache when no Global answers.
   */
  async recheckCache (): Promise<void> { await this.recheck.run() }

  /**
   * Resolves once connected to Global (with several: to one of them, the first configured if it
   * is up) and the cache is reconciled with it (values Global deleted meanwhile are dropped), or
   * rejects with GlobalUnreachableError after `connectTimeout`.
   */
  async ready (options: AbortOptions = {}): Promise<void> {
    const { signal } = checkCallOptions(options)
    await this.guard(async () => { await this.connection.context(signal) })
  }

  /**
   * The value of `cid`: from the cache, or fetched from Global, verified, and cached.
   *
   * The returned array is shared, not copied: it is the cache's own array (and the one every
   * concurrent get of the value is handed), so treat it as read-only. Modifying it would change
   * what later gets of the value return, unverified. Copy it with `.slice()` to modify it.
   *
   * With `into`, the value is written into that buffer of the caller's instead, and the view of
   * its first `size` bytes is returned: no fresh buffer, so a caller that reuses one buffer for
   * its large gets saves their page faults (see fetch-into.ts for the contract: `into` is not
   * read or written until the get settles, a value larger than it is refused, a failed get
   * leaves zeros, a value fetched into it is not cached, and two gets in flight may not write
   * the same bytes: into-claims.ts).
   * @throws {NotFoundError} when Global does not have it.
   * @throws {TooLargeError} with `into`, when the value is larger than `into`.
   * @throws {ArgumentError} with `into`, when it is not a Uint8Array of the caller's own, or
   *   overlaps the `into` of a get still in flight.
   */
  async get (cid: CIDLike, options: LocalGetOptions = {}): Promise<Uint8Array> {
    const key = parseCID(cid)
    const opts = checkCallOptions(options)
    const into = opts.into === undefined ? undefined : checkInto(opts.into)
    // Held until the get settles, the copy of a cached value included.
    const release = into === undefined ? undefined : claimInto(into)
    const started = Date.now()
    try {
      return await this.guard(async () => {
        const cached = this.cache.getBytes(key)
        if (cached !== undefined) {
          if (into !== undefined && cached.length > into.length) throw intoTooLarge(cached.length, into)
          this.moved.record(key.toString(), 'get', 'cache', cached.length, started)
          if (into === undefined) return cached // shared with the cache: read-only (see above)
          into.set(cached)
          return into.subarray(0, cached.length)
        }
        try {
          const value = into === undefined ? await this.fetcher.fetch(key, opts) : await fetchInto(this.connection, key, into, opts)
          this.moved.record(key.toString(), 'get', 'global', value.length, started)
          if (into === undefined) markReadOnly(value) // shared by the transfer's callers (and the cache, once cached)
          return value
        } catch (err) {
          this.moved.failedWith(err)
          throw err
        }
      })
    } finally {
      release?.()
    }
  }

  /**
   * The cache's own copy of a value (not a copy: callers must not modify it), or undefined when
   * it is not cached. A hit, counted and recorded as a transfer of the whole value from `cache`,
   * as a get's would be, but never a fetch: for a front end that serves the cached bytes itself
   * (the HTTP daemon) and takes another path on a miss.
   */
  getCached (cid: CIDLike): Uint8Array | undefined {
    const started = Date.now()
    const value = this.cache.getBytes(cid)
    if (value !== undefined) this.moved.record(parseCID(cid).toString(), 'get', 'cache', value.length, started)
    return value
  }

  /**
   * Streams verified bytes of a value, or of a range of it. Not cached, unless `fill` is set:
   * then a whole value that fits the cache is streamed as it arrives and cached once complete.
   * Pieces may be views of the cache's bytes, shared with other callers (as `get`'s value):
   * treat them as read-only, and copy one with `.slice()` to modify it.
   */
  async * cat (cid: CIDLike, options: CatOptions = {}): AsyncGenerator<Uint8Array> {
    const key = parseCID(cid)
    const opts = checkCallOptions(options)
    const offset = opts.offset ?? 0
    checkRangeArgs({ offset, length: opts.length })
    const started = Date.now()
    let source: TransferSource = 'cache'
    let done = 0
    let ok = false
    try {
      const cachedSize = await this.cachedSize(key)
      if (cachedSize !== undefined) {
        // Same range rules as a fetch from Global (docs/PROTOCOL.md, "GET of a range"): a length
        // past the end is clipped, not refused as the memory store's get would.
        const length = opts.length === undefined || offset > cachedSize ? opts.length : Math.min(opts.length, cachedSize - offset)
        for await (const part of this.cache.catShared(key, { offset, length, signal: opts.signal })) { done += part.length; yield part }
        ok = true
        return
      }
      source = 'global'
      if (opts.fill === true && offset === 0 && opts.length === undefined) {
        // A whole value: streamed as it is verified and cached once complete, sharing one
        // transfer with concurrent gets and readers. One larger than the cache is refused
        // before its first byte, and streamed past the cache instead. Counted as a get is: the
        // lookup below is the miss (or, should the value have arrived meanwhile, the hit).
        const arrived = this.cache.getBytes(key)
        if (arrived !== undefined) {
          source = 'cache'
          for await (const part of this.cache.catShared(key, { signal: opts.signal })) { done += part.length; yield part }
          ok = true
          return
        }
        const streamed = await this.streamWhole(key, opts)
        if (streamed !== undefined) {
          for await (const part of streamed) { done += part.length; yield part }
          ok = true
          return
        }
      }
      yield * withGlobal(this.connection, { signal: opts.signal, key: key.multihash.digest, canRetry: () => done === 0, what: 'during a streamed read' }, (ctx) => {
        const gen = getRange(ctx, key.multihash.digest, { offset, length: opts.length }, opts)
        return (async function * () { for await (const part of gen) { done += part.length; yield part } })()
      })
      ok = true
    } catch (err) {
      this.moved.failedWith(err)
      throw this.closedIfStopped(err)
    } finally {
      // Also when the consumer stops early (return()): what it took is what was served.
      this.moved.record(key.toString(), 'get', source, done, started, ok)
    }
  }

  /**
   * Stores a value on Global and returns its CID once Global has verified and stored it.
   * Accepts bytes, any (async) iterable of bytes, or a Node Readable. With `expected` (the
   * value's CID, e.g. from `cidOfFile`), nothing is read or sent when Global already holds it.
   */
  async put (source: ByteSource, options: LocalPutOptions = {}): Promise<CID> {
    const opts = checkCallOptions(options)
    const started = Date.now()
    // The value's size, from the put's progress events (or the bytes given), for the transfer record.
    let size = source instanceof Uint8Array ? source.length : 0
    const onProgress = opts.onProgress
    const counted = { ...opts, onProgress: (event: ProgressEvent) => { if (event.bytes > size) size = event.bytes; onProgress?.(event) } }
    const cid = await this.guard(async () => await this.putter.put(source, counted))
    this.moved.record(cid.toString(), 'put', 'client', size, started)
    return cid
  }

  /** True when the value is cached here or stored on Global. */
  async has (cid: CIDLike, options: AbortOptions = {}): Promise<boolean> {
    const key = parseCID(cid)
    const { signal } = checkCallOptions(options)
    return await this.guard(async () => {
      if (await this.cache.has(key)) return true
      const [size] = await callGlobal(this.connection, { signal, key: key.multihash.digest }, async ctx => await statMany(ctx, [key.multihash.digest], { signal }))
      return size !== undefined
    })
  }

  /** Which of `cids` Global does not have (a batched STAT, like FindMissingBlobs). */
  async missing (cids: CIDLike[], options: AbortOptions = {}): Promise<CID[]> {
    if (!Array.isArray(cids)) throw new ArgumentError(`missing needs an array of keys, got ${typeof cids === 'string' ? 'a string' : typeof cids}`)
    const keys = cids.map(c => parseCID(c))
    const { signal } = checkCallOptions(options)
    const sizes = await this.guard(async () => await callGlobal(this.connection, { signal }, async ctx => await statMany(ctx, keys.map(k => k.multihash.digest), { signal })))
    return keys.filter((_, i) => sizes[i] === undefined)
  }

  /** Size of a value, and whether it is cached here. @throws {NotFoundError} */
  async stat (cid: CIDLike, options: AbortOptions = {}): Promise<{ cid: CID, size: number, cached: boolean }> {
    const key = parseCID(cid)
    const { signal } = checkCallOptions(options)
    return await this.guard(async () => {
      if (await this.cache.has(key)) {
        const { size } = await this.cache.stat(key)
        return { cid: key, size, cached: true }
      }
      const [size] = await callGlobal(this.connection, { signal, key: key.multihash.digest }, async ctx => await statMany(ctx, [key.multihash.digest], { signal }))
      if (size === undefined) throw new NotFoundError(`${key.toString()} is not stored on Global`)
      return { cid: key, size, cached: false }
    })
  }

  /**
   * Deletes a value from Global. Resolves once Global has deleted it and every connected Local
   * (this one included) has evicted its copy — with several Globals, once every peer Global of
   * that Global has made its own Locals evict it. Resolves false when Global did not have it.
   * @throws {PartialDeleteError} when the value was deleted but a peer Global did not answer
   *   (its Locals drop the value when it is back, or at their next re-check).
   */
  async delete (cid: CIDLike, options: AbortOptions = {}): Promise<boolean> {
    const key = parseCID(cid)
    const { signal } = checkCallOptions(options)
    return await this.guard(async () => {
      await this.coherence.invalidate(key)
      try {
        return await callGlobal(this.connection, { signal, key: key.multihash.digest }, async ctx => await deleteBlob(ctx, key.multihash.digest, { signal }))
      } finally {
        // Also when Global reports a partial delete (a peer Global did not answer): it is gone here.
        await this.coherence.invalidate(key)
      }
    })
  }

  /** Every value pinned on Global, with its size. */
  async * list (options: AbortOptions = {}): AsyncGenerator<{ cid: CID, size: number }> {
    const { signal } = checkCallOptions(options)
    let listed = 0
    try {
      // Retried only before the first entry: a page boundary is not a point to resume from here.
      for await (const e of withGlobal(this.connection, { signal, canRetry: () => listed === 0, what: 'during a listing' }, ctx => listBlobs(ctx, { signal }))) {
        listed++
        yield { cid: cidFromDigest(e.digest), size: e.size }
      }
    } catch (err) {
      throw this.closedIfStopped(err)
    }
  }

  /** Value bytes received and served by source, verification failures, and the recent transfers. */
  traffic (): TrafficSnapshot {
    return this.moved.snapshot()
  }

  /** Global's addresses as configured. */
  get globalAddrs (): string[] { return this.addrs.map(a => a.toString()) }

  stats (): LocalStats {
    const c = this.cache.stats()
    return {
      hits: c.hits,
      misses: c.misses,
      evictions: c.evictions,
      invalidations: this.coherence.invalidations,
      bytesIn: this.counters.bytesIn,
      bytesOut: this.counters.bytesOut,
      cacheBytes: c.bytes,
      cacheEntries: c.entries,
      cacheSize: c.maxBytes,
      connected: this.connected,
      globals: this.connection.connections.length,
      globalsConnected: this.connection.connectedCount,
      rechecks: this.recheck.checks,
      recheckFailures: this.recheck.failures,
      swarm: this.swarmCounters.stats(this.swarmEnabled, this.swarmAddrs, this.serving?.server.bytesToPeers ?? 0, this.partials.size)
    }
  }

  /** Disconnects and releases everything. Calls in flight end with ClosedError. */
  async stop (): Promise<void> {
    if (this.connection.stopped) return
    const stopped = this.connection.stop(async () => { await this.node.stop() }) // marks it stopped at once
    this.stopping.abort(new ClosedError('this Local was stopped'))
    this.serving?.stop()
    this.partials.closeAll(new ClosedError('this Local was stopped'))
    await stopped
    await this.recheck.stop()
    await this.cache.close()
  }

  // ---- internals ---------------------------------------------------------------------------

  /**
   * Runs a call so that, once `stop()` has run, it ends with ClosedError whatever failed under
   * it (the cache closing, a transfer cut short, the source of a put).
   */
  private async guard<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw this.closedIfStopped(err)
    }
  }

  private closedIfStopped (err: unknown): unknown {
    return this.connection.stopped ? stoppedError(err) : err
  }

  /**
   * The whole value of `key` from a transfer that caches it, its first piece already in hand;
   * undefined when Global announced a value larger than the cache.
   */
  private async streamWhole (key: CID, opts: CatOptions): Promise<AsyncIterable<Uint8Array> | undefined> {
    const gen = this.fetcher.stream(key, { signal: opts.signal, maxSize: this.cache.maxBytes })
    let first: IteratorResult<Uint8Array>
    try {
      first = await gen.next()
    } catch (err) {
      if (err instanceof TooLargeError) return undefined
      throw err
    }
    const onProgress = opts.onProgress
    return (async function * () {
      let done = 0
      try {
        for (let next = first; next.done !== true; next = await gen.next()) {
          done += next.value.length
          yield next.value
          onProgress?.({ type: 'blob:get:verified', bytes: done })
        }
      } finally {
        await gen.return(undefined) // a reader that stops early leaves the shared transfer
      }
    })()
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
}

/** Starts a Local peer connected (in the background) to a Global. @throws {ArgumentError} for bad options. */
export async function createLocal (options: LocalOptions): Promise<LocalPeer> {
  return await LocalPeer.create(options)
}
