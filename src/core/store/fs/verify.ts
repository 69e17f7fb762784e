/**
 * Verify and repair (docs/STORAGE.md, "Verify and repair"): re-hash every stored value against
 * its key and its stored outboard; with `repair`, quarantine bad bytes, rebuild bad outboards
 * and drop entries whose data file is missing.
 */
import { mkdir, open as openFile, rename, writeFile, type FileHandle } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { cidFromDigest } from '../../cid.js'
import { DEFAULT_GROUP_LOG, HEADER_LEN, TreeHasher, outboardLength } from '../../tree.js'
import { NotFoundError, StorageError, VerificationError } from '../../errors.js'
import { decodeRange, encodeRange, type ByteRange } from '../../bao/index.js'
import type { AbortOptions, BlobReader, VerifiableBlobStore } from '../interface.js'
import type { IndexDb } from './index-db.js'
import { readFully, storage, storageError } from './io.js'
import type { FsLayout } from './layout.js'
import { KIND_FILE, KIND_INLINE, type IndexRecord } from './records.js'

/** One value `verify` (or open's recovery) found bad. */
export interface FsVerifyProblem {
  cid: CID
  /** Size the index records (for an unindexed file: its size). */
  size: number
  /** Where the value lives. */
  kind: 'inline' | 'file'
  /**
   * - `corrupt`: the bytes do not hash to the key (or have the wrong length);
   * - `outboard`: the bytes are right but the stored outboard is not (Locals would reject it);
   * - `missing`: the index names a data file that does not exist (dropped at open, or gone since);
   * - `unindexed`: a data file whose bytes match its name has no index entry (the index was
   *   lost, or a put or delete was interrupted); open re-indexes it unless told not to.
   */
  problem: 'corrupt' | 'outboard' | 'missing' | 'unindexed'
  /** What was found, for people. */
  reason: string
  /**
   * With `repair`: the entry no longer serves bad bytes (a corrupt value is removed from the
   * index and its bytes moved to `quarantine/`; an outboard is rebuilt from the good bytes; a
   * missing file's entry is dropped; an unindexed file is indexed again). What open's recovery
   * did is `true`; what it only found (`dropMissingFiles` / `reindexFiles` false) is `false`.
   */
  repaired: boolean
}

export interface FsVerifyOptions extends AbortOptions {
  /** Remove (quarantine) bad values and rebuild bad outboards. Default false: only report. */
  repair?: boolean
  /** Called for each bad value as it is found (after its repair, with `repair`). */
  onProblem?: (problem: FsVerifyProblem) => void
}

export interface FsVerifyReport {
  /** Values checked (index entries read during this run). */
  checked: number
  /** Bytes hashed. */
  bytes: number
  /** Everything found bad, including what the last open found (missing files, unindexed files). */
  problems: FsVerifyProblem[]
}

/** What verify needs of its store. */
export interface VerifyContext {
  readonly layout: FsLayout
  readonly db: IndexDb
  /** Throws ClosedError / AbortError. */
  check: (options?: AbortOptions) => void
}

/** Hashes `size` bytes of an open file (with outboard), reading through `buffer`. */
export async function hashFile (handle: FileHandle, size: number, buffer: Uint8Array, onBytes?: (n: number) => void): Promise<ReturnType<TreeHasher['finalize']>> {
  const hasher = new TreeHasher({ outboard: true })
  for (let pos = 0; pos < size;) {
    const n = Math.min(buffer.length, size - pos)
    hasher.update(await readFully(handle, pos, n, buffer))
    pos += n
    onBytes?.(n)
  }
  return hasher.finalize()
}

/** The outboard parents of a hash result (the payload's first part). */
export function parentsOf (result: ReturnType<TreeHasher['finalize']>): Buffer {
  return Buffer.from((result.outboard as Uint8Array).subarray(HEADER_LEN))
}

