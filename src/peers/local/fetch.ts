/**
 * Single-flight fetch of whole values from Global into a Local's cache. Concurrent gets of one
 * value share one transfer, which runs on its own AbortController: a caller's signal only
 * abandons that caller's wait, and the transfer is aborted once no caller waits for it any
 * more. (Tying the shared transfer to the first caller's signal failed every other caller when
 * the first one aborted, and ignored a later caller's own signal.) Likewise a caller whose
 * progress callback throws fails alone.
 *
 * `stream` is the same transfer seen as it arrives: a reader joins (or starts) it and is handed
 * each verified piece as soon as it is decoded, and the value is cached once complete. So a
 * Local serving a miss (the HTTP daemon) starts sending at once instead of after the whole
 * value, and a reader and a get of the same value still share one transfer.
 */
import type { CID } from 'multiformats/cid'
import { raceAbort, throwIfAborted } from '../../core/abort.js'
import { TooLargeError } from '../../core/errors.js'
import { freshBytes } from '../../core/prefault.js'
import { markReadOnly } from '../../core/read-only.js'
import { PartialValue } from '../../core/swarm/partial.js'
import type { CallOptions, ProgressEvent } from '../../core/store/interface.js'
import type { MemoryBlobStore } from '../../core/store/memory.js'
import { getRange, type GetRangeOptions } from '../../protocol/requester.js'
import { getWhole, swarmWorthy, type SwarmSource } from '../../protocol/swarm-requester.js'
import { concat, tiles } from './bytes.js'
import type { Coherence, Watch } from './coherence.js'
import type { GlobalRoute } from './globals.js'
import type { PartialRegistry } from './partials.js'
import { callGlobal } from './retry.js'
import { swarmDownload, type SwarmFetchContext } from './swarm-fetch.js'

/** One caller's progress callback, and how to fail that caller alone when it throws. */
interface Listener {
  onProgress: (event: ProgressEvent) => void
  fail: (err: unknown) => void
}

interface Inflight {
  promise: Promise<Uint8Array>
  settled: boolean
  /** Callers waiting for the result; the transfer is aborted when this drops to 0. */
  waiters: number
  controller: AbortController
  listeners: Set<Listener>
  /** Stale once Global evicted the key (or may have) during the transfer. */
  watch: Watch
  /** The verified pieces so far, in order; emptied when a broken channel restarts the transfer. */
  parts: Uint8Array[]
  /** Bumped at each restart: a reader then skips the bytes it has already been given. */
  epoch: number
  /** Readers waiting for the next piece (or the end). */
  wake: Set<() => void>
  /** Set when a reader started it: larger values are refused. */
  maxSize: number | undefined
}

export class SingleFlight {
  private readonly inflight = new Map<string, Inflight>()

  /**
   * `swarm` (the swarm on): whole values are asked with the SWARM flag, so Global may answer a
   * large one with its sources (swarm-fetch.ts downloads it from them), and every large download
   * is registered in `swarm.partials` so this Local serves its verified pieces meanwhile.
   */
  constructor (private readonly conn: GlobalRoute, private readonly cache: MemoryBlobStore, private readonly coherence: Coherence,
    private readonly swarm?: SwarmFetchContext & { partials: PartialRegistry }) {}

  /** Registers a download in flight for serving (swarm on). */
  private register (key: CID, pv: PartialValue): PartialValue {
    this.swarm?.partials.add(key, pv)
    return pv
  }

  /** Unregisters a download; `close`: also closes it (nothing of it is served any more). */
  private unregister (key: CID, pv: PartialValue, close: boolean): void {
    if (close) pv.close()
    this.swarm?.partials.remove(key, pv)
  }

