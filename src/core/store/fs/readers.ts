/** The fs store's random-access readers (`FsBlobStore.open`). */
import type { FileHandle } from 'node:fs/promises'
import { ClosedError } from '../../errors.js'
import type { BlobReader } from '../interface.js'
import { checkRead } from '../util.js'
import { readFully, readFullyV } from './io.js'

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

/**
 * A reader holding an open data file, so it can finish reading after the value is deleted
 * (and after the store is closed). Reads return fresh arrays (or fill `into`); `readv`
 * scatters a read into the caller's arrays (one system call for all of them).
 */
export function fileReader (handle: FileHandle, size: number): BlobReader {
  let open = true
  return {
    size,
    read: async (offset, length, into) => {
      if (!open) throw new ClosedError('The reader is closed')
      checkRead(size, offset, length)
      return await readFully(handle, offset, length, into)
    },
    readv: async (offset, targets) => {
      if (!open) throw new ClosedError('The reader is closed')
      checkRead(size, offset, targets.reduce((n, t) => n + t.length, 0))
      await readFullyV(handle, offset, targets)
    },
    close: async () => {
      if (open) { open = false; await handle.close().catch(() => {}) }
    }
  }
}
