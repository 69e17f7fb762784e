/**
 * Hashing a large value in hand for a put, on worker threads, in the same pass as the copy the
 * cache keeps.
 *
 * A put must know its key before anything is sent (Global is asked first: dedupe), so hashing
 * is on the put's critical path, and the cache needs its own copy of the caller's array (the
 * caller may change it once put returns). Both are done here in one pass: each SLOT of the
 * value is copied into a SharedArrayBuffer and handed to a worker ({@link HashPool}), which
 * hashes it while the main thread copies the next. The copy is what the put then sends (the
 * bytes hashed are the bytes sent) and what the cache adopts, with the outboard built from
 * the same tree (a put value is not hashed again the first time it is served).
 *
 * A value that is not to be cached is staged through a few reused slots instead (no fresh
 * memory, so no page faults) and sent from the caller's array.
 */
import type { GroupHashResult, HashPool } from '../../core/blake3/worker.js'
import { CHUNK_LEN } from '../../core/blake3/interface.js'
import { TreeHasher } from '../../core/tree.js'

/** Bytes hashed per worker job: a multiple of the 16 KiB chunk group. */
export const SLOT = 4 << 20
/** Values from this size are hashed on workers; smaller ones on the main thread (a job costs a round trip). */
export const PARALLEL_MIN = 2 * SLOT
/** Jobs in flight at once. */
const IN_FLIGHT = 4

/** What {@link hashAndCopy} returns. */
export interface HashedCopy {
  /** BLAKE3 root hash of the value. */
  root: Uint8Array
  /** With `keep`: the outboard of the value. */
  outboard: Uint8Array | undefined
  /** With `keep`: a copy of the value (in a SharedArrayBuffer), owned by the caller. */
  copy: Uint8Array | undefined
}

interface Job { hashed: Promise<GroupHashResult>, slot: Uint8Array | undefined }

/**
 * Hashes `data` (at least {@link PARALLEL_MIN} bytes) on `pool`; with `keep`, also returns a
 * copy of it and its outboard. `data` is read during the call only.
 */
export async function hashAndCopy (pool: HashPool, data: Uint8Array, keep: boolean): Promise<HashedCopy> {
  const hasher = new TreeHasher({ outboard: keep })
  const copy = keep ? new Uint8Array(new SharedArrayBuffer(data.length)) : undefined
  const free: Uint8Array[] = []
  const queue: Job[] = []
  const retire = async (): Promise<void> => {
    const job = queue[0]
    const { cvs } = await job.hashed
    queue.shift()
    hasher.updateGroupCVs(cvs)
    if (job.slot !== undefined) free.push(job.slot)
  }
  const whole = data.length - data.length % SLOT
  try {
    for (let off = 0; off < whole; off += SLOT) {
      if (queue.length >= IN_FLIGHT) await retire()
      const piece = data.subarray(off, off + SLOT)
      let slot: Uint8Array | undefined
      let target: Uint8Array
      if (copy !== undefined) {
        target = copy.subarray(off, off + SLOT)
      } else {
        slot = free.pop() ?? new Uint8Array(new SharedArrayBuffer(SLOT))
        target = slot
      }
      target.set(piece)
      const hashed = pool.groupCVs(target, off / CHUNK_LEN, hasher.groupLog)
      hashed.catch(() => {}) // awaited in order by retire; a failure must not go unhandled meanwhile
      queue.push({ hashed, slot })
    }
    // The tail (less than a slot) on the main thread while the last jobs run.
    const tail = data.subarray(whole)
    let tailCopy = tail
    if (copy !== undefined) { tailCopy = copy.subarray(whole); tailCopy.set(tail) }
    while (queue.length > 0) await retire()
    hasher.update(tailCopy)
  } catch (err) {
    // The workers read our slots until their jobs settle.
    await Promise.allSettled(queue.map(async j => await j.hashed))
    throw err
  }
  const { root, outboard } = hasher.finalize()
  return { root, outboard, copy }
}

/** Bytes {@link copyAlongside} copies at a time, between other work of the event loop. */
const COPY_STEP = 1 << 20

/**
 * Copies `data` into fresh memory a step at a time, each step in its own turn of the event loop
 * (setImmediate), so that the copy fills the time a send spends waiting for the network rather
 * than adding to it (when no worker hashes: one core). `data` must not change until `done`
 * settles; `stop()` ends the copy early (then `done` rejects, and the copy must not be used).
 */
export function copyAlongside (data: Uint8Array): { copy: Uint8Array, done: Promise<void>, stop: () => void } {
  const copy = new Uint8Array(data.length)
  let stopped = false
  const done = (async () => {
    for (let off = 0; off < data.length; off += COPY_STEP) {
      if (off > 0) await new Promise(resolve => setImmediate(resolve))
      if (stopped) throw new Error('copy stopped')
      copy.set(data.subarray(off, off + COPY_STEP), off)
    }
  })()
  done.catch(() => {})
  return { copy, done, stop: () => { stopped = true } }
}
