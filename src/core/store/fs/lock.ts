/**
 * One process per store: `LOCK` holds the owner's pid. It is created exclusively (`wx`), so of
 * two processes opening a store at once only one gets it. A lock left by a dead process (a
 * crash) is taken over; a live owner, or a second open in this process, is refused.
 */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { StorageError } from '../../errors.js'
import { storage, storageError } from './io.js'

/** Lock files held in this process, so a second open of the same folder is refused. */
const openInProcess = new Set<string>()

/**
 * Takes the store's lock. `lock` must be derived from the folder's real path, so another
 * spelling of the same folder (relative, a symlink) is the same lock.
 */
export async function acquireLock (root: string, lock: string): Promise<void> {
  if (openInProcess.has(lock)) throw new StorageError(`Store ${root} is already open in this process`)
  // Claimed before any await, so a concurrent open in this process is refused above.
  openInProcess.add(lock)
  try {
    for (;;) {
      try {
        await writeFile(lock, String(process.pid), { flag: 'wx' })
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw storageError('create lock file', err)
      }
      let text: string
      try {
        text = await readFile(lock, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue // released meanwhile: try again
        throw storageError('read lock file', err)
      }
      const owner = Number.parseInt(text, 10)
      if (Number.isSafeInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new StorageError(`Store ${root} is in use by process ${owner} (remove ${lock} if that is wrong)`, { lockedBy: owner })
      }
      // Left by a process that is gone (or by an earlier process with our pid): take it over.
      await storage('write lock file', async () => { await writeFile(lock, String(process.pid)) })
      return
    }
  } catch (err) {
    openInProcess.delete(lock)
    throw err
  }
}

/** Releases a lock taken by {@link acquireLock} (nothing when this process does not hold it). */
export async function releaseLock (lock: string): Promise<void> {
  if (!openInProcess.delete(lock)) return
  await rm(lock, { force: true }).catch(() => {})
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
