/**
 * The memory store: a Local peer's bounded cache of verified blobs.
 *
 * Rules (also in docs/STORAGE.md):
 * - The budget `maxBytes` bounds the total size of all values held, pinned or not. Pinned
 *   values count toward it; only unpinned values are ever evicted to make room. The memory
 *   held is therefore at most `maxBytes` of values plus their outboards (1/256 of a value's
 *   size above 16 KiB, 8 bytes below) and per-entry bookkeeping.
 * - A value that cannot fit even after evicting every unpinned value (larger than `maxBytes`
 *   minus the pinned bytes) is refused with `TooLargeError`; nothing is stored or evicted.
 * - Least recently used goes first. A use is a `get`, `getBytes`, `open`, or a `put` of a value
 *   already held. `has`, `stat`, `outboard`, `peek` and `list` do not reorder.
 * - `hits`/`misses` count lookups by `get`, `getBytes` and `open`.
 * - Eviction calls `onEvict(cid, size)` (set at creation or assigned later). `delete` does not.
 *
 * It implements {@link VerifiableBlobStore}: `put` already runs the tree hasher over every
 * value to verify it, and keeping the group chaining values costs 1/512 of the value while
 * hashing, so the outboard is built at put time and kept (1/256 of the value). Computing it on
 * demand instead would re-hash the whole value at every verified serve.
 */
import type { CID } from 'multiformats/cid'
import { parseCID, type CIDLike } from '../cid.js'
import { throwIfAborted } from '../abort.js'
import { ClosedError, NotFoundError, OutOfRangeError, TooLargeError } from '../errors.js'
import { TreeHasher } from '../tree.js'
import { markReadOnly } from '../read-only.js'
import type {
  AbortOptions, ListOptions, BlobReader, BlobStat, ByteSource, GetOptions, PutOptions, VerifiableBlobStore
} from './interface.js'
import { checkPutOptions, checkRead, iterateSource, resolveRange, verifyPut } from './util.js'

/** Pieces `get` yields, at most. */
const PIECE = 1 << 20

export interface MemoryStoreOptions {
  /** Budget for the bytes of all values held (pinned ones included). Default 256 MiB. */
  maxBytes?: number
  /** Called after a value is evicted to make room (not on `delete`). */
  onEvict?: (cid: CID, size: number) => void
}

/** Counters of a memory store. */
export interface MemoryStoreStats {
  hits: number
  misses: number
  evictions: number
  /** Bytes of values held, pinned ones included. */
  bytes: number
  /** Bytes of pinned values (part of `bytes`). */
  pinnedBytes: number
  entries: number
  maxBytes: number
}

interface Entry {
  cid: CID
  data: Uint8Array
  /** Built at put; for adopted values, built on first use. */
  outboard: Uint8Array | undefined
  pinned: boolean
}

export class MemoryBlobStore implements VerifiableBlobStore {
  readonly maxBytes: number
  /** Eviction callback; may be reassigned. Errors it throws are ignored. */
  onEvict: ((cid: CID, size: number) => void) | undefined

  /** Unpinned entries, least recently used first (Map keeps insertion order). */
  private readonly lru = new Map<string, Entry>()
  /** Pinned entries: never evicted. */
  private readonly pinned = new Map<string, Entry>()
  private bytes = 0
  private pinnedBytes = 0
  private hits = 0
  private misses = 0
  private evictions = 0
  private closed = false

  constructor (options: MemoryStoreOptions = {}) {
    const maxBytes = options.maxBytes ?? 256 * 1024 * 1024
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new OutOfRangeError(`Invalid maxBytes ${String(maxBytes)}`)
    this.maxBytes = maxBytes
    this.onEvict = options.onEvict
  }

  /**
   * The whole value, synchronously, or undefined when absent. Counts as a use (hit or miss,
   * and moves the value to the most recently used end). The returned array is the store's own
   * copy: callers must not modify it.
   * @throws {InvalidCIDError} when `cid` is not a dstore key (checked only on a miss).
   */
  getBytes (cid: CIDLike): Uint8Array | undefined {
    if (this.closed) throw new ClosedError()
    const entry = this.use(cid)
    return entry?.data
  }