  /** The verified value of `key` from Global, cached unless it may be stale. */
  async fetch (key: CID, options: CallOptions): Promise<Uint8Array> {
    throwIfAborted(options.signal)
    const { entry: shared, joined } = this.join(key, undefined)
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
      // Shared, not copied: the cache keeps this array and every caller of the transfer gets it
      // (Local.get's read-only contract). A copy per caller cost a fresh value-sized buffer.
      return value
    } catch (err) {
      // Joined a reader's transfer, which refuses values larger than the cache: fetch our own.
      if (joined && shared.maxSize !== undefined && err instanceof TooLargeError) return await this.fetch(key, options)
      throw err
    } finally {
      if (listener != null) shared.listeners.delete(listener)
      this.leave(key, shared)
    }
  }

  /**
   * The verified pieces of `key`'s value as they arrive, from a transfer shared with concurrent
   * gets and readers; the value is cached once complete. Pieces are views, not copies, of the
   * buffer they were verified in, which the cache keeps and other readers share: read-only (as
   * Local.get's value), never written again by the transfer (a restart decodes into a fresh
   * buffer). Meant for values that fit the cache (the transfer keeps every
   * piece until it ends): with `maxSize`, a value announced larger is refused (TooLargeError).
   */
  async * stream (key: CID, options: CallOptions & { maxSize?: number }): AsyncGenerator<Uint8Array> {
    throwIfAborted(options.signal)
    const { entry } = this.join(key, options.maxSize)
    entry.waiters++
    try {
      let epoch = entry.epoch
      let index = 0
      let given = 0
      let skip = 0
      for (;;) {
        if (entry.epoch !== epoch) { epoch = entry.epoch; index = 0; skip = given }
        while (index < entry.parts.length) {
          let part = entry.parts[index++]
          if (skip > 0) {
            const drop = Math.min(skip, part.length)
            skip -= drop
            part = part.subarray(drop)
            if (part.length === 0) continue
          }
          given += part.length
          markReadOnly(part) // shared with the transfer's other readers and the cache
          yield part
        }
        if (entry.settled) {
          await entry.promise // a failed transfer fails its readers
          if (entry.epoch === epoch && index === entry.parts.length) return
          continue
        }
        await raceAbort(new Promise<void>(resolve => { entry.wake.add(resolve) }), options.signal)
      }
    } finally {
      this.leave(key, entry)
    }
  }

  /** The transfer of `key` to wait on: the one in flight, unless it may be stale, or a new one. */
  private join (key: CID, maxSize: number | undefined): { entry: Inflight, joined: boolean } {
    const entry = this.inflight.get(key.toString())
    // A transfer that raced with a delete (or a lost channel) may deliver a value Global no
    // longer has: a get that starts now must ask afresh, not join it (read your deletes).
    if (entry != null && !entry.watch.stale) return { entry, joined: true }
    return { entry: this.startFetch(key, maxSize), joined: false }
  }

  /** One waiter less; the transfer is aborted when nobody waits for it any more. */
  private leave (key: CID, entry: Inflight): void {
    entry.waiters--
    if (entry.waiters === 0 && !entry.settled) {
      entry.controller.abort()
      // A later get must start afresh, not join an aborted transfer.
      if (this.inflight.get(key.toString()) === entry) this.inflight.delete(key.toString())
    }
  }

  private startFetch (key: CID, maxSize: number | undefined): Inflight {
    const id = key.toString()
    const controller = new AbortController()
    const watch = this.coherence.watch(key)
    const entry: Inflight = {
      settled: false, waiters: 0, controller, listeners: new Set(), watch, parts: [], epoch: 0, wake: new Set(), maxSize,
      promise: undefined as unknown as Promise<Uint8Array>
    }
    const wakeAll = (): void => {
      const waiting = [...entry.wake]
      entry.wake.clear()
      for (const resolve of waiting) resolve()
    }
    let target: Uint8Array | undefined
    /** The download registered for serving to peers (swarm on, a value of at least SWARM_MIN_SIZE). */
    let partial: PartialValue | undefined
    const swarm = this.swarm
    const progress = (event: ProgressEvent): void => {
      for (const listener of entry.listeners) {
        try {
          listener.onProgress(event)
        } catch (err) {
          entry.listeners.delete(listener)
          listener.fail(err)
        }
      }
    }
    const options: GetRangeOptions = {
      maxSize,
      signal: controller.signal,
      onProgress: progress,
      // Decoded straight into the value's buffer when the announced size could be cached (a
      // lying Global cannot make us allocate more than the cache could hold anyway). With the
      // swarm on, a large value's buffer is a registered PartialValue: its verified prefix is
      // served to other Locals while it streams in.
      target: (size) => {
        const fits = size > 0 && size <= this.cache.maxBytes
        if (fits && swarm !== undefined && swarmWorthy(size)) {
          partial = this.register(key, new PartialValue(size))
          for (let i = 0; i < partial.pieces; i++) partial.fetching.set(i)
          target = partial.data
        } else {
          target = fits ? freshBytes(size) : undefined
        }
        return target
      },
      onParent: (index, node) => { partial?.onParent(index, node) }
    }
    entry.promise = (async () => {
      let cached = false
      try {
        const parts = entry.parts
        let n = 0
        let sources: { size: number, sources: SwarmSource[] } | undefined
        // The value from Global's stream; with `askSwarm`, Global may answer with sources instead.
        const fromGlobal = async (askSwarm: boolean): Promise<void> => await callGlobal(this.conn, { signal: options.signal, key: key.multihash.digest }, async ctx => {
          if (parts.length > 0) { parts.length = 0; entry.epoch++ }
          n = 0
          // A retry starts a fresh buffer: what the broken transfer wrote is not verified.
          if (partial !== undefined) { this.unregister(key, partial, true); partial = undefined }
          // Nothing is asked on this channel yet: only what happens from now on makes it stale.
          watch.restart(ctx)
          const digest = key.multihash.digest
          if (!askSwarm) {
            for await (const part of getRange(ctx, digest, { offset: 0 }, options)) { parts.push(part); n += part.length; wakeAll() }
            return
          }
          const answer = await getWhole(ctx, digest, { ...options, swarm: true })
          if (answer.kind === 'sources') { sources = answer; return }
          for await (const part of answer.parts) {
            // Set by `target` once the answer's size is known (TypeScript cannot see that).
            const pv = partial as PartialValue | undefined
            if (pv !== undefined) {
              // In place unless the decoder could not use the buffer (then the value fails anyway).
              if (!(part.buffer === pv.data.buffer && part.byteOffset === n)) pv.data.set(part, n)
              pv.verified(n, part.length)
            }
            parts.push(part)
            n += part.length
            wakeAll()
          }
        })
        await fromGlobal(swarm !== undefined)
        if (sources !== undefined && swarm !== undefined && sources.size > this.cache.maxBytes) {
          // Too large for the cache: not held here, so not served to peers either, and one
          // buffer of a size only Global vouches for is not allocated. Streamed as without the swarm.
          await fromGlobal(false)
        } else if (sources !== undefined && swarm !== undefined) {
          const { size } = sources
          if (maxSize !== undefined && size > maxSize) throw new TooLargeError(`the value is ${size} bytes, more than the ${maxSize} allowed`)
          const pv = this.register(key, new PartialValue(size))
          partial = pv
          target = pv.data
          // Readers get the verified prefix as it grows (pieces arrive out of order).
          const publish = (): void => {
            const upto = pv.prefix()
            if (upto <= n) return
            parts.push(pv.data.subarray(n, upto))
            n = upto
            progress({ type: 'blob:get:verified', bytes: n, total: size })
            wakeAll()
          }
          await swarmDownload(swarm, key, pv, sources.sources, { signal: controller.signal, evicted: () => watch.evicted, onPiece: publish })
          publish()
        }
        // Verified pieces that tile the target in order are the value itself: no copy.
        const whole = target !== undefined && n === target.length && tiles(parts, target)
        const value = whole ? target as Uint8Array : concat(parts, n)
        // The parents the transfer verified are the value's outboard when it all went into the partial.
        const outboard = whole && partial !== undefined && partial.data === target && partial.complete() ? partial.outboard : undefined
        // An eviction that arrived while we fetched means Global deleted it, and a channel that
        // closed meanwhile may have lost such an eviction: don't cache a possibly stale copy.
        if (!controller.signal.aborted) cached = this.coherence.adoptVerified(watch, key, value, true, outboard)
        return value
      } finally {
        // Cached: the cache serves it now. Otherwise (failed, aborted, stale) nothing of it is served any more.
        if (partial !== undefined) this.unregister(key, partial, !cached)
        watch.close()
        entry.settled = true
        if (this.inflight.get(id) === entry) this.inflight.delete(id)
        wakeAll()
      }
    })()
    entry.promise.catch(() => {}) // abandoned transfers reject with nobody listening
    this.inflight.set(id, entry)
    return entry
  }
}
