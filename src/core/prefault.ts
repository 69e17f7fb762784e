/**
 * Backing fresh memory before a transfer fills it. A large ArrayBuffer fresh from the kernel
 * has no memory behind it: the kernel maps a zeroed page at the first write of each 4 KiB, one
 * page fault each. Filling 256 MiB that way, a 16 KiB copy at a time as a transfer fills its
 * buffer, took 142–165 ms on this project's VM (CPU median 157 ms); asked for in one
 * `madvise(MADV_POPULATE_WRITE)` per MiB (as the decoder's batches come) before the copies,
 * the same fill took 75–102 ms (CPU median 93 ms) (`native/dstore_memory.c` `prefault`;
 * 2026-12-04, 12 rounds each, in two processes per mode, alternating). The bytes are
 * unchanged; only when the kernel does the work changes.
 *
 * Only memory dstore allocated for a transfer to fill ({@link freshBytes}) is backed: a
 * caller's buffer may be resident already (a page-table walk for nothing) or a file mapping
 * (where a write fault dirties pages the transfer may never reach). Where the addon is missing,
 * the platform is not Linux or the kernel is older than 5.14 (no such advice), this does
 * nothing, and the first writes fault as before.
 */
import { loadNativeAddon } from './native.js'

/** Below this a view is not worth a system call (its pages may well be backed already). */
const MIN_PREFAULT = 64 * 1024
/** Most bytes backed per system call: the kernel holds the process's mmap lock meanwhile. */
const PREFAULT_STEP = 4 * 1024 * 1024

/** False once this system answered that it cannot (addon missing, not Linux, kernel too old). */
let supported = true
/** Buffers allocated by {@link freshBytes}: the only memory {@link prefault} backs. */
const fresh = new WeakSet<ArrayBufferLike>()

/**
 * A zeroed array of `size` bytes for a transfer to fill: a `new Uint8Array(size)` whose views
 * {@link prefault} may back.
 */
export function freshBytes (size: number): Uint8Array {
  const bytes = new Uint8Array(size)
  if (size >= MIN_PREFAULT) fresh.add(bytes.buffer)
  return bytes
}

/**
 * Backs the whole pages of `view` for writing, a step at a time, where `view` is of a buffer
 * from {@link freshBytes} and this system can (see the module's comment); otherwise does
 * nothing. A failure of one call (memory pressure, say) only skips that call. Never throws.
 */
export function prefault (view: Uint8Array): void {
  if (!supported || view.length < MIN_PREFAULT || !fresh.has(view.buffer)) return
  const addon = loadNativeAddon()
  if (addon?.prefault === undefined) { supported = false; return }
  for (let at = 0; at < view.length; at += PREFAULT_STEP) {
    // -1: this system cannot; -2: this call failed (ignored: the writes fault as before).
    if (addon.prefault(view.subarray(at, at + PREFAULT_STEP)) === -1) { supported = false; return }
  }
}