/** Moves a data file to quarantine/ (nothing when it is already gone). */
export async function quarantineFile (layout: FsLayout, from: string, hex: string): Promise<void> {
  await storage('create quarantine folder', async () => { await mkdir(layout.quarantine, { recursive: true }) })
  await storage('move data file to quarantine', async () => {
    try {
      await rename(from, layout.quarantined(hex, false))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  })
}

/** Checks one entry (the caller holds its key lock); repairs it with `options.repair`. */
export async function verifyKey (ctx: VerifyContext, key: Buffer, report: FsVerifyReport, buffer: Uint8Array, options: FsVerifyOptions): Promise<FsVerifyProblem | undefined> {
  ctx.check(options)
  const record = ctx.db.record(key)
  if (record === undefined) return undefined // deleted meanwhile
  report.checked++
  const cid = cidFromDigest(new Uint8Array(key))
  const kind = record.kind === KIND_INLINE ? 'inline' : 'file'
  const parentsLen = outboardLength(record.size, DEFAULT_GROUP_LOG) - HEADER_LEN
  const payload = ctx.db.payload(key)
  let reason: string | undefined
  let problem: FsVerifyProblem['problem'] = 'corrupt'
  let result: ReturnType<TreeHasher['finalize']> | undefined
  if (record.kind === KIND_INLINE) {
    if (payload === undefined || payload.length !== parentsLen + record.size) {
      reason = `inline entry holds ${payload?.length ?? 0} bytes, expected ${parentsLen + record.size}`
    } else {
      const hasher = new TreeHasher({ outboard: true })
      hasher.update(payload.subarray(parentsLen))
      report.bytes += record.size
      result = hasher.finalize()
    }
  } else {
    let handle: FileHandle | undefined
    try {
      handle = await openFile(ctx.layout.blob(key), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('open data file', err)
      problem = 'missing'
      reason = 'data file missing'
    }
    if (handle !== undefined) {
      try {
        const { size } = await storage('stat data file', async () => await (handle as FileHandle).stat())
        if (size !== record.size) {
          reason = `data file has ${size} bytes, the index says ${record.size}`
        } else {
          result = await hashFile(handle, size, buffer, n => { ctx.check(options); report.bytes += n })
        }
      } finally {
        await handle.close().catch(() => {})
      }
    }
  }
  if (reason === undefined && result !== undefined) {
    if (!key.equals(result.root)) {
      reason = 'bytes do not hash to the key'
    } else if (payload === undefined || payload.length < parentsLen || !parentsOf(result).equals(payload.subarray(0, parentsLen))) {
      problem = 'outboard'
      reason = 'stored outboard does not match the bytes (the bytes are right)'
    }
  }
  if (reason === undefined) return undefined
  const found: FsVerifyProblem = { cid, size: record.size, kind, problem, reason, repaired: false }
  if (options.repair === true) {
    if (problem === 'outboard' && result !== undefined) {
      const parents = parentsOf(result)
      const value = record.kind === KIND_INLINE
        ? Buffer.concat([parents, (payload as Buffer).subarray((payload as Buffer).length - record.size)])
        : parents
      await ctx.db.putPayload(key, value)
    } else {
      await quarantine(ctx, key, record, payload)
    }
    found.repaired = true
  }
  return found
}

/**
 * Removes a bad value's index entry and moves its bytes to quarantine/. Called under the key
 * lock. The index goes first (as in delete): if the commit fails (a full disk) the entry still
 * names its data file; if the move fails after it, the file is unindexed and the next open
 * re-hashes it and quarantines it. Never an index entry without its file.
 */
async function quarantine (ctx: VerifyContext, key: Buffer, record: IndexRecord, payload: Buffer | undefined): Promise<void> {
  const hex = key.toString('hex')
  if (record.kind === KIND_FILE) {
    await ctx.db.remove([key])
    await quarantineFile(ctx.layout, ctx.layout.blob(hex), hex)
    return
  }
  if (payload !== undefined) {
    await storage('create quarantine folder', async () => { await mkdir(ctx.layout.quarantine, { recursive: true }) })
    await storage('write quarantined value', async () => { await writeFile(ctx.layout.quarantined(hex, true), payload) })
  }
  await ctx.db.remove([key])
}

/**
 * Checks a byte range of a stored value against its key through the stored outboard (the
 * same check a Local makes on a verified stream). Cost: reading and hashing the range only.
 * Resolves with what is wrong, or undefined when the range verifies or the value is absent.
 */
export async function checkStoredRange (store: VerifiableBlobStore, cid: CID, range: ByteRange, options?: AbortOptions): Promise<string | undefined> {
  let outboard: Uint8Array
  let reader: BlobReader
  try {
    outboard = await store.outboard(cid, options)
    reader = await store.open(cid, options)
  } catch (err) {
    if (err instanceof NotFoundError) return undefined
    throw err
  }
  try {
    const source = encodeRange(reader, outboard, range, DEFAULT_GROUP_LOG, { signal: options?.signal })
    for await (const _ of decodeRange(source, cid.multihash.digest, range, DEFAULT_GROUP_LOG, { signal: options?.signal })) { /* verified */ }
    return undefined
  } catch (err) {
    if (err instanceof VerificationError || err instanceof StorageError) return err.message
    throw err
  } finally {
    await reader.close()
  }
}
