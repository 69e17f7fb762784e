/**
 * A Local's puts. A value is acknowledged only once Global has verified and stored it, and is
 * then cached (unless a delete of it may have raced with the put: see coherence.ts).
 *
 * Nothing is sent when Global already holds the value. Bytes in hand (and a stream that ends
 * within the inline limit) are hashed first and Global is asked (STAT). A longer stream's key is
 * known only once it has all been read, so it is sent — unless the caller names its key
 * (`expected`, e.g. a file's `cidOfFile`): then Global is asked before the source is read at all.
 * A put keeps a value for the cache only up to a quarter of the cache's budget, whether its bytes
 * were in hand or streamed: one put must not empty the cache for a value nobody asked to read.
 */
import type { CID } from 'multiformats/cid'
import { linkSignals } from '../../core/abort.js'
import { hash } from '../../core/blake3/index.js'
import { cidFromDigest, parseCID } from '../../core/cid.js'
import { TreeHasher } from '../../core/tree.js'
import { VerificationError } from '../../core/errors.js'
import type { ByteSource, CallOptions } from '../../core/store/interface.js'
import { iterateSource } from '../../core/store/util.js'
import { INLINE_MAX } from '../../protocol/constants.js'
import { putBytes, putHashed, statMany } from '../../protocol/requester.js'
import { concat } from './bytes.js'
import { copyAlongside } from './put-copy.js'
import type { Coherence } from './coherence.js'
import type { GlobalRoute } from './globals.js'
import type { LocalPutOptions } from './options.js'
import { callGlobal } from './retry.js'

export class Putter {
  /**
   * @param stopped aborts when the Local stops: a source that stalls (a FIFO with no writer)
   *   must not keep a put in flight past `stop()`, which no read of the network would notice.
   */
  constructor (private readonly conn: GlobalRoute, private readonly coherence: Coherence, private readonly cacheSize: number,
    private readonly stopped: AbortSignal) {}

  /** The largest value a put keeps for the cache: a quarter of its budget (see the module comment). */
  private get cacheLimit (): number {
    return Math.floor(this.cacheSize / 4)
  }

  /** Stores `source` on Global (see the module comment) and returns its CID. */
  async put (source: ByteSource, options: LocalPutOptions): Promise<CID> {
    // The source is read under the caller's signal and the Local's stop (ClosedError then, see index.ts).
    const reading = linkSignals(options.signal, this.stopped)
    try {
      return await this.putSource(source, options, reading.signal)
    } finally {
      reading.clear()
    }
  }

  private async putSource (source: ByteSource, options: LocalPutOptions, readSignal: AbortSignal): Promise<CID> {
    const expected = options.expected !== undefined ? parseCID(options.expected) : undefined
    if (source instanceof Uint8Array) return await this.putValue(source, options, expected)
    if (expected !== undefined) {
      let size: number | undefined
      try {
        size = await this.sizeOnGlobal(expected, options)
      } catch (err) {
        await closeUnread(source).catch(() => {}) // not read, and the put has failed: close the file now
        throw err
      }
      if (size !== undefined) {
        await closeUnread(source)
        options.onProgress?.({ type: 'blob:put:deduplicated', bytes: size, total: size })
        return expected
      }
    }
    // Read ahead up to the inline limit: a short stream is put like bytes (dedupe, one round trip).
    // Each chunk checked to be bytes (a string would otherwise be stored as zeros), aborts honoured.
    const it = iterateSource(source, readSignal)
    try {
      const head: Uint8Array[] = []
      let headBytes = 0
      while (headBytes <= INLINE_MAX) {
        const { done, value } = await it.next()
        if (done === true) return await this.putValue(concat(head, headBytes), options, expected, expected !== undefined)
        head.push(Uint8Array.prototype.slice.call(value))
        headBytes += value.length
      }
      return await this.putStreamed(head, headBytes, it, options, expected)
    } finally {
      // A put that failed before the source was read to its end (Global unreachable, refused)
      // closes it: a file stream would keep its descriptor. A no-op once it has ended.
      try { await it.return(undefined) } catch {}
    }
  }

