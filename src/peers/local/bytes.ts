/** Joining the verified pieces of a transfer into one value, copying only when it must. */
import { freshBytes, prefault } from '../../core/prefault.js'

/** Whether `parts` are consecutive views of `buffer` from its first byte. */
export function tiles (parts: Uint8Array[], buffer: Uint8Array): boolean {
  let at = buffer.byteOffset
  for (const p of parts) {
    if (p.buffer !== buffer.buffer || p.byteOffset !== at) return false
    at += p.length
  }
  return at === buffer.byteOffset + buffer.length
}

/** The `n` bytes of `parts`, one after the other (a single whole part is returned as is). */
export function concat (parts: Uint8Array[], n: number): Uint8Array {
  if (parts.length === 1 && parts[0].length === n) return parts[0]
  const out = freshBytes(n)
  prefault(out)
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
