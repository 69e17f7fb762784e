/**
 * The file half of a put, once a value is too large to be inline. Bytes are copied into
 * staging slots (SharedArrayBuffer, SLOT bytes); a full slot is dispatched: hashed by a worker
 * (or on the main thread without workers) while the same slot is written to the temp file by
 * a chain of positioned writes (one at a time, in order, in the thread pool). At most
 * SLOTS_IN_FLIGHT slots are in flight; the oldest is retired (its CVs fed to the tree hasher,
 * in order) before another is taken. With `sync`, a background fdatasync starts every
 * EARLY_SYNC bytes so the disk works while hashing goes on; the last one, after the last
 * write, is what makes the data durable. The value's last (partial) slot is hashed on the
 * main thread, so values of at most one slot never use a worker. A whole value in hand (the
 * caller's Uint8Array) takes no slot but for its last partial one: each SLOT of it is hashed on the main thread while the
 * thread pool writes the one before, from the caller's array. Where the filesystem takes them,
 * the writes of a value of DIRECT_MIN_SIZE or more are direct (O_DIRECT, direct.ts: aligned
 * slots, the last one padded, then the file truncated), so they skip the page cache; a
 * caller's array is then copied into slots unless it happens to be aligned. A smaller value
 * (under one slot, so written once, by `finish`) goes through the page cache.
 */
import { open as openFile, rm, type FileHandle } from 'node:fs/promises'
import { throwIfAborted } from '../../abort.js'
import { ClosedError, StorageError } from '../../errors.js'
import type { GroupHashResult, HashPool } from '../../blake3/worker.js'
import { CHUNK_LEN } from '../../blake3/interface.js'
import type { TreeHasher } from '../../tree.js'
import type { PutOptions } from '../interface.js'
import { DIRECT_ALIGN, DIRECT_MIN_SIZE, alignUp, directFlags, isAligned } from './direct.js'
import { storage, storageError } from './io.js'

/**
 * Staging slot of a large put: the unit that is hashed (by a worker) and written (one write
 * call). A multiple of the 16 KiB chunk group.
 */
export const SLOT = 4 << 20
/** Slots one put keeps in flight (hashing or writing): 16 MiB of staging per put. */
const SLOTS_IN_FLIGHT = 4
/** A large put starts an early fdatasync (in the background) every this many bytes written. */
const EARLY_SYNC = 32 << 20

/**
 * Busy time in ms of each stage of file puts, summed (the stages overlap, so the sum exceeds
 * the wall time). For measurements (`scripts/measure-put.ts`).
 */
export interface PutStats { copy: number, hash: number, write: number, earlySync: number, fsync: number, commit: number }

/** A fresh, zeroed {@link PutStats}. */
export function newPutStats (): PutStats {
  return { copy: 0, hash: 0, write: 0, earlySync: 0, fsync: 0, commit: 0 }
}

/** What a file put needs from its store, and nothing more. */
export interface Staging {
  /** Wait for the fdatasync before the put may commit. */
  readonly sync: boolean
  /**
   * Write the temp file with O_DIRECT (direct.ts): slots are aligned, the last partial one is
   * written padded and the file truncated after.
   */
  readonly direct: boolean
  /** Stage times are added here. */
  readonly stats: PutStats
  /** The worker pool, or undefined to hash on the main thread. */
  readonly pool: HashPool | undefined
  /** A slot of SLOT bytes (SharedArrayBuffer, so workers can read it; aligned for direct writes). */
  takeSlot: () => Buffer
  /** Returns a slot no one reads or writes any more. */
  releaseSlot: (slot: Buffer) => void
  /** A new temp file path under tmp/. */
  tempFile: () => string
  /** Whether the store is closing (a put still streaming then fails with ClosedError). */
  closed: () => boolean
}

interface Dispatched {
  /** The staging slot to release once both are done (none when written from the caller's array and hashed on the main thread). */
  slot: Buffer | undefined
  /** The worker's CVs for this slot's groups (undefined: hashed on the main thread already). */
  hashed: Promise<GroupHashResult> | undefined
  written: Promise<void>
}

/** Streams one value into a temp file while hashing it (see the module comment). */
export class FilePut {
  tempPath: string | undefined
  private handle: FileHandle | undefined
  private cur: Buffer | undefined
  private fill = 0
  /** Bytes dispatched: the file offset of the current slot. */
  private position = 0
  private readonly queue: Dispatched[] = []
  private chain: Promise<void> = Promise.resolve()
  private written = 0
  private syncedTo = 0
  private syncing: Promise<void> | undefined
  private syncError: unknown
  /** The value's size, when its last write was padded to the direct alignment: the file is truncated to it. */
  private truncateTo: number | undefined
  private readonly pool: HashPool | undefined
  private readonly stats: PutStats
  /**
   * Whether the temp file is written directly: the store's answer, until the first write shows
   * the value smaller than DIRECT_MIN_SIZE (its only write, from `finish`, at offset 0: a value
   * under one slot, which DIRECT_MIN_SIZE is not larger than), which goes through the page cache.
   */
  private direct: boolean

