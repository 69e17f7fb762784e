/**
 * Where `dstore get -o PATH` writes, decided before anything is fetched:
 *
 * - a new path, or an existing regular file: written atomically, into a temp file beside it
 *   that is renamed over it once every byte arrived and verified (on failure the temp file is
 *   removed and the old file is untouched);
 * - a symlink to a regular file (or a dangling one): the file it points to is written
 *   atomically the same way; the link itself stays (unless another user planted it in a shared
 *   folder such as /tmp: refused, see {@link checkLinksTrusted});
 * - a FIFO or a character device (`/dev/null`, a terminal), and `/dev/stdout`, `/dev/stderr`,
 *   `/dev/fd/N`, `/proc/self/fd/N`: written through, in place, opened for writing and never
 *   created, replaced or renamed over (bytes already written stay if the get fails, as on stdout);
 * - anything else (a directory, a block device, a socket): refused.
 *
 * An atomic target is looked at again just before the rename: a path that has become anything
 * but a regular file while the value was fetched is refused then (exit 1, temp file removed).
 *
 * Written-through FIFOs and terminals go through the event loop, not a libuv pool thread
 * (which a writer-less FIFO would block, keeping Ctrl+C from ending the process).
 */
import { constants, createWriteStream, fstat as fstatCb, open as openCb, type Stats } from 'node:fs'
import { lstat, open, readlink, realpath, rename, rm, stat } from 'node:fs/promises'
import { Socket } from 'node:net'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable, type Writable } from 'node:stream'
import { isatty, WriteStream as TtyWriteStream } from 'node:tty'
import { promisify } from 'node:util'
import { UsageError } from './output.js'

const openFd = promisify(openCb)
const fstatFd = promisify(fstatCb)

/** How an output path is written. */
export type Target =
  | { mode: 'atomic', path: string }
  | { mode: 'through', path: string, kind: 'fifo' | 'device' | 'descriptor', fd?: number }

/** Open descriptors under another name: written through whatever they are. */
const DESCRIPTOR = /^\/(dev\/(stdout|stderr|stdin|fd\/\d+)|proc\/(self|thread-self|\d+)\/fd\/\d+)$/
const NAMED_FD: Record<string, number> = { '/dev/stdin': 0, '/dev/stdout': 1, '/dev/stderr': 2 }

/** The number of this process's own descriptor that `alias` names, if it names one. */
function ownFd (alias: string): number | undefined {
  if (NAMED_FD[alias] !== undefined) return NAMED_FD[alias]
  const m = new RegExp(`^/(?:dev/fd|proc/(?:self|thread-self|${process.pid})/fd)/(\\d+)$`).exec(alias)
  return m === null ? undefined : Number(m[1])
}

function refuse (file: string, why: string): never {
  throw new UsageError(`cannot write ${file}: ${why}`, 1)
}

/** Decides how `file` is written, refusing a path that cannot be (see the module comment). */
export async function planTarget (file: string): Promise<Target> {
  if (file === '') refuse('""', 'empty file name')
  if (file.endsWith('/') || file.endsWith(sep)) refuse(file, 'that names a folder, not a file')
  const link = await lstat(file).catch(notThere)
  if (link === undefined) return { mode: 'atomic', path: await checkFolder(file, file) }
  let st: Stats | undefined = link
  if (link.isSymbolicLink()) {
    await checkLinksTrusted(file)
    st = await stat(file).catch(notThere)
    const abs = st !== undefined ? await descriptorAlias(file) : undefined
    if (st !== undefined && abs !== undefined) {
      if (st.isDirectory()) refuse(file, 'it is a directory')
      // Our own descriptor is written as it is: a socket (as a parent's pipe often is) cannot be opened by path.
      const fd = ownFd(abs)
      return { mode: 'through', path: file, kind: 'descriptor', ...(fd !== undefined ? { fd } : {}) }
    }
    // Dangling: the file it points to is created, atomically, where it points.
    if (st === undefined) return { mode: 'atomic', path: await checkFolder(file, await followLinks(file)) }
    if (st.isFile()) return { mode: 'atomic', path: await realpath(file) }
  }
  if (st.isFile()) return { mode: 'atomic', path: file }
  if (st.isDirectory()) refuse(file, 'it is a directory')
  if (st.isFIFO()) return { mode: 'through', path: file, kind: 'fifo' }
  if (st.isCharacterDevice()) return { mode: 'through', path: file, kind: 'device' }
  const what = st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a file'
  refuse(file, `it is ${what} (-o writes a file, a FIFO or a character device)`)
}

function notThere (err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT') return undefined
  if (err.code === 'ENOTDIR') throw new UsageError(`cannot write ${err.path ?? ''}: ${dirname(err.path ?? '')} is not a folder`, 1)
  throw err
}

/** The first link on the way from `file` that names an open descriptor (`/dev/stdout`, `/proc/self/fd/1`), if one does. */
async function descriptorAlias (file: string): Promise<string | undefined> {
  let p = resolve(file)
  for (let hops = 0; hops < 40; hops++) {
    if (DESCRIPTOR.test(p)) return p
    const st = await lstat(p).catch(() => undefined)
    if (st?.isSymbolicLink() !== true) return undefined
    p = resolve(dirname(p), await readlink(p))
  }
  return undefined
}