  /**
   * A held value and its outboard (`outboard()` builds it on first use if the value was adopted
   * without one), without counting a use or reordering: for serving it to other peers (a
   * Local's swarm), which are not this cache's callers. Both are the store's own arrays:
   * callers must not modify them. Undefined when absent.
   */
  peek (cid: CIDLike): { data: Uint8Array, outboard: () => Uint8Array } | undefined {
    if (this.closed) throw new ClosedError()
    const entry = this.find(cid)
    if (entry === undefined) return undefined
    return {
      data: entry.data,
      outboard: () => {
        entry.outboard ??= new TreeHasher({ outboard: true }).update(entry.data).finalize().outboard as Uint8Array
        return entry.outboard
      }
    }
  }

  async has (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    this.check(options)
    return this.find(cid) !== undefined
  }

  async stat (cid: CIDLike, options?: AbortOptions): Promise<BlobStat> {
    this.check(options)
    const entry = this.require(cid)
    return { cid: entry.cid, size: entry.data.length, pinned: entry.pinned }
  }

  async put (source: ByteSource, options: PutOptions = {}): Promise<CID> {
    this.check(options)
    const expected = checkPutOptions(options)
    if (options.size !== undefined) this.checkFits(options.size)
    const hasher = new TreeHasher({ outboard: true })
    let data: Uint8Array
    if (source instanceof Uint8Array) {
      this.checkFits(source.length)
      data = Uint8Array.prototype.slice.call(source)
      hasher.update(data)
      options.onProgress?.({ type: 'blob:put:write', bytes: data.length, total: data.length })
    } else {
      const parts: Uint8Array[] = []
      let total = 0
      for await (const chunk of iterateSource(source, options.signal)) {
        if (this.closed) throw new ClosedError()
        if (chunk.length === 0) continue
        total += chunk.length
        this.checkFits(total)
        const copy = Uint8Array.prototype.slice.call(chunk)
        hasher.update(copy)
        parts.push(copy)
        options.onProgress?.({ type: 'blob:put:write', bytes: total, total: options.size })
      }
      if (parts.length === 1) {
        data = parts[0]
      } else {
        data = new Uint8Array(total)
        let o = 0
        for (const p of parts) { data.set(p, o); o += p.length }
      }
    }
    const result = hasher.finalize()
    const cid = verifyPut(result.root, result.size, expected, options)
    if (this.closed) throw new ClosedError()
    throwIfAborted(options.signal)
    return this.insert(cid, data, result.outboard, options.pin === true).cid
  }

  cat (cid: CIDLike, options: GetOptions = {}): AsyncIterable<Uint8Array> {
    return this.read(cid, options, true)
  }

  /**
   * As {@link cat}, but the pieces are views of the store's own array, not copies: callers must
   * not modify them (a Local's `cat`, whose pieces are read-only by contract, as `getBytes`'s
   * value is). A view keeps the whole value's buffer alive while it is held.
   */
  catShared (cid: CIDLike, options: GetOptions = {}): AsyncIterable<Uint8Array> {
    return this.read(cid, options, false)
  }

  private async * read (cid: CIDLike, options: GetOptions, copy: boolean): AsyncGenerator<Uint8Array> {
    this.check(options)
    const entry = this.use(cid)
    if (entry === undefined) throw new NotFoundError(`Not in memory store: ${String(cid)}`)
    const data = entry.data
    const { start, end } = resolveRange(data.length, options)
    if (end - start <= PIECE) {
      if (end > start) {
        yield copy ? data.slice(start, end) : data.subarray(start, end)
        options.onProgress?.({ type: 'blob:get:read', bytes: end - start, total: end - start })
      }
      return
    }
    for (let off = start; off < end; off += PIECE) {
      if (this.closed) throw new ClosedError()
      throwIfAborted(options.signal)
      const stop = Math.min(off + PIECE, end)
      yield copy ? data.slice(off, stop) : data.subarray(off, stop)
      options.onProgress?.({ type: 'blob:get:read', bytes: stop - start, total: end - start })
    }
  }