  /** Puts a value whose bytes are all in hand: hashed here, sent only when Global lacks it. */
  private async putValue (value: Uint8Array, options: CallOptions, expected: CID | undefined, knownMissing = false): Promise<CID> {
    // The caller's array is sent (put has not returned, so it does not change). The cache keeps
    // a copy (the caller may change the array afterwards), made while the value is sent (it
    // fills the time the send waits for the network), with the outboard of the hash (so it is
    // not hashed again when first served). None for a value larger than the put's share of the
    // cache: no copy to make (into fresh memory, it cost the Local of a 256 MiB put about 0.5 of
    // its 3.0 s of CPU per GB).
    const keep = value.length <= this.cacheLimit
    // (A value within the inline limit as before: its root alone; its outboard is cheap to build if asked.)
    const large = value.length > INLINE_MAX
    const tree = large ? new TreeHasher({ outboard: keep }).update(value).finalize() : undefined
    const digest = tree?.root ?? hash(value)
    const cid = cidFromDigest(digest)
    if (expected !== undefined && !expected.equals(cid)) throw new VerificationError(`Value hashes to ${String(cid)}, expected ${String(expected)}`)
    const alongside = keep && large ? copyAlongside(value) : undefined
    const data = alongside?.copy ?? value
    const watch = this.coherence.watch(cid)
    try {
      await callGlobal(this.conn, { signal: options.signal, key: digest }, async ctx => {
        watch.restart(ctx)
        const [size] = knownMissing ? [undefined] : await statMany(ctx, [digest], options)
        if (size === undefined) await putBytes(ctx, digest, value, options)
        else options.onProgress?.({ type: 'blob:put:deduplicated', bytes: data.length, total: data.length })
      })
      await alongside?.done
      // Not cached when a delete of it raced with the put (or may have: the channel broke).
      if (keep) this.coherence.adoptVerified(watch, cid, data, alongside !== undefined, tree?.outboard)
    } finally {
      alongside?.stop()
      watch.close()
    }
    return cid
  }

  /** Streams a value longer than the inline limit; `head` was read from `it` already. */
  private async putStreamed (head: Uint8Array[], headBytes: number, it: AsyncGenerator<Uint8Array>, options: CallOptions, expected: CID | undefined): Promise<CID> {
    const keep: Uint8Array[] = [...head]
    let kept = headBytes
    const cacheLimit = this.cacheLimit
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
        // One copy per part (the source may reuse its buffer): the one sent is the one kept.
        const own = Uint8Array.prototype.slice.call(value)
        if (keeping) {
          kept += value.length
          if (kept > cacheLimit) { keeping = false; keep.length = 0 } else keep.push(own)
        }
        yield own
      }
    }
    // The key is known at the end only (unless expected): any eviction meanwhile may be of it.
    const watch = this.coherence.watch(expected)
    try {
      // A stream cannot be replayed, so it is sent once: no retry on a broken channel. The
      // source's own errors pass unchanged.
      const digest = await callGlobal(this.conn, {
        signal: options.signal,
        key: expected?.multihash.digest,
        canRetry: () => false,
        what: 'during a streamed put (a stream cannot be replayed: put it again)',
        passes: (err) => sourceError?.err === err
      }, async ctx => {
        watch.restart(ctx)
        return await putHashed(ctx, all(), { ...options, digest: expected?.multihash.digest, owned: true })
      })
      const cid = cidFromDigest(digest)
      if (expected !== undefined && !expected.equals(cid)) throw new VerificationError(`Value hashes to ${String(cid)}, expected ${String(expected)}`)
      if (keeping) this.coherence.adoptVerified(watch, cid, concat(keep, kept), true)
      return cid
    } finally {
      watch.close()
    }
  }

  /** The size of `key` on Global, or undefined when Global does not hold it. */
  private async sizeOnGlobal (key: CID, options: CallOptions): Promise<number | undefined> {
    const [size] = await callGlobal(this.conn, { signal: options.signal, key: key.multihash.digest }, async ctx => await statMany(ctx, [key.multihash.digest], options))
    return size
  }
}

/**
 * Stops a source that will not be read (Global has its value): a Node Readable is destroyed,
 * so its file is closed now. Something that is not a source is refused as a put would refuse it.
 */
async function closeUnread (source: ByteSource): Promise<void> {
  // An async iterator that was never started ignores return(): a Readable must be destroyed.
  const readable = source as { destroy?: unknown, readable?: unknown }
  if (source != null && typeof readable.destroy === 'function' && typeof readable.readable === 'boolean') { (readable.destroy as () => void).call(source); return }
  const s = source as { [Symbol.asyncIterator]?: unknown, [Symbol.iterator]?: unknown } | null
  const open = s?.[Symbol.asyncIterator] ?? s?.[Symbol.iterator]
  const iterator = typeof open === 'function' ? (open.call(s) as { return?: () => unknown }) : undefined
  if (iterator === undefined) {
    await iterateSource(source).next() // throws its TypeError
    return
  }
  try { await iterator.return?.() } catch {}
}
