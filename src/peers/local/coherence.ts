/**
 * Cache coherence of a Local: a value Global deleted is not served from the cache.
 *
 * - Global sends EVICT to every connected Local before a delete is answered: the cached copy
 *   is dropped ({@link Coherence.handleRequest}).
 * - A Local that was disconnected may have missed EVICTs: it reconciles its whole cache with
 *   Global (a batched STAT) on every new connection, before calls may use it.
 * - A value fetched or put while Global deleted it (or may have: the channel closed, so an
 *   EVICT may have been lost) is not cached. One mechanism keeps that rule: a {@link Watch} on
 *   the key, open for the transfer, goes stale on an eviction of its key or on a channel close.
 *   A streamed put, whose key is known only at its end, watches every key.
 */
import type { CID } from 'multiformats/cid'
import { cidFromDigest } from '../../core/cid.js'
import { PermissionDeniedError, ProtocolError, TooLargeError } from '../../core/errors.js'
import type { MemoryBlobStore } from '../../core/store/memory.js'
import { KIND } from '../../protocol/constants.js'
import { MessageReader, decodeEvict, encodeEvictResponse } from '../../protocol/messages.js'
import { statMany, type RequesterContext } from '../../protocol/requester.js'
import type { PartialRegistry } from './partials.js'

/** Open while a value for a key is fetched or put; `stale` once caching it could serve a deleted value. */
export class Watch {
  stale = false
  /**
   * Global evicted (deleted) the key during the transfer: unlike `stale` (also set when the
   * channel closed, so an eviction may have been lost), this says the value is gone, and a
   * swarm download fails with NotFoundError instead of just not caching.
   */
  evicted = false
  constructor (readonly key: string | undefined, private readonly release: (w: Watch) => void) {}

  /** The transfer starts (again) on `ctx`: only what happens from now on makes it stale. */
  restart (ctx: RequesterContext): void { this.stale = !ctx.channel.open }

  close (): void { this.release(this) }
}

export class Coherence {
  private readonly byKey = new Map<string, Set<Watch>>()
  private readonly anyKey = new Set<Watch>()
  /** Values removed because Global deleted them (EVICT notices and reconciliation). */
  invalidations = 0

  /** Called when a value was cached (the swarm's announcer). */
  onCached: ((cid: CID, size: number) => void) | undefined

  /** `partials`: downloads in flight, closed with the cached copy on every invalidation. */
  constructor (private readonly cache: MemoryBlobStore, private readonly partials?: PartialRegistry) {}

  /** Watches `key` (every key when undefined) until the watch is closed. */
  watch (key?: CID): Watch {
    const id = key?.toString()
    const w = new Watch(id, (w) => { this.unwatch(w) })
    if (id === undefined) {
      this.anyKey.add(w)
    } else {
      let set = this.byKey.get(id)
      if (set == null) { set = new Set(); this.byKey.set(id, set) }
      set.add(w)
    }
    return w
  }

  /**
   * Caches a value already verified against `cid` (by the decoder, or hashed here for a put),
   * without hashing it again — unless `watch` went stale. With `owned`, the cache may keep
   * `value` itself; otherwise (a caller's array) it keeps a copy. A small view into a larger
   * buffer is copied too, so the cache never pins memory its budget does not count. Returns
   * whether the value is cached.
   */
  adoptVerified (watch: Watch, cid: CID, value: Uint8Array, owned: boolean, outboard?: Uint8Array): boolean {
    if (watch.stale) return false
    const compact = value.byteOffset === 0 && value.buffer.byteLength === value.length
    try {
      this.cache.adoptVerified(cid, owned && compact ? value : Uint8Array.prototype.slice.call(value), { outboard })
      this.onCached?.(cid, value.length)
      return true
    } catch (err) {
      if (err instanceof TooLargeError) return false
      throw err
    }
  }

  /**
   * Marks any fetch or put of `key` in progress as stale, closes its download in flight (no
   * piece of it is served to peers from now on), and drops the cached copy.
   */
  async invalidate (key: CID): Promise<void> {
    this.partials?.invalidate(key)
    for (const w of this.byKey.get(key.toString()) ?? []) { w.stale = true; w.evicted = true }
    for (const w of this.anyKey) w.stale = true
    if (await this.cache.delete(key)) this.invalidations++
  }

  /** Drops every cached value (a re-check found no Global to vouch for them: recheck.ts). */
  async invalidateAll (): Promise<void> {
    for (const key of await this.heldKeys()) await this.invalidate(key)
  }

  /** The channel closed: EVICTs may have been lost with it, so nothing in progress may be cached. */
  channelClosed (): void {
    for (const set of this.byKey.values()) for (const w of set) w.stale = true
    for (const w of this.anyKey) w.stale = true
  }

  /** Answers Global's EVICT requests; nothing else is expected from Global. */
  readonly handleRequest = async (msg: MessageReader): Promise<Uint8Array> => {
    if (msg.kind !== KIND.EVICT) throw new ProtocolError(`a Local does not answer requests of kind 0x${msg.kind.toString(16)}`)
    for (const digest of decodeEvict(msg)) await this.invalidate(cidFromDigest(digest))
    return encodeEvictResponse(msg.id)
  }

  /** Drops every cached value Global no longer has (after a reconnect: deletes we missed). */
  readonly reconcile = async (ctx: RequesterContext): Promise<void> => {
    const keys = await this.heldKeys()
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

  /** The keys of every cached value and every download in flight (served to peers: checked as the cache is). */
  private async heldKeys (): Promise<CID[]> {
    const keys = new Map<string, CID>()
    for await (const stat of this.cache.list()) keys.set(stat.cid.toString(), stat.cid)
    for (const cid of this.partials?.keys() ?? []) keys.set(cid.toString(), cid)
    return [...keys.values()]
  }

  private unwatch (w: Watch): void {
    if (w.key === undefined) { this.anyKey.delete(w); return }
    const set = this.byKey.get(w.key)
    set?.delete(w)
    if (set?.size === 0) this.byKey.delete(w.key)
  }
}