  async delete (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    this.check(options)
    const entry = this.find(cid)
    if (entry === undefined) return false
    this.remove(entry.cid.toString(), entry)
    return true
  }

  async * list (options?: ListOptions): AsyncGenerator<BlobStat> {
    this.check(options)
    // Snapshot, so callers may delete while listing.
    const entries = [...this.pinned.values(), ...this.lru.values()]
    for (const entry of entries) {
      this.check(options)
      yield { cid: entry.cid, size: entry.data.length, pinned: entry.pinned }
    }
  }

  async outboard (cid: CIDLike, options?: AbortOptions): Promise<Uint8Array> {
    this.check(options)
    const entry = this.require(cid)
    entry.outboard ??= new TreeHasher({ outboard: true }).update(entry.data).finalize().outboard as Uint8Array
    return entry.outboard.slice()
  }

  /**
   * Takes a value that has already been verified against `cid` (for example, bytes that came
   * out of the verified-stream decoder), without hashing or copying it again: the store takes
   * ownership of `data`, and the caller must not modify it afterwards. The outboard is built only
   * if it is ever asked for, unless `outboard` hands over one already verified with the value
   * (the parents a verified download captured: the store owns it too). Putting a value already
   * held just marks it as used.
   *
   * @throws {TooLargeError} when the value cannot fit the budget (nothing is stored or evicted).
   */
  adoptVerified (cid: CID, data: Uint8Array, options: { pin?: boolean, outboard?: Uint8Array } = {}): void {
    this.check()
    this.insert(cid, data, options.outboard, options.pin === true)
  }

  /** Stores a verified value, or marks the held copy as used (and pinned if asked). */
  private insert (cid: CID, data: Uint8Array, outboard: Uint8Array | undefined, pin: boolean): Entry {
    const key = cid.toString()
    const existing = this.lru.get(key) ?? this.pinned.get(key)
    if (existing !== undefined) {
      if (pin) this.setPinned(key, existing, true)
      else this.touch(key, existing)
      return existing
    }
    this.checkFits(data.length)
    this.makeRoom(data.length)
    const entry: Entry = { cid, data, outboard, pinned: pin }
    markReadOnly(data) // handed out as is by getBytes and catShared
    if (pin) {
      this.pinned.set(key, entry)
      this.pinnedBytes += data.length
    } else {
      this.lru.set(key, entry)
    }
    this.bytes += data.length
    return entry
  }

  /** Readers hold the value, so they keep working after a delete or an eviction. Reads return copies. */
  async open (cid: CIDLike, options?: AbortOptions): Promise<BlobReader> {
    this.check(options)
    const entry = this.use(cid)
    if (entry === undefined) throw new NotFoundError(`Not in memory store: ${String(cid)}`)
    const data = entry.data
    return {
      size: data.length,
      read: async (offset: number, length: number) => {
        checkRead(data.length, offset, length)
        return data.slice(offset, offset + length)
      },
      close: async () => {}
    }
  }

  /** Pins a held value: it will not be evicted. @throws {NotFoundError} */
  async pin (cid: CIDLike, options?: AbortOptions): Promise<void> {
    this.check(options)
    const entry = this.require(cid)
    this.setPinned(entry.cid.toString(), entry, true)
  }

  /** Unpins a held value; it becomes the most recently used. @throws {NotFoundError} */
  async unpin (cid: CIDLike, options?: AbortOptions): Promise<void> {
    this.check(options)
    const entry = this.require(cid)
    this.setPinned(entry.cid.toString(), entry, false)
  }

