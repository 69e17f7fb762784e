/** The fs store's random-access readers (`FsBlobStore.open`). */
import { open as openFile, type FileHandle } from 'node:fs/promises'
import { ClosedError, StorageError } from '../../errors.js'
import type { BlobReader } from '../interface.js'
import { checkRead } from '../util.js'
import { BOUNCE_MAX, DIRECT_ALIGN, alignUp, directFlags, type BouncePool } from './direct.js'
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
 * O_DIRECT, and each read fills an aligned bounce buffer from the aligned span around the bytes
 * asked for (at most BOUNCE_MAX per read call), then copies them out. Where that open fails,
 * or a direct read is refused (EINVAL), it reads through the page cache from then on.
 * Deciding at the first read, not at open, lets a caller open a reader for its size alone
 * without that counting as a read.
 */
export function fileReader (handle: FileHandle, size: number, direct?: DirectReads): BlobReader {
  let open = true
  let chosen: Promise<FileHandle | undefined> | undefined
  /** Set when a direct read was refused: later reads go through the page cache. */
  let refused = false
  /** The O_DIRECT handle when this reader reads past the page cache, else undefined. */
  const directHandle = async (): Promise<FileHandle | undefined> => {
    if (direct === undefined) return undefined
    chosen ??= direct.choose(handle.fd)
      ? openFile(`/proc/self/fd/${handle.fd}`, directFlags('read')).catch(() => undefined)
      : Promise.resolve(undefined)
    const dh = await chosen
    return refused ? undefined : dh
  }
  /** A read's failure: ClosedError when the reader was closed meanwhile (its descriptor is gone), else `err`. */
  const failure = (err: unknown): unknown => open ? err : new ClosedError('The reader is closed')
  /**
   * Reads [offset, offset + length) directly, at most BOUNCE_MAX per read call, each part into
   * a bounce buffer; `use(bytes, at)` copies a part out (`at`: its offset in the request).
   * False when the filesystem refused the direct read before any byte was used.
   */
  const readDirect = async (dh: FileHandle, bounces: BouncePool, offset: number, length: number, use: (bytes: Uint8Array, at: number) => void): Promise<boolean> => {
    for (let done = 0; done < length;) {
      const from = offset + done
      const n = Math.min(length - done, BOUNCE_MAX)
      const start = from - from % DIRECT_ALIGN
      const need = from + n - start
      const span = Math.min(alignUp(from + n), alignUp(size)) - start
      const bounce = bounces.take(span)
      try {
        let got = 0
        while (got < need) {
          if (!open) throw new ClosedError('The reader is closed')
          let bytesRead: number
          try {
            ({ bytesRead } = await dh.read(bounce, got, span - got, start + got))
          } catch (err) {
            // No byte was copied out before the first segment is done: the page cache can take over.
            if ((err as NodeJS.ErrnoException).code === 'EINVAL' && done === 0) return false
            throw storageError('read data file', err)
          }
          // Only the end of the file comes back short of an aligned length.
          if (bytesRead === 0 || (got + bytesRead < need && (got + bytesRead) % DIRECT_ALIGN !== 0)) {
            throw new StorageError(`Data file is shorter than its index entry (${start + got + bytesRead} bytes)`)
          }
          got += bytesRead
        }
        use(bounce.subarray(from - start, from - start + n), done)
      } finally {
        bounces.release(bounce)
      }
      direct?.counted(n)
      done += n
    }
    return true
  }
  /** readv's body: directly when so chosen (scattered out of the bounce buffers), else one readv call at a time. */
  const readvFrom = async (offset: number, targets: Uint8Array[], length: number): Promise<void> => {
    const dh = await directHandle()
    if (!open) throw new ClosedError('The reader is closed')
    if (dh !== undefined && direct !== undefined && length > 0) {
      // Targets in order: the one holding the next byte, and where in it.
      let i = 0
      let inTarget = 0
      const scatter = (bytes: Uint8Array): void => {
        for (let at = 0; at < bytes.length;) {
          while (inTarget === targets[i].length) { i++; inTarget = 0 }
          const n = Math.min(bytes.length - at, targets[i].length - inTarget)
          targets[i].set(bytes.subarray(at, at + n), inTarget)
          inTarget += n
          at += n
        }
      }
      if (await readDirect(dh, direct.bounces, offset, length, scatter)) return
      refused = true
    }
    await readFullyV(handle, offset, targets)
  }
  return {
    size,
    read: async (offset, length, into) => {
      if (!open) throw new ClosedError('The reader is closed')
      checkRead(size, offset, length)
      try {
        const dh = await directHandle()
        if (!open) throw new ClosedError('The reader is closed')
        if (dh !== undefined && direct !== undefined && length > 0) {
          const out = into !== undefined && into.length >= length ? into.subarray(0, length) : new Uint8Array(length)
          if (await readDirect(dh, direct.bounces, offset, length, (bytes, at) => { out.set(bytes, at) })) return out
          refused = true
        }
        return await readFully(handle, offset, length, into)
      } catch (err) {
        throw failure(err)
      }
    },
    readv: async (offset, targets) => {
      if (!open) throw new ClosedError('The reader is closed')
      const length = targets.reduce((n, t) => n + t.length, 0)
      checkRead(size, offset, length)
      try {
        await readvFrom(offset, targets, length)
      } catch (err) {
        throw failure(err)
      }
    },
    close: async () => {
      if (!open) return
      open = false
      const dh = chosen !== undefined ? await chosen : undefined
      await Promise.all([handle.close().catch(() => {}), dh?.close().catch(() => {})])
    }
  }
}
