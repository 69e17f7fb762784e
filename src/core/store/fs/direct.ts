/**
 * Direct I/O (`O_DIRECT`, Linux) of large values' files: a put's temp file is written from a
 * staging slot to the disk without a page-cache copy, and a read of a file the page cache does
 * not hold goes past it too (below). A put makes its data durable before it resolves
 * anyway (fdatasync), so the page cache only costs it: the kernel allocates, zeroes and fills a
 * page per 4 KiB, then writes it back. On this project's 2-core VM that was 2.3–2.9 s of kernel
 * CPU per GB, more than the whole raw TLS receiver; a direct write of the same 256 MiB took
 * 0.04–0.12 s of system CPU (`dd`, docs/STORAGE.md, "Direct I/O").
 *
 * A direct write needs its buffer's address, its file offset and its length to be multiples of
 * the disk's logical block size; {@link DIRECT_ALIGN} (4 KiB) covers every common one. Slots
 * are carved aligned out of a slightly larger SharedArrayBuffer, which needs the native addon
 * to see addresses; the value's last, partial slot is written padded with zeros to the
 * alignment, and the file is then truncated to the value's size. Whether a filesystem takes
 * direct I/O is found once per store by a probe ({@link DirectProbe}: a 4 KiB direct write to a
 * new file in the store's tmp/); where it does not (no addon, not Linux, a filesystem that
 * refuses O_DIRECT), the store reads and writes through the page cache as before.
 *
 * Reads: a value of DIRECT_MIN_SIZE or more just put is not in the page cache. Reading it through the page cache would
 * make the kernel allocate and fill it at the first read instead (the same cost, moved from
 * the put to the first get), so a read of a file the page cache does not hold is direct too,
 * through an aligned bounce buffer, and leaves the page cache as it was. A value read again
 * soon after a whole direct read ({@link ReadAdmission}) is read through the page cache, which
 * then keeps it: a value earns its place in the page cache by its second read (as CDNs "cache
 * on second hit"), and one read once, or never, does not push hot ones out.
 *
 * Small files ({@link DIRECT_MIN_SIZE}) go through the page cache both ways: there the page
 * cache costs little CPU, and a value read soon after its put (the common case of a store that
 * many readers fetch from) is then served from memory instead of from the disk.
 */
import { constants } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { loadNativeAddon } from '../../native.js'

/** Alignment of a direct write's buffer address, file offset and length. */
export const DIRECT_ALIGN = 4096

/**
 * Values smaller than this are written and read through the page cache, even where direct I/O
 * is on (at most put.ts's SLOT: a put learns it at its only write). A direct write saves about
 * 2.2–3.6 ms of kernel CPU per MiB (`dd`, docs/STORAGE.md), but leaves the value on the disk
 * only: the first get of a 1 MiB value just put then waited on a disk read, a median of 19.8 ms
 * against 16.9 through the page cache (2026-12-04, a fresh Local per get, 15 alternating
 * rounds), while at 4 MiB the two were the same (45.0 and 45.6 ms).
 */
export const DIRECT_MIN_SIZE = 4 * 1024 * 1024

/** `O_DIRECT` on Linux, where the addon can tell buffer addresses; else undefined. */
function directFlag (): number | undefined {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT
  return process.platform === 'linux' && flag !== undefined && flag !== 0 && loadNativeAddon() !== undefined ? flag : undefined
}

/**
 * Open flags with O_DIRECT: `create`, a new file written directly (create, exclusive, write
 * only); `read`, a data file read directly (read only).
 */
