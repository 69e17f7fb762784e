/**
 * One process per store: `LOCK` names the owner (`<pid> <id>\n`, `id` random per lock file).
 *
 * Taking it: write the content to a private temp file `LOCK.<pid>.<id>`, then `link` it to
 * `LOCK`. `link` fails with EEXIST when `LOCK` exists, so it is an atomic create-if-absent, and
 * `LOCK` is never seen empty or half written (the old `wx` + write had that window: a second
 * process reading the empty file took it over as stale).
 *
 * Taking over a stale `LOCK` (dead owner, or content we cannot parse, e.g. the empty file a
 * crash of the old code left): unlink-then-link is not safe by itself, because a process that
 * found the stale lock may unlink the fresh one another process just linked. So the one stale
 * file with id X is removed only by the holder of `LOCK.break.X`, which is itself created
 * exclusively with `link`. Its holder re-reads `LOCK` and unlinks it only if it is still file X
 * with a dead owner. That check-then-unlink cannot remove anything else: while `LOCK` is file
 * X, nothing else can replace it (`link` fails on an existing name, the dead owner releases
 * nothing, and only the one holder of `LOCK.break.X` removes X), and ids are never reused. After
 * the unlink everybody races with `link` again, which exactly one wins. A `LOCK.break.X` whose
 * holder died (a crash mid-takeover) is removed by the same rule, one level up (`LOCK.break.Y`
 * for its id Y); the depth is the number of such crashes.
 *
 * No fsync: a lock only means something while its owner lives, and a power loss ends every
 * owner, so whatever `LOCK` it leaves (even an empty one) is stale and taken over.
 */
import { randomBytes } from 'node:crypto'
import { link, open, readdir, rm, unlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { StorageError } from '../../errors.js'
import { storage, storageError } from './io.js'

/** Lock files held in this process, so a second open of the same folder is refused. */
const openInProcess = new Set<string>()

/** How often a contended lock is retried before giving up (each try is a few syscalls). */
const MAX_TRIES = 200

/** What a lock file (LOCK or a break marker) says: its owner's pid (if readable) and its id. */
interface Holder { pid?: number, id: string }

/**
 * Takes the store's lock. `lock` must be derived from the folder's real path, so another
 * spelling of the same folder (relative, a symlink) is the same lock.
 */
export async function acquireLock (root: string, lock: string): Promise<void> {
  if (openInProcess.has(lock)) throw new StorageError(`Store ${root} is already open in this process`)
  // Claimed before any await, so a concurrent open in this process is refused above.
  openInProcess.add(lock)
  const id = randomBytes(8).toString('hex')
  const temp = `${lock}.${process.pid}.${id}`
  try {
    await storage('write lock file', async () => { await writeFile(temp, `${process.pid} ${id}\n`, { flag: 'wx' }) })
    try {
      await take(root, lock, temp, id)
    } finally {
      await rm(temp, { force: true }).catch(() => {})
    }
    await removeLeftovers(lock, id)
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

async function take (root: string, lock: string, temp: string, id: string): Promise<void> {
  for (let i = 0; i < MAX_TRIES; i++) {
    if (await linkIfAbsent(temp, lock)) {
      // link is atomic, so this holds; checked anyway, as the argument above relies on it.
      const now = await readHolder(lock)
      if (now?.id !== id) throw new StorageError(`Lock file ${lock} changed under this process`)
      return
    }
    const holder = await readHolder(lock)
    if (holder === undefined) continue // released meanwhile: try again
    if (!isStale(holder, id)) {
      throw new StorageError(`Store ${root} is in use by process ${String(holder.pid)} (remove ${lock} if that is wrong)`, { lockedBy: holder.pid })
    }
    await removeStale(lock, holder.id, temp, id)
  }
  throw new StorageError(`Could not take lock ${lock}: still contended after ${MAX_TRIES} tries`)
}

/**
 * Removes `path` if it still is the stale file `staleId`, holding `LOCK.break.<staleId>` while
 * it checks and unlinks (see the module comment). Returns without removing anything when the
 * marker is held by a live process (after a short wait) or `path` changed; the caller retries.
 */
async function removeStale (path: string, staleId: string, temp: string, id: string): Promise<void> {
  const marker = join(dirname(temp), `LOCK.break.${staleId}`)
  if (!await linkIfAbsent(temp, marker)) {
    const breaker = await readHolder(marker)
    if (breaker === undefined) return
    if (!isStale(breaker, id)) {
      await new Promise(resolve => setTimeout(resolve, 5)) // a live process is taking it over
      return
    }
    await removeStale(marker, breaker.id, temp, id) // its holder died mid-takeover
    return
  }
  try {
    const now = await readHolder(path)
    if (now !== undefined && now.id === staleId && isStale(now, id)) {
      await unlink(path).catch(err => { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('remove stale lock', err) })
    }
  } finally {
    await unlink(marker).catch(() => {})
  }
}

/**
 * Once the lock is ours: removes lock temp files (`LOCK.<pid>.<id>`) of dead processes, which
 * only their creator ever links, and dead break markers (through {@link removeStale}). Best
 * effort: a failure here leaves garbage, never fails the open that holds the lock.
 */
async function removeLeftovers (lock: string, id: string): Promise<void> {
  const root = dirname(lock)
  const names = await readdir(root).catch(() => [] as string[])
  for (const name of names) {
    const temp = /^LOCK\.(\d+)\.([0-9a-f]+)$/.exec(name)
    const path = join(root, name)
    try {
      if (temp !== null && isStale({ pid: Number(temp[1]), id: temp[2] }, id)) {
        await rm(path, { force: true })
      } else if (name.startsWith('LOCK.break.')) {
        const holder = await readHolder(path)
        if (holder === undefined || !isStale(holder, id)) continue
        const ours = `${lock}.${process.pid}.${randomBytes(8).toString('hex')}`
        try {
          await writeFile(ours, `${process.pid} ${id}\n`, { flag: 'wx' })
          await removeStale(path, holder.id, ours, id)
        } finally {
          await rm(ours, { force: true })
        }
      }
    } catch {}
  }
}

/** `link(from, to)`: false when `to` exists. */
async function linkIfAbsent (from: string, to: string): Promise<boolean> {
  try {
    await link(from, to)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw storageError('create lock file', err)
  }
}

/**
 * Reads a lock file (undefined when it is gone). Content we did not write in the current
 * format (the old pid-only file, an empty one) is identified by its inode and mtime instead.
 */
async function readHolder (path: string): Promise<Holder | undefined> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw storageError('read lock file', err)
  }
  try {
    const text = await handle.readFile('utf8')
    const ours = /^(\d+) ([0-9a-f]+)\n$/.exec(text)
    if (ours !== null) return { pid: Number(ours[1]), id: ours[2] }
    const st = await handle.stat({ bigint: true })
    const pid = /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined
    return { pid, id: `x${st.ino}-${st.mtimeNs}-${st.size}` }
  } catch (err) {
    throw storageError('read lock file', err)
  } finally {
    await handle.close()
  }
}

/**
 * Whether the holder is gone: its pid is not running, or it is ours but not this lock attempt's
 * (an earlier process with our pid, e.g. pid 1 in a restarted container; a concurrent open in
 * this process is refused before it gets here). No readable pid counts as gone.
 */
function isStale (holder: Holder, id: string): boolean {
  if (holder.pid === undefined || !Number.isSafeInteger(holder.pid) || holder.pid <= 0) return true
  if (holder.pid === process.pid) return holder.id !== id
  return !isAlive(holder.pid)
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
