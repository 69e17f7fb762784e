/**
 * BLAKE3 group hashing in worker threads, so a large put can hash on more than one core.
 *
 * A {@link HashPool} owns a few workers (each runs `hash-worker.ts`, a file of its own so that
 * bundles can ship it beside themselves). A job names a range
 * of a `SharedArrayBuffer` holding whole chunk groups and the chunk counter of its first
 * group; the worker computes the groups' chaining values with its own instance of the BLAKE3
 * backend (`./index.js`: the native addon where it was built, else the WebAssembly SIMD module
 * instantiated from the generated `wasm-binary.ts`, or the portable one when forced or
 * unsupported) and posts them back. (With the native backend the store runs no workers by
 * default: fs.ts, `DEFAULT_HASH_WORKERS`.)
 * The caller feeds them, in order, to a `TreeHasher` (`updateGroupCVs`), which keeps the
 * tree merging and the outboard. The data is shared, never copied to or from the worker.
 *
 * Workers are spawned lazily, referenced (keeping the process alive) only while they have
 * jobs, and terminated by {@link HashPool.close}. A worker that throws or exits fails its
 * pending jobs with {@link StorageError} and is replaced at the next job.
 */
import { Worker } from 'node:worker_threads'
import { StorageError } from '../errors.js'
import { OUT_LEN, CHUNK_LEN } from './interface.js'

/** A hashing job, as posted to a worker. */
export interface Job {
  id: number
  buffer: SharedArrayBuffer
  offset: number
  length: number
  counter: number
  groupLog: number
  /** Tests only: throw inside the worker instead of hashing. */
  crash?: boolean
}

/** A worker's answer. */
export interface Reply {
  id: number
  cvs: Uint8Array
  /** Time the worker spent hashing, ms. */
  ms: number
}

/** What a job returns: the groups' CVs (32 bytes each) and the worker's hashing time in ms. */
export interface GroupHashResult {
  cvs: Uint8Array
  ms: number
}

interface Pending {
  resolve: (result: GroupHashResult) => void
  reject: (err: Error) => void
}

interface Slot {
  worker: Worker
  pending: Map<number, Pending>
  dead: boolean
}

/** A small pool of hashing workers. */
export class HashPool {
  /** Number of workers. */
  readonly size: number
  private readonly slots: Array<Slot | undefined>
  private nextId = 0
  private closed = false

  constructor (size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError('HashPool needs at least one worker')
    this.size = size
    this.slots = new Array<Slot | undefined>(size).fill(undefined)
  }

  /**
   * Chaining values of the whole groups in `data` (a view of a SharedArrayBuffer; its length a
   * multiple of the group length), the first group starting at chunk `chunkCounter`. `data`
   * must not change until the promise settles. Rejects with StorageError if the worker dies.
   */
  async groupCVs (data: Uint8Array, chunkCounter: number, groupLog: number): Promise<GroupHashResult> {
    if (!(data.buffer instanceof SharedArrayBuffer)) throw new TypeError('HashPool needs data in a SharedArrayBuffer')
    if (data.length % (CHUNK_LEN * 2 ** groupLog) !== 0) throw new TypeError('HashPool hashes whole groups only')
    return await this.submit({ id: 0, buffer: data.buffer, offset: data.byteOffset, length: data.length, counter: chunkCounter, groupLog })
  }

  /** Tests only: makes a worker throw (as a bug in it would); its pending jobs and this one reject. */
  async crashForTest (): Promise<GroupHashResult> {
    return await this.submit({ id: 0, buffer: new SharedArrayBuffer(0), offset: 0, length: 0, counter: 0, groupLog: 0, crash: true })
  }

  /** Terminates the workers; pending jobs reject with StorageError. */
  async close (): Promise<void> {
    this.closed = true
    const workers: Worker[] = []
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i]
      if (slot === undefined) continue
      this.slots[i] = undefined
      this.fail(slot, new StorageError('Hash worker pool closed'))
      workers.push(slot.worker)
    }
    await Promise.allSettled(workers.map(async w => await w.terminate()))
  }

  private async submit (job: Job): Promise<GroupHashResult> {
    if (this.closed) throw new StorageError('Hash worker pool closed')
    const slot = this.pick()
    const id = ++this.nextId
    job.id = id
    return await new Promise<GroupHashResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject })
      if (slot.pending.size === 1) slot.worker.ref()
      try {
        slot.worker.postMessage(job)
      } catch (err) {
        slot.pending.delete(id)
        if (slot.pending.size === 0) slot.worker.unref()
        reject(new StorageError(`Could not send a job to a hash worker: ${(err as Error)?.message}`, { cause: err }))
      }
    })
  }

  /** The live worker with the fewest pending jobs, spawning one where there is none. */
  private pick (): Slot {
    let best: Slot | undefined
    for (let i = 0; i < this.slots.length; i++) {
      let slot = this.slots[i]
      if (slot === undefined || slot.dead) {
        slot = this.spawn()
        this.slots[i] = slot
      }
      if (best === undefined || slot.pending.size < best.pending.size) best = slot
      if (best.pending.size === 0) break
    }
    return best as Slot
  }

  private spawn (): Slot {
    // The parent's Node flags, less those that only apply to a main script given as text.
    const execArgv = process.execArgv.filter(a => !a.startsWith('--input-type'))
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url), { execArgv })
    worker.unref()
    const slot: Slot = { worker, pending: new Map(), dead: false }
    worker.on('message', (reply: Reply) => {
      const p = slot.pending.get(reply.id)
      if (p === undefined) return
      slot.pending.delete(reply.id)
      if (slot.pending.size === 0) worker.unref()
      p.resolve({ cvs: reply.cvs, ms: reply.ms })
    })
    worker.on('error', err => {
      this.fail(slot, new StorageError(`Hash worker failed: ${err?.message ?? String(err)}`, { cause: err }))
    })
    worker.on('messageerror', err => {
      this.fail(slot, new StorageError(`Hash worker message could not be read: ${err?.message ?? String(err)}`, { cause: err }))
    })
    worker.on('exit', code => {
      this.fail(slot, new StorageError(`Hash worker exited (code ${code})`))
    })
    return slot
  }

  /** Marks a worker dead and rejects its pending jobs. */
  private fail (slot: Slot, err: StorageError): void {
    if (!slot.dead) {
      slot.dead = true
      slot.worker.unref()
      // A worker that threw may still be running: stop it (its exit is then ignored).
      if (!this.closed) void slot.worker.terminate().catch(() => {})
    }
    const pending = [...slot.pending.values()]
    slot.pending.clear()
    for (const p of pending) p.reject(err)
  }
}
