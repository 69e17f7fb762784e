/** In-process coordination of an fs store: per-key mutexes and shard-folder creation. */
import { mkdir } from 'node:fs/promises'
import { fsyncDir, storage } from './io.js'

/** A mutex per key: `run` calls for one key go one at a time, in call order; other keys are not blocked. */
export class KeyLocks {
  private readonly locks = new Map<string, Promise<void>>()

  /** Runs `fn` once every earlier `run` of `key` has finished. */
  async run<T> (key: Buffer, fn: () => Promise<T>): Promise<T> {
    const id = key.toString('hex')
    const previous = this.locks.get(id)
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const chained = previous === undefined ? mine : previous.then(async () => await mine)
    this.locks.set(id, chained)
    try {
      if (previous !== undefined) await previous
      return await fn()
    } finally {
      release()
      if (this.locks.get(id) === chained) this.locks.delete(id)
    }
  }
}

/**
 * Shard folders under blobs/: the promise resolves once the folder exists and its entry in
 * blobs/ is durable (also when it already existed: a crashed process may have made it without
 * the fsync). Concurrent puts into a new shard share one creation; a failed one is retried.
 */
export class Shards {
  private readonly ready = new Map<string, Promise<void>>()

  constructor (private readonly blobs: string, private readonly sync: boolean) {}

  /** Resolves once `shard` (a folder in blobs/) exists and is durable. */
  async ensure (shard: string): Promise<void> {
    let ready = this.ready.get(shard)
    if (ready === undefined) {
      ready = storage('create blob shard folder', async () => {
        await mkdir(shard, { recursive: true })
        if (this.sync) await fsyncDir(this.blobs)
      })
      const mine = ready
      this.ready.set(shard, mine)
      mine.catch(() => { if (this.ready.get(shard) === mine) this.ready.delete(shard) })
    }
    await ready
  }
}