/**
 * Refuses a chain of symlinks from `file` with a link the kernel's `protected_symlinks` rule
 * would not follow: one in a sticky, world-writable folder (as /tmp) owned neither by us nor by
 * the folder's owner. We resolve links ourselves (realpath, readlink) and rename onto where
 * they point, which the kernel's check, made only when open(2) follows a link, never sees: a
 * link planted in /tmp would otherwise have us replace or create any file we may write.
 */
async function checkLinksTrusted (file: string): Promise<void> {
  const me = process.geteuid?.()
  if (me === undefined) return
  let p = resolve(file)
  for (let hops = 0; hops < 40; hops++) {
    const st = await lstat(p).catch(() => undefined)
    if (st?.isSymbolicLink() !== true) return
    const dir = await stat(dirname(p))
    const sharedTmp = (dir.mode & 0o1000) !== 0 && (dir.mode & 0o002) !== 0
    if (sharedTmp && st.uid !== me && st.uid !== dir.uid) {
      refuse(file, `${p} is a symlink owned by another user in the shared folder ${dirname(p)}: not followed`)
    }
    p = resolve(dirname(p), await readlink(p))
  }
}

/** The path a chain of symlinks ends at (which does not exist). */
async function followLinks (file: string): Promise<string> {
  let p = resolve(file)
  for (let hops = 0; hops < 40; hops++) {
    const st = await lstat(p).catch(notThere)
    if (st === undefined || !st.isSymbolicLink()) return p
    p = resolve(dirname(p), await readlink(p))
  }
  refuse(file, 'too many levels of symbolic links')
}

/** `path` (the file to create for `file`), once its folder is known to exist. */
async function checkFolder (file: string, path: string): Promise<string> {
  const dir = dirname(path)
  let st
  try {
    st = await stat(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') refuse(file, `folder ${dir} does not exist`)
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') refuse(file, `${dir} is not a folder`)
    throw err
  }
  if (!st.isDirectory()) refuse(file, `${dir} is not a folder`)
  return path
}

/** Writes verified bytes to stdout (no target) or to `target`, as {@link planTarget} decided. */
export async function writeOut (source: AsyncIterable<Uint8Array>, target: Target | undefined, signal: AbortSignal): Promise<void> {
  const input = Readable.from(source, { objectMode: false })
  if (target === undefined) {
    await pipeline(input, process.stdout, { signal, end: false })
    return
  }
  if (target.mode === 'through') {
    // Our own stdout or stderr: written like stdout without -o, and left open.
    if (target.fd === 1 || target.fd === 2) {
      await pipeline(input, target.fd === 1 ? process.stdout : process.stderr, { signal, end: false })
      return
    }
    try {
      await pipeline(input, await openThrough(target, signal), { signal })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') refuse(target.path, 'its reader closed it before the end')
      throw err
    }
    return
  }
  const file = target.path
  const tmp = join(dirname(file), `.${basename(file)}.dstore-${process.pid}.tmp`)
  try {
    await pipeline(input, createWriteStream(tmp, { flags: 'wx' }), { signal })
    const handle = await open(tmp, 'r')
    try { await handle.sync() } finally { await handle.close() }
    // The path was checked before the fetch, which may have taken minutes: rename replaces
    // whatever is there now, so something other than a regular file that appeared meanwhile (a
    // FIFO, a symlink, a device node) is refused, not replaced.
    const now = await lstat(file).catch(notThere)
    if (now !== undefined && !now.isFile()) refuse(file, 'it is no longer a regular file (it changed while the value was fetched)')
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    // Name the file that was asked for, not the temp file beside it.
    if ((err as NodeJS.ErrnoException)?.path === tmp) (err as NodeJS.ErrnoException).path = file
    throw err
  }
}

/** Opens a written-through target: never created, truncated or renamed. */
async function openThrough (target: Target & { mode: 'through' }, signal: AbortSignal): Promise<Writable> {
  if (target.fd !== undefined) {
    // Another descriptor of ours: it stays open (it is not ours to close).
    const st = await fstatFd(target.fd)
    if (isatty(target.fd)) return new TtyWriteStream(target.fd)
    if (st.isFIFO() || st.isSocket()) return new Socket({ fd: target.fd, readable: false, writable: true })
    return createWriteStream('', { fd: target.fd, autoClose: false })
  }
  const st = await stat(target.path)
  if (st.isFIFO()) {
    // Non-blocking: with no reader yet this fails with ENXIO (a blocking open would hold a pool
    // thread until one comes), so wait for a reader here, where Ctrl+C can stop the wait.
    for (;;) {
      try {
        const fd = await openFd(target.path, constants.O_WRONLY | constants.O_NONBLOCK)
        return new Socket({ fd, readable: false, writable: true })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err
      }
      await new Promise(resolve => setTimeout(resolve, 50))
      signal.throwIfAborted()
    }
  }
  // O_APPEND: `/dev/stdout` may be a file the shell opened with `>>`; on a device it does nothing.
  const fd = await openFd(target.path, constants.O_WRONLY | (st.isFile() ? constants.O_APPEND : 0))
  return isatty(fd) ? new TtyWriteStream(fd) : createWriteStream('', { fd })
}
