/**
 * Small filesystem helpers of the fs store, and the one place a filesystem or index failure
 * becomes a StorageError (its `cause` keeps the original, e.g. ENOSPC).
 */
import { open as openFile, type FileHandle } from 'node:fs/promises'
import { DstoreError, StorageError } from '../../errors.js'

/** Wraps a filesystem or index failure as StorageError, keeping the original as `cause` (its `code`, e.g. ENOSPC, stays readable there and in the message). */
export function storageError (what: string, err: unknown): DstoreError {
  if (err instanceof DstoreError) return err
  const code = (err as NodeJS.ErrnoException)?.code
  return new StorageError(`Could not ${what}${code !== undefined ? ` (${String(code)})` : ''}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

/** Runs `fn`, turning any failure into StorageError. */
export async function storage<T> (what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw storageError(what, err)
  }
}

/** Synchronous {@link storage}. */
export function storageSync<T> (what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw storageError(what, err)
  }
}

/** Makes a folder's entries durable. */
export async function fsyncDir (path: string): Promise<void> {
  const handle = await openFile(path, 'r')
  try { await handle.sync() } finally { await handle.close() }
}

/** Reads exactly `length` bytes at `position` (into `into` when it is large enough); StorageError when the file is shorter. */
export async function readFully (handle: FileHandle, position: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
  const buf = into !== undefined && into.length >= length ? into.subarray(0, length) : new Uint8Array(length)
  let off = 0
  while (off < length) {
    let bytesRead: number
    try {
      ({ bytesRead } = await handle.read(buf, off, length - off, position + off))
    } catch (err) {
      throw storageError('read data file', err)
    }
    if (bytesRead === 0) throw new StorageError(`Data file is shorter than its index entry (${position + off} bytes)`)
    off += bytesRead
  }
  return buf
}

/**
 * Fills `targets` in order with the bytes from `position` (one `readv` call each time, into
 * what is still unfilled); StorageError when the file is shorter. A short `readv` (a signal,
 * more than IOV_MAX targets) continues where it stopped.
 */
export async function readFullyV (handle: FileHandle, position: number, targets: Uint8Array[]): Promise<void> {
  let rest = targets.filter(t => t.length > 0)
  let at = position
  while (rest.length > 0) {
    let bytesRead: number
    try {
      ({ bytesRead } = await handle.readv(rest, at))
    } catch (err) {
      throw storageError('read data file', err)
    }
    if (bytesRead === 0) throw new StorageError(`Data file is shorter than its index entry (${at} bytes)`)
    at += bytesRead
    // Drop the targets filled, and the filled start of the next one.
    let i = 0
    let n = bytesRead
    while (i < rest.length && n >= rest[i].length) { n -= rest[i].length; i++ }
    rest = rest.slice(i)
    if (n > 0) rest[0] = rest[0].subarray(n)
  }
}
