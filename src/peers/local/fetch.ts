/**
 * Single-flight fetch of whole values from Global into a Local's cache. Concurrent gets of one
 * value share one transfer, which runs on its own AbortController: a caller's signal only
 * abandons that caller's wait, and the transfer is aborted once no caller waits for it any
 * more. (Tying the shared transfer to the first caller's signal failed every other caller when
 * the first one aborted, and ignored a later caller's own signal.) Likewise a caller whose
 * progress callback throws fails alone.
 */
import type { CID } from 'multiformats/cid'
import { raceAbort, throwIfAborted } from '../../core/abort.js'
import type { CallOptions, ProgressEvent } from '../../core/store/interface.js'
import type { MemoryBlobStore } from '../../core/store/memory.js'
import { getRange, type GetRangeOptions } from '../../protocol/requester.js'
import { concat, tiles } from './bytes.js'
import type { Coherence, Watch } from './coherence.js'
import type { GlobalConnection } from './connection.js'
import { callGlobal } from './retry.js'

/** One caller's progress callback, and how to fail that caller alone when it throws. */
interface Listener {
  onProgress: (event: ProgressEvent) => void
  fail: (err: unknown) => void
}

interface Inflight {
  promise: Promise<Uint8Array>
  settled: boolean
  /** The cache took the fetched array itself: callers must get copies. */
  cached: boolean
  /** Callers waiting for the result; the transfer is aborted when this drops to 0. */
  waiters: number
  controller: AbortController
  listeners: Set<Listener>
  /** Stale once Global evicted the key (or may have) during the transfer. */
  watch: Watch
}

export class SingleFlight {
  private readonly inflight = new Map<string, Inflight>()

  constructor (private readonly conn: GlobalConnection, private readonly cache: MemoryBlobStore, private readonly coherence: Coherence) {}

  /** The verified value of `key` from Global, cached unless it may be stale. */
  async fetch (key: CID, options: CallOptions): Promise<Uint8Array> {
    throwIfAborted(options.signal)
    const id = key.toString()
    let entry = this.inflight.get(id)
    // A transfer that raced with a delete (or a lost channel) may deliver a value Global no
    // longer has: a get that starts now must ask afresh, not join it (read your deletes).
    if (entry?.watch.stale === true) entry = undefined
    const joined = entry != null
    if (entry == null) entry = this.startFetch(key)
    const shared = entry
    shared.waiters++
    let listener: Listener | undefined
    try {
      const value = await new Promise<Uint8Array>((resolve, reject) => {
        if (options.onProgress != null) {
          listener = { onProgress: options.onProgress, fail: reject }
          shared.listeners.add(listener)
        }
        raceAbort(shared.promise, options.signal).then(resolve, reject)
      })
      // The cache may own `value`, and the first caller may modify the array it gets: everyone
      // else gets a copy.
      return joined || shared.cached ? value.slice() : value
    } finally {
      shared.waiters--
      if (listener != null) shared.listeners.delete(listener)
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
    const watch = this.coherence.watch(key)
    const entry: Inflight = { settled: false, cached: false, waiters: 0, controller, listeners: new Set(), watch, promise: undefined as unknown as Promise<Uint8Array> }
    let target: Uint8Array | undefined
    const options: GetRangeOptions = {
      signal: controller.signal,
      onProgress: (event) => {
        for (const listener of entry.listeners) {
          try {
            listener.onProgress(event)
          } catch (err) {
            entry.listeners.delete(listener)
            listener.fail(err)
          }
        }
      },
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
        await callGlobal(this.conn, { signal: options.signal }, async ctx => {
          parts.length = 0
          n = 0
          // Nothing is asked on this channel yet: only what happens from now on makes it stale.
          watch.restart(ctx)
          for await (const part of getRange(ctx, key.multihash.digest, { offset: 0 }, options)) { parts.push(part); n += part.length }
        })
        // Verified pieces that tile the target in order are the value itself: no copy.
        const value = target !== undefined && n === target.length && tiles(parts, target) ? target : concat(parts, n)
        // An eviction that arrived while we fetched means Global deleted it, and a channel that
        // closed meanwhile may have lost such an eviction: don't cache a possibly stale copy.
        if (!controller.signal.aborted) entry.cached = this.coherence.adoptVerified(watch, key, value, true)
        return value
      } finally {
        watch.close()
        entry.settled = true
        if (this.inflight.get(id) === entry) this.inflight.delete(id)
      }
    })()
    entry.promise.catch(() => {}) // abandoned transfers reject with nobody listening
    this.inflight.set(id, entry)
    return entry
  }
}
