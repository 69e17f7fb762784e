/**
 * The cache's copy of a value put from the caller's array, made while the value is sent.
 *
 * The cache must not keep the caller's array (the caller may change it once put returns), so
 * it keeps a copy: into fresh memory, so it costs page faults as much as bytes (about 0.3 s for
 * 256 MiB here; each step's pages are now backed in one call first, core/prefault.ts). Made
 * after Global answered, that was time added to every put; made a step at a time while the
 * send waits for the network and for credit, it is not.
 */

import { freshBytes, prefault } from '../../core/prefault.js'

/** Bytes {@link copyAlongside} copies at a time, between other work of the event loop. */
const COPY_STEP = 1 << 20

/**
 * Copies `data` into fresh memory a step at a time, each step in its own turn of the event loop
 * (setImmediate), so that the copy fills the time a send spends waiting for the network rather
 * than adding to it. `data` must not change until `done`
 * settles; `stop()` ends the copy early (then `done` rejects, and the copy must not be used).
 */
export function copyAlongside (data: Uint8Array): { copy: Uint8Array, done: Promise<void>, stop: () => void } {
  const copy = freshBytes(data.length)
  let stopped = false
  const done = (async () => {
    for (let off = 0; off < data.length; off += COPY_STEP) {
      if (off > 0) await new Promise(resolve => setImmediate(resolve))
      if (stopped) throw new Error('copy stopped')
      prefault(copy.subarray(off, off + COPY_STEP))
      copy.set(data.subarray(off, off + COPY_STEP), off)
    }
  })()
  done.catch(() => {})
  return { copy, done, stop: () => { stopped = true } }
}