  stats (): MemoryStoreStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      bytes: this.bytes,
      pinnedBytes: this.pinnedBytes,
      entries: this.lru.size + this.pinned.size,
      maxBytes: this.maxBytes
    }
  }

  async close (): Promise<void> {
    this.closed = true
    this.lru.clear()
    this.pinned.clear()
    this.bytes = 0
    this.pinnedBytes = 0
  }

  /** Lookup that counts and reorders: the hot path. */
  private use (cid: CIDLike): Entry | undefined {
    let key = fastKey(cid)
    let entry = this.lru.get(key)
    if (entry !== undefined) {
      this.lru.delete(key)
      this.lru.set(key, entry)
      this.hits++
      return entry
    }
    entry = this.pinned.get(key)
    if (entry === undefined) {
      // Slow path: validate (throws InvalidCIDError) and retry with the canonical spelling.
      const canonical = parseCID(cid).toString()
      if (canonical !== key) {
        key = canonical
        entry = this.lru.get(key)
        if (entry !== undefined) {
          this.lru.delete(key)
          this.lru.set(key, entry)
        } else {
          entry = this.pinned.get(key)
        }
      }
    }
    if (entry === undefined) this.misses++
    else this.hits++
    return entry
  }

  /** Lookup that neither counts nor reorders. */
  private find (cid: CIDLike): Entry | undefined {
    const key = fastKey(cid)
    const entry = this.lru.get(key) ?? this.pinned.get(key)
    if (entry !== undefined) return entry
    const canonical = parseCID(cid).toString()
    return canonical === key ? undefined : (this.lru.get(canonical) ?? this.pinned.get(canonical))
  }

  private require (cid: CIDLike): Entry {
    const entry = this.find(cid)
    if (entry === undefined) throw new NotFoundError(`Not in memory store: ${String(cid)}`)
    return entry
  }

  private touch (key: string, entry: Entry): void {
    if (!entry.pinned) {
      this.lru.delete(key)
      this.lru.set(key, entry)
    }
  }

  private setPinned (key: string, entry: Entry, pinned: boolean): void {
    if (entry.pinned === pinned) { this.touch(key, entry); return }
    if (pinned) {
      this.lru.delete(key)
      this.pinned.set(key, entry)
      this.pinnedBytes += entry.data.length
    } else {
      this.pinned.delete(key)
      this.lru.set(key, entry)
      this.pinnedBytes -= entry.data.length
    }
    entry.pinned = pinned
  }

  private remove (key: string, entry: Entry): void {
    if (entry.pinned) {
      this.pinned.delete(key)
      this.pinnedBytes -= entry.data.length
    } else {
      this.lru.delete(key)
    }
    this.bytes -= entry.data.length
  }

  /** @throws {TooLargeError} when `size` cannot fit even with every unpinned value evicted. */
  private checkFits (size: number): void {
    if (size > this.maxBytes - this.pinnedBytes) {
      throw new TooLargeError(size > this.maxBytes
        ? `A ${size}-byte value exceeds the memory store's ${this.maxBytes}-byte budget`
        : `A ${size}-byte value does not fit: ${this.pinnedBytes} of ${this.maxBytes} bytes are pinned`)
    }
  }

  /** Evicts least recently used unpinned values until `size` more bytes fit. */
  private makeRoom (size: number): void {
    this.checkFits(size)
    while (this.bytes + size > this.maxBytes) {
      const next = this.lru.entries().next()
      if (next.done === true) break
      const [key, entry] = next.value
      this.lru.delete(key)
      this.bytes -= entry.data.length
      this.evictions++
      if (this.onEvict !== undefined) {
        try { this.onEvict(entry.cid, entry.data.length) } catch {}
      }
    }
  }

  private check (options?: AbortOptions): void {
    if (this.closed) throw new ClosedError()
    throwIfAborted(options?.signal)
  }
}

/**
 * The map key for a lookup, without validation: a string as given, a CID's cached base32 text.
 * A miss is then validated and retried with the canonical spelling.
 */
function fastKey (cid: CIDLike): string {
  if (typeof cid === 'string') return cid
  return cid != null && typeof cid === 'object' ? String(cid) : ''
}

/** A memory store with a byte budget. */
export function createMemoryStore (options: MemoryStoreOptions = {}): MemoryBlobStore {
  return new MemoryBlobStore(options)
}
