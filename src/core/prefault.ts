/**
 * Backing fresh memory before it is filled. A large ArrayBuffer (`new Uint8Array(n)`) starts
 * with no memory behind it: the kernel maps a zeroed page at the first write of each 4 KiB,
 * one page fault each. Filling 256 MiB that way costs about 150 ms of CPU on this project's
 * VMs (a 16 KiB copy at a time, as a transfer fills its buffer), half of it the faults' own
 * traps; asked for in one `madvise(MADV_POPULATE_WRITE)` per MiB before the copies, the same
 * fill costs 80–95 ms (`native/dstore_memory.c` `prefault`; measured 2026-12-04, 6 rounds each,
 * alternating). The bytes are unchanged; only when the kernel does the work changes.
 *
 * Where the addon is missing, the platform is not Linux or the kernel is older than 5.14 (no
 * such advice), this does nothing, and the first writes fault as before.
 */
import { loadNativeAddon } from './native.js'

/** Below this a view is not worth a system call (its pages may well be backed already). */
const MIN_PREFAULT = 64 * 1024

/** False once the kernel refused the advice: not asked again in this thread. */
let supported = true

/**
 * Backs the whole pages of `view`'s memory for writing, in one system call, where this system
 * can (see the module's comment); otherwise does nothing. Never throws for a Uint8Array.
 */
export function prefault (view: Uint8Array): void {
  if (!supported || view.length < MIN_PREFAULT) return
  const addon = loadNativeAddon()
  if (addon === undefined || addon.prefault(view) < 0) supported = false
}