  constructor (
    private readonly staging: Staging,
    private readonly hasher: TreeHasher,
    private readonly options: PutOptions,
    private readonly total: number | undefined
  ) {
    this.pool = staging.pool
    this.stats = staging.stats
    this.direct = staging.direct
  }

  /** Adds the next bytes. `stable`: `chunk` stays unchanged until the put ends, so it may be written from directly. */
  async add (chunk: Uint8Array, stable: boolean): Promise<void> {
    let off = 0
    while (off < chunk.length) {
      if (stable && this.fill === 0 && chunk.length - off >= SLOT && (!this.direct || isAligned(chunk.subarray(off)))) {
        // A whole slot of the caller's array: written from there and hashed on the main thread
        // while the thread pool writes the slot before it. No copy: a worker could only read a
        // SharedArrayBuffer copy, and that copy plus the worker cost more CPU than the hash it
        // moves (2 shared cores: measured in the commit that made this so). A direct write
        // needs an aligned address, which a caller's array rarely has: it is copied into slots.
        const piece = chunk.subarray(off, off + SLOT)
        // The tree takes CVs in order: a worker's slot still out must be fed to it first.
        if (this.queue.some(d => d.hashed !== undefined)) while (this.queue.length > 0) await this.retire()
        await this.makeRoom()
        this.dispatch(undefined, piece, piece, true)
        off += SLOT
        // Let the event loop see finished writes, so the next one starts while this thread hashes.
        await new Promise<void>(resolve => setImmediate(resolve))
        continue
      }
      if (this.cur === undefined) {
        await this.makeRoom()
        this.cur = this.staging.takeSlot()
      }
      const take = Math.min(SLOT - this.fill, chunk.length - off)
      const tc = performance.now()
      this.cur.set(chunk.subarray(off, off + take), this.fill)
      this.stats.copy += performance.now() - tc
      this.fill += take
      off += take
      if (this.fill === SLOT) {
        const slot = this.cur
        this.cur = undefined
        this.fill = 0
        this.dispatch(slot, slot, slot)
      }
    }
  }

  /** Hashes and writes the last partial slot, then waits for every write. */
  async finish (): Promise<void> {
    while (this.queue.length > 0) await this.retire()
    if (this.cur !== undefined && this.fill > 0) {
      const tail = this.cur.subarray(0, this.fill)
      const th = performance.now()
      this.hasher.update(tail)
      this.stats.hash += performance.now() - th
      const slot = this.cur
      this.cur = undefined
      this.dispatch(slot, tail, undefined, false, true)
      await this.retire()
    }
    await this.chain
    const size = this.truncateTo
    if (size !== undefined) {
      const handle = this.handle as FileHandle
      await storage('truncate temp file', async () => { await handle.truncate(size) })
    }
  }

  /** After {@link finish}: makes the data durable (fdatasync, with `sync`) and closes the file. */
  async durable (): Promise<void> {
    const handle = this.handle as FileHandle
    if (this.staging.sync) {
      const ts = performance.now()
      if (this.syncing !== undefined) await this.syncing
      if (this.syncError !== undefined) throw storageError('fsync temp file', this.syncError)
      // fdatasync: the file is new, so its data and size (all a reader needs) are flushed; the
      // name becomes durable by the rename and the folder fsync in commit.
      await storage('fsync temp file', async () => { await handle.datasync() })
      this.stats.fsync += performance.now() - ts
    }
    this.handle = undefined
    await storage('close temp file', async () => { await handle.close() })
  }

  /** The temp file was renamed (or removed) by commit: nothing left to clean. */
  committed (): void {
    this.tempPath = undefined
    if (this.cur !== undefined) { this.staging.releaseSlot(this.cur); this.cur = undefined }
  }

  /** After a failure: waits for work in flight, closes and removes the temp file. Slots are dropped, not reused. */
  async abort (): Promise<void> {
    const waits: Array<Promise<unknown>> = [this.chain]
    for (const d of this.queue) { waits.push(d.written); if (d.hashed !== undefined) waits.push(d.hashed) }
    if (this.syncing !== undefined) waits.push(this.syncing)
    this.queue.length = 0
    await Promise.allSettled(waits)
    if (this.handle !== undefined) await this.handle.close().catch(() => {})
    this.handle = undefined
    if (this.tempPath !== undefined) await rm(this.tempPath, { force: true }).catch(() => {})
    this.tempPath = undefined
  }

