/**
 * Direct writes (`O_DIRECT`, Linux) of a large put's temp file: the bytes go from a staging
 * slot to the disk without a page-cache copy. A put makes its data durable before it resolves
 * anyway (fdatasync), so the page cache only costs it: the kernel allocates, zeroes and fills a
 * page per 4 KiB, then writes it back. On this project's 2-core VM that was 2.3–2.9 s of kernel
 * CPU per GB, more than the whole raw TLS receiver; a direct write of the same 256 MiB took
 * 7–19 ms of CPU (docs/STORAGE.md, "Writing a value").
 *
 * A direct write needs its buffer's address, its file offset and its length to be multiples of
 * the disk's logical block size; {@link DIRECT_ALIGN} (4 KiB) covers every common one. Slots
 * are carved aligned out of a slightly larger SharedArrayBuffer, which needs the native addon
 * to see addresses; the value's last, partial slot is written padded with zeros to the
 * alignment, and the file is then truncated to the value's size. Whether a filesystem takes
 * direct writes is found by a probe (a 4 KiB direct write to a new file in the store's tmp/) at
 * the first large put; where it does not (no addon, not Linux, a filesystem that refuses
 * O_DIRECT), puts write through the page cache as before.
 *
 * What it changes for reads: a value just put is not in the page cache, so the first read of
 * it goes to the disk.
 */
import { constants } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { loadNativeAddon } from '../../native.js'

/** Alignment of a direct write's buffer address, file offset and length. */
export const DIRECT_ALIGN = 4096

/** `O_DIRECT`, where this platform has it and the addon can tell buffer addresses; else undefined. */
function directFlag (): number | undefined {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT
  return flag !== undefined && flag !== 0 && loadNativeAddon() !== undefined ? flag : undefined
}

/** Open flags of a new temp file written directly (create, exclusive, write only). */
export function directOpenFlags (): number {
  const flag = directFlag()
  if (flag === undefined) throw new Error('O_DIRECT is not available here')
  return constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | flag
}

/** Whether `view`'s first byte lies at a multiple of {@link DIRECT_ALIGN} (false without the addon). */
export function isAligned (view: Uint8Array): boolean {
  const addon = loadNativeAddon()
  return addon !== undefined && addon.misalignment(view, DIRECT_ALIGN) === 0
}

/**
 * A zeroed Buffer of `size` bytes on a SharedArrayBuffer (so hash workers can read it), whose
 * first byte is aligned to {@link DIRECT_ALIGN} when the addon can tell addresses. It keeps
 * its SharedArrayBuffer, and so its address, for its life.
 */
export function alignedSlot (size: number): Buffer {
  const addon = loadNativeAddon()
  if (addon === undefined) return Buffer.from(new SharedArrayBuffer(size))
  const sab = new SharedArrayBuffer(size + DIRECT_ALIGN)
  const mis = addon.misalignment(new Uint8Array(sab, 0, 1), DIRECT_ALIGN)
  return Buffer.from(sab, mis === 0 ? 0 : DIRECT_ALIGN - mis, size)
}

/** `length` rounded up to a multiple of {@link DIRECT_ALIGN}. */
export function alignUp (length: number): number {
  return Math.ceil(length / DIRECT_ALIGN) * DIRECT_ALIGN
}

/**
 * Whether the filesystem of folder `dir` takes direct writes: one aligned 4 KiB block written
 * with O_DIRECT to a new file there, which is then removed. False without O_DIRECT or the
 * addon; false (for this call only: the caller may ask again later) on any other failure too,
 * so a put then writes through the page cache and meets the same failure there, reported as
 * its own.
 */
export async function probeDirect (dir: string): Promise<{ direct: boolean, final: boolean }> {
  if (directFlag() === undefined) return { direct: false, final: true }
  const path = join(dir, `direct-probe-${process.pid}-${randomBytes(6).toString('hex')}`)
  let handle
  try {
    handle = await open(path, directOpenFlags(), 0o600)
    const block = alignedSlot(DIRECT_ALIGN)
    const { bytesWritten } = await handle.write(block, 0, DIRECT_ALIGN, 0)
    return { direct: bytesWritten === DIRECT_ALIGN, final: true }
  } catch (err) {
    // EINVAL: this filesystem refuses O_DIRECT (at open) or this alignment (at write).
    const code = (err as NodeJS.ErrnoException).code
    return { direct: false, final: code === 'EINVAL' || code === 'EOPNOTSUPP' }
  } finally {
    await handle?.close().catch(() => {})
    await rm(path, { force: true }).catch(() => {})
  }
}
