/**
 * The buffers dstore hands out read-only: a cache's values (a Local's get returns the cache's
 * own array, shared by every caller) and the pieces of a shared transfer. A get `into` a
 * caller's buffer refuses one of them, which would write over a value other callers and the
 * cache still read (the easy mistake: reusing the array an earlier get returned).
 *
 * Marked for good: a value evicted from the cache may still be held by the callers it was
 * handed to. A WeakSet holds nothing alive, so marking costs no memory beyond the buffer's life.
 * Process-wide, like the arrays: a value of one Local is as read-only to another.
 */
const readOnly = new WeakSet<ArrayBufferLike>()

/** Marks the buffer under `view` as handed out read-only. */
export function markReadOnly (view: Uint8Array): void {
  readOnly.add(view.buffer)
}

/** Whether the buffer under `view` was handed out read-only. */
export function isReadOnly (view: Uint8Array): boolean {
  return readOnly.has(view.buffer)
}
