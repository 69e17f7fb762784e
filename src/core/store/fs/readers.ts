/** The fs store's random-access readers (`FsBlobStore.open`). */
import { open as openFile, type FileHandle } from 'node:fs/promises'
import { ClosedError, StorageError } from '../../errors.js'
import type { BlobReader } from '../interface.js'
import { checkRead } from '../util.js'
import { DIRECT_ALIGN, alignUp, directReadFlags, type BouncePool } from './direct.js'
import { readFully, readFullyV, storageError } from './io.js'

/** A reader over an inline value's bytes (a fresh copy per read). */
export function inlineReader (data: Uint8Array): BlobReader {
  const size = data.length
  return {
    size,
    read: async (offset, length) => {
      checkRead(size, offset, length)
      return new Uint8Array(data.subarray(offset, offset + length))
    },
    close: async () => {}
  }
}

/** How a file reader may read past the page cache (direct.ts). */
export interface DirectReads {
  /** Aligned buffers for direct reads. */
  bounces: BouncePool
  /** Asked once, at the reader's first read: whether this reader's reads of file `fd` go past the page cache. */
  choose: (fd: number) => boolean
  /** Told the bytes of each direct read. */
  counted: (bytes: number) => void
}

/**
 * A reader holding an open data file, so it can finish reading after the value is deleted
 * (and after the store is closed). Reads return fresh arrays (or fill `into`); `readv`
 * scatters a read into the caller's arrays (one system call for all of them).
 *
 * With `direct`, its first read asks `direct.choose` whether to read past the page cache; if
 * so, it opens the same file again (through `/proc/self/fd`, so a deleted value too) with
 * O_DIRECT, and every read fills an aligned bounce buffer from the aligned span around the
 * bytes asked for, then copies them out. Where that open fails, it reads through the page
 * cache. Deciding at the first read, not at open, lets a caller open a reader for its size
 * alone without that counting as a read.
 */
export function fileReader (handle: FileHandle, size: number, direct?: DirectReads): BlobReader {
  let open = true
  let chosen: Promise<FileHandle | undefined> | undefined
  /** The O_DIRECT handle when this reader reads past the page cache, else undefined. */
  const directHandle = async (): Promise<FileHandle | undefined> => {
    if (direct === undefined) return undefined
    chosen ??= direct.choose(handle.fd)
      ? openFile(`/proc/self/fd/${handle.fd}`, directReadFlags()).catch(() => undefined)
      : Promise.resolve(undefined)
    return await chosen
  }
  /** Reads [offset, offset + length) directly into a bounce buffer; calls `use` with the bytes, then frees it. */
  const withBytes = async (dh: FileHandle, bounces: BouncePool, offset: number, length: number, use: (bytes: Uint8Array) => void): Promise<void> => {
    const start = offset - offset % DIRECT_ALIGN
    const need = offset + length - start
    const span = Math.min(alignUp(offset + length), alignUp(size)) - start
    const bounce = bounces.take(span)
    try {
      let got = 0
      while (got < need) {
        let bytesRead: number
        try {
          ({ bytesRead } = await dh.read(bounce, got, span - got, start + got))
        } catch (err) {
          throw storageError('read data file', err)
        }
        // Only the end of the file comes back short of an aligned length.
        if (bytesRead === 0 || (got + bytesRead < need && (got + bytesRead) % DIRECT_ALIGN !== 0)) {
          throw new StorageError(`Data file is shorter than its index entry (${start + got + bytesRead} bytes)`)
        }
        got += bytesRead
      }
      use(bounce.subarray(offset - start, offset - start + length))
      direct?.counted(length)
    } finally {
      bounces.release(bounce)
    }
  }
  return {
    size,
    read: async (offset, length, into) => {
      if (!open) throw new ClosedError('The reader is closed')
      checkRead(size, offset, length)
      const dh = await directHandle()
      if (dh === undefined || direct === undefined) return await readFully(handle, offset, length, into)
      const out = into !== undefined && into.length >= length ? into.subarray(0, length) : new Uint8Array(length)
      if (length > 0) await withBytes(dh, direct.bounces, offset, length, bytes => { out.set(bytes) })
      return out
    },
    readv: async (offset, targets) => {
      if (!open) throw new ClosedError('The reader is closed')
      const length = targets.reduce((n, t) => n + t.length, 0)
      checkRead(size, offset, length)
      const dh = await directHandle()
      if (dh === undefined || direct === undefined) return await readFullyV(handle, offset, targets)
      if (length === 0) return
      await withBytes(dh, direct.bounces, offset, length, bytes => {
        let at = 0
        for (const t of targets) { t.set(bytes.subarray(at, at + t.length)); at += t.length }
      })
    },
    close: async () => {
      if (!open) return
      open = false
      const dh = chosen !== undefined ? await chosen : undefined
      await Promise.all([handle.close().catch(() => {}), dh?.close().catch(() => {})])
    }
  }
}