  /** Retires the oldest slots until another may be taken. */
  private async makeRoom (): Promise<void> {
    while (this.queue.length >= SLOTS_IN_FLIGHT) await this.retire()
  }

  /**
   * Starts hashing `hash` (whole groups, in a slot; undefined: already hashed; `onMain`: here,
   * not on a worker) and writing `data` at the current position (`last`: the value's last write).
   */
  private dispatch (slot: Buffer | undefined, data: Uint8Array, hash: Uint8Array | undefined, onMain = false, last = false): void {
    throwIfAborted(this.options.signal)
    if (this.staging.closed()) throw new ClosedError()
    let hashed: Promise<GroupHashResult> | undefined
    if (hash !== undefined) {
      if (this.pool !== undefined && !onMain) {
        hashed = this.pool.groupCVs(hash, this.position / CHUNK_LEN, this.hasher.groupLog)
        hashed.catch(() => {})
      } else {
        const th = performance.now()
        this.hasher.update(hash)
        this.stats.hash += performance.now() - th
      }
    }
    const position = this.position
    this.position += data.length
    if (position === 0 && last && data.length < DIRECT_MIN_SIZE) this.direct = false
    const direct = this.direct
    const out = direct ? this.padded(slot, data, position) : data
    if (this.tempPath === undefined) this.tempPath = this.staging.tempFile()
    const path = this.tempPath
    const written = this.chain.then(async () => {
      if (this.handle === undefined) {
        const flags = direct ? directFlags('create') : 'wx'
        this.handle = await storage('create temp file', async () => await openFile(path, flags, 0o666))
      }
      const handle = this.handle
      const tw = performance.now()
      await storage('write temp file', async () => {
        let off = 0
        while (off < out.length) {
          const { bytesWritten } = await handle.write(out, off, out.length - off, position + off)
          // A write that makes no progress would loop forever; a direct one that stops short of
          // the alignment (a disk filling up) cannot go on where it stopped.
          if (bytesWritten === 0 || (direct && bytesWritten % DIRECT_ALIGN !== 0 && off + bytesWritten < out.length)) {
            throw new StorageError(`Could not write temp file: ${off + bytesWritten} of ${out.length} bytes written at ${position} (is the disk full?)`)
          }
          off += bytesWritten
        }
      })
      this.stats.write += performance.now() - tw
      this.written += data.length
      this.options.onProgress?.({ type: 'blob:put:write', bytes: this.written, total: this.total })
      this.earlySync(handle)
    })
    written.catch(() => {})
    this.chain = written
    this.queue.push({ slot, hashed, written })
  }

  /**
   * What a direct write of `data` at `position` writes: `data` itself when its length is
   * aligned (whole slots; slots and the caller's pieces taken for direct writes are aligned
   * already), else the value's last piece padded with zeros to the alignment, in its slot,
   * which {@link finish} truncates away.
   */
  private padded (slot: Buffer | undefined, data: Uint8Array, position: number): Uint8Array {
    if (data.length % DIRECT_ALIGN === 0) return data
    const length = alignUp(data.length)
    if (slot === undefined || data.buffer !== slot.buffer || data.byteOffset !== slot.byteOffset || length > slot.length) {
      throw new Error('internal: a direct write of an unaligned length outside its slot')
    }
    slot.fill(0, data.length, length)
    this.truncateTo = position + data.length
    return slot.subarray(0, length)
  }

  /** Starts a background fdatasync when enough has been written since the last one. */
  private earlySync (handle: FileHandle): void {
    if (!this.staging.sync || this.syncing !== undefined || this.written - this.syncedTo < EARLY_SYNC) return
    this.syncedTo = this.written
    const ts = performance.now()
    this.syncing = handle.datasync().then(
      () => { this.stats.earlySync += performance.now() - ts },
      err => { this.syncError ??= err }
    ).finally(() => { this.syncing = undefined })
  }

  /** Waits for the oldest slot's write and hash, feeds its CVs to the tree, frees the slot. */
  private async retire (): Promise<void> {
    const d = this.queue[0]
    await d.written
    if (d.hashed !== undefined) {
      const { cvs, ms } = await d.hashed
      this.stats.hash += ms
      this.hasher.updateGroupCVs(cvs)
    }
    this.queue.shift()
    if (d.slot !== undefined) this.staging.releaseSlot(d.slot)
  }
}
