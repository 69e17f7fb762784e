/**
 * The fs store's index: one lmdb environment with three databases, `meta` (format version),
 * `index` (digest → {@link IndexRecord}) and `payload` (digest → outboard parents [+ the value
 * when inline]). Every write goes through {@link IndexDb.write}: one transaction, then (with
 * `sync`) a wait for the flush; a failed commit (a full disk, an I/O error) becomes a
 * StorageError for that write only, and the index stays usable.
 *
 * lmdb's event-turn batching is off: with it, lmdb keeps a commit promise of its own that
 * nobody awaits, so a failed commit was an unhandled rejection that ended the process. Its
 * overlapping sync is off too: after a failed commit its flush promise never settled, so
 * closing the environment waited forever.
 */
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb'
import { StorageError } from '../../errors.js'
import { decodeRecord, encodeRecord, type IndexRecord } from './records.js'
import { storage, storageError, storageSync } from './io.js'

/** On-disk format version, stored in the `meta` database. */
const FORMAT_VERSION = 1

/** The index of one store folder. */
export class IndexDb {
  /** Entries and the sum of their sizes, counted once at open and kept by every write (status, metrics). */
  private values = 0
  private bytes = 0

  private constructor (
    private readonly env: RootDatabase,
    private readonly index: Database<Buffer, Buffer>,
    private readonly payloads: Database<Buffer, Buffer>,
    readonly sync: boolean
  ) {
    // One pass over the (memory-mapped) index at open instead of a scan per status request.
    for (const { value } of index.getRange({ snapshot: false })) { this.values++; this.bytes += decodeRecord(value).size }
  }

  /** Values indexed and the sum of their sizes. */
  usage (): { values: number, bytes: number } {
    return { values: this.values, bytes: this.bytes }
  }

  /** Within a write transaction: the change to usage() of setting (size) or removing (undefined) `key`. */
  private delta (key: Buffer, size: number | undefined, acc: { values: number, bytes: number }): void {
    const prev = this.index.getBinaryFast(key)
    if (prev !== undefined) { acc.values--; acc.bytes -= decodeRecord(prev).size }
    if (size !== undefined) { acc.values++; acc.bytes += size }
  }

  private async counted (what: string, fn: (acc: { values: number, bytes: number }) => void): Promise<void> {
    const acc = { values: 0, bytes: 0 }
    await this.write(what, () => { acc.values = 0; acc.bytes = 0; fn(acc) })
    this.values += acc.values
    this.bytes += acc.bytes
  }

  /**
   * Opens (creating if needed) the index at `path`. `created` tells whether it held no format
   * version yet (a new store, or one whose index was lost). With `recordFormat` false (an open
   * that must change nothing: `dstore verify` without `--repair`) a new index gets no format
   * version, so the next open still sees it as new and says the index was lost.
   */
  static async open (path: string, sync: boolean, recordFormat = true): Promise<{ db: IndexDb, created: boolean }> {
    const env = storageSync('open index', () => openLmdb({
      path,
      maxDbs: 4,
      noSync: !sync,
      eventTurnBatching: false,
      // With overlapping sync, a commit that fails (a full disk) leaves lmdb's flush promise
      // pending forever, and env.close() waits for it: close() never resolved. Without it the
      // commit includes the sync (measured: no difference for sequential or concurrent puts).
      overlappingSync: false,
      encoding: 'binary',
      keyEncoding: 'binary'
    }))
    try {
      const meta = env.openDB<number, string>({ name: 'meta', encoding: 'json', keyEncoding: 'ordered-binary' })
      const db = new IndexDb(
        env,
        env.openDB<Buffer, Buffer>({ name: 'index', encoding: 'binary', keyEncoding: 'binary' }),
        env.openDB<Buffer, Buffer>({ name: 'payload', encoding: 'binary', keyEncoding: 'binary' }),
        sync
      )
      const version = meta.get('format')
      if (version === undefined) {
        if (recordFormat) await db.write('write format version', () => { void meta.put('format', FORMAT_VERSION) })
      } else if (version !== FORMAT_VERSION) {
        throw new StorageError(`Store format ${String(version)} is not supported (expected ${FORMAT_VERSION})`)
      }
      return { db, created: version === undefined }
    } catch (err) {
      await env.close().catch(() => {})
      throw err
    }
  }

  /** The record of `key`, or undefined. */
  record (key: Uint8Array): IndexRecord | undefined {
    const value = this.index.getBinaryFast(key as Buffer)
    return value === undefined ? undefined : decodeRecord(value)
  }

  /** Whether `key` has an entry. */
  has (key: Uint8Array): boolean {
    return this.index.getBinaryFast(key as Buffer) !== undefined
  }

  /** The payload of `key` (outboard parents, then the value when inline): a fresh Buffer. */
  payload (key: Uint8Array): Buffer | undefined {
    return this.payloads.getBinary(key as Buffer)
  }

  /** Entries in key order from `start` (inclusive), at most `limit`, read without a snapshot. */
  * entries (start?: Buffer, limit?: number): Generator<{ key: Buffer, record: IndexRecord }> {
    for (const { key, value } of this.index.getRange({ start, limit, snapshot: false })) {
      yield { key, record: decodeRecord(value) }
    }
  }

  /** Stores (or replaces) an entry and its payload, durably with `sync`. */
  async put (key: Buffer, record: IndexRecord, payload: Buffer, what = 'commit index'): Promise<void> {
    await this.counted(what, (acc) => {
      this.delta(key, record.size, acc)
      void this.index.put(key, encodeRecord(record))
      void this.payloads.put(key, payload)
    })
  }

  /** Stores (or replaces) several entries and their payloads in one transaction, durably with `sync`. */
  async putMany (entries: Array<{ key: Buffer, record: IndexRecord, payload: Buffer }>, what: string): Promise<void> {
    await this.counted(what, (acc) => {
      for (const { key, record, payload } of entries) {
        this.delta(key, record.size, acc)
        void this.index.put(key, encodeRecord(record))
        void this.payloads.put(key, payload)
      }
    })
  }

  /** Replaces only the payload of an entry (a rebuilt outboard). */
  async putPayload (key: Buffer, payload: Buffer): Promise<void> {
    await this.write('rewrite outboard', () => { void this.payloads.put(key, payload) })
  }

  /** Removes entries (and their payloads) in one transaction, durably with `sync`. */
  async remove (keys: Buffer[], what = 'commit index removal'): Promise<void> {
    await this.counted(what, (acc) => {
      for (const key of keys) { this.delta(key, undefined, acc); void this.index.remove(key); void this.payloads.remove(key) }
    })
  }

  /**
   * The one write path: `fn`'s writes in one transaction, then (with `sync`) the flush. A failed
   * commit rejects with StorageError naming lmdb's underlying error (e.g. "No space left on
   * device"); lmdb's separate `commitError` promise is consumed so it cannot go unhandled.
   */
  async write (what: string, fn: () => void): Promise<void> {
    try {
      await this.env.transaction(fn)
      if (this.sync) await this.env.flushed
    } catch (err) {
      throw storageError(what, await commitDetail(err))
    }
  }

  /** Waits for writes in flight, then closes the environment. */
  async close (): Promise<void> {
    await storage('close index', async () => { await this.env.close() })
  }
}

/** lmdb rejects a failed commit with "Commit failed", and the reason in a separate promise. */
async function commitDetail (err: unknown): Promise<unknown> {
  const detail = (err as { commitError?: Promise<unknown> } | undefined)?.commitError
  if (detail === undefined || typeof detail.then !== 'function') return err
  try {
    await detail
    return err
  } catch (reason) {
    return reason ?? err
  }
}