export function directFlags (access: 'create' | 'read'): number {
  const flag = directFlag()
  if (flag === undefined) throw new Error('O_DIRECT is not available here')
  return flag | (access === 'create' ? constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL : constants.O_RDONLY)
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
    handle = await open(path, directFlags('create'), 0o600)
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

/** How long after a probe failed without an answer (a full disk, say) a store waits before another. */
const PROBE_RETRY_MS = 60_000

/**
 * A store's answer to whether its folder takes direct I/O: {@link probeDirect} run once, its
 * answer kept; a probe that fails without one counts as no for PROBE_RETRY_MS, then runs again.
 */
export class DirectProbe {
  /** The settled answer, once there is one. */
  private answer: boolean | undefined
  /** The probe in flight. */
  private probing: Promise<boolean> | undefined
  private failedAt = -Infinity

  /** `enabled` false: never probes, and the answer is no. */
  constructor (private readonly dir: string, private readonly enabled: boolean) {
    if (!enabled) this.answer = false
  }

  /** The answer, probing first if there is none yet (and none failed within the last minute). */
  async check (): Promise<boolean> {
    if (this.answer !== undefined) return this.answer
    if (Date.now() - this.failedAt < PROBE_RETRY_MS) return false
    this.probing ??= probeDirect(this.dir).then(({ direct, final }) => {
      if (final) this.answer = direct
      else this.failedAt = Date.now()
      return direct
    }).finally(() => { this.probing = undefined })
    return await this.probing
  }

  /** Whether the settled answer is yes. */
  get settledYes (): boolean {
    return this.answer === true
  }
}

/** How much of a file's start the page-cache check looks at. */
const CACHED_SAMPLE = 64 << 20

/**
 * Whether the page cache holds at least half of the open file `fd`'s first bytes (up to 64 MiB
 * of its `size`). True wherever that cannot be told (no addon, not Linux, a file of another
 * owner, a filesystem that refuses the shared mapping `mincore` needs), so such a read goes
 * through the page cache as it always did.
 */
export function pageCached (fd: number, size: number): boolean {
  const addon = loadNativeAddon()
  if (addon === undefined || size === 0) return true
  const length = Math.min(size, CACHED_SAMPLE)
  let resident: number
  try {
    resident = addon.residentBytes(fd, 0, length)
  } catch {
    return true
  }
  return resident < 0 || resident * 2 >= length
}

/** How long {@link ReadAdmission} remembers a value's direct reads after the last one. */
export const READMIT_MS = 60_000
/** Values {@link ReadAdmission} remembers at most (the least recently read are forgotten first). */
const READMIT_ENTRIES = 4096

/**
 * Which reads of files the page cache does not hold go past it. A value's reads are direct
 * until as many bytes of it as it has were read directly (about one whole read, whatever the
 * pieces: a get's first groups and its stream are two readers), and stay direct if its last
 * direct read is more than {@link READMIT_MS} ago; a read after that goes through the page
 * cache, which then holds the value. A bounded, in-process memory (by hex digest).
 */
export class ReadAdmission {
  private readonly reads = new Map<string, { bytes: number, last: number }>()

  /** Whether a reader of `key` (of `size` bytes, not in the page cache) starting now reads directly. */
  direct (key: string, size: number, now = Date.now()): boolean {
    const e = this.reads.get(key)
    if (e === undefined) return true
    if (now - e.last > READMIT_MS) { this.reads.delete(key); return true }
    return e.bytes < size
  }

  /** Counts `bytes` of `key` read directly. */
  record (key: string, bytes: number, now = Date.now()): void {
    const e = this.reads.get(key) ?? { bytes: 0, last: now }
    this.reads.delete(key)
    e.bytes += bytes
    e.last = now
    this.reads.set(key, e)
    if (this.reads.size > READMIT_ENTRIES) this.reads.delete(this.reads.keys().next().value as string)
  }
}

/** Idle bounce buffers a store keeps for direct reads. */
const IDLE_BOUNCES = 8
/** The most one direct read call reads (a larger read is made of several). */
export const BOUNCE_MAX = 4 << 20
/** Bounce buffers are made in multiples of this, so pieces of one size share them. */
const BOUNCE_STEP = 1 << 20

/**
 * Aligned buffers that direct reads land in before their bytes are copied out: at most
 * {@link BOUNCE_MAX} and an alignment at each end (made in 1 MiB steps), so at most 8 idle ones
 * of about 5 MiB stay.
 */
export class BouncePool {
  private readonly idle: Buffer[] = []

  /** An aligned buffer of at least `length` (at most BOUNCE_MAX + 2 × DIRECT_ALIGN) bytes, its contents arbitrary. */
  take (length: number): Buffer {
    if (length > BOUNCE_MAX + 2 * DIRECT_ALIGN) throw new RangeError(`A bounce buffer of ${length} bytes is larger than a direct read takes`)
    const i = this.idle.findIndex(b => b.length >= length)
    if (i >= 0) return this.idle.splice(i, 1)[0]
    return alignedSlot(Math.ceil(length / BOUNCE_STEP) * BOUNCE_STEP)
  }

  /** Gives back a buffer no read or copy uses any more. */
  release (buffer: Buffer): void {
    if (this.idle.length < IDLE_BOUNCES) this.idle.push(buffer)
  }

  /** Drops the idle buffers. */
  clear (): void {
    this.idle.length = 0
  }
}
