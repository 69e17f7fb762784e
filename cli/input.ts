/**
 * What `dstore put` reads: a regular file (checked for changes while it is read), a FIFO or
 * terminal (read without tying up a libuv thread), or stdin.
 *
 * Why not `createReadStream(path)` for everything: opening a FIFO that has no writer yet, or
 * reading a terminal, blocks a libuv pool thread, and such a thread keeps even `process.exit`
 * from finishing (it joins the pool), so Ctrl+C could not end the process. FIFOs are opened
 * non-blocking and read through the event loop instead (Linux reports no end of input on a
 * FIFO until a writer has come and gone, so waiting for the writer works), terminals through
 * `tty.ReadStream`.
 */
import { constants, createReadStream, open as openCb, type Stats } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { Socket } from 'node:net'
import { isatty, ReadStream as TtyReadStream } from 'node:tty'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import type { Readable } from 'node:stream'
import { FileChangedError, TreeHasher, cidFromDigest, type CID } from '../src/index.js'
import { UsageError } from './output.js'

const openFd = promisify(openCb)

/** A put source, its size when known up front, and how to let go of it. */
export interface Input {
  source: AsyncIterable<Uint8Array>
  size?: number
  /**
   * A regular file: its key, read through the same descriptor as `source` (which it leaves
   * where it was), so that Global can be asked whether it has it before anything is sent.
   * Fails with {@link FileChangedError} if the file changed since it was opened: a put
   * Global answers from this alone never reads `source`, whose end would check that.
   */
  hash?: () => Promise<CID>
  close: () => Promise<void>
}

/** Whether `input` names this process's stdin: `-`, `/dev/stdin`, `/dev/fd/0`, `/proc/self/fd/0`. */
export function isStdin (input: string): boolean {
  return input === '-' || (input !== '' && /^\/(dev\/stdin|dev\/fd\/0|proc\/self\/fd\/0)$/.test(resolve(input)))
}

/** Opens `input` (a path, or `-` for stdin) for reading. */
export async function openInput (input: string): Promise<Input> {
  // Read as it is: a socket (as a parent process's pipe often is) cannot be opened by path.
  if (isStdin(input)) return { source: process.stdin, close: async () => { process.stdin.destroy() } }
  if (input === '') throw new UsageError('cannot put "": empty file name', 1)
  const st = await stat(input)
  if (st.isDirectory()) throw new UsageError(`cannot put ${input}: it is a directory`, 1)
  if (st.isSocket()) throw new UsageError(`cannot put ${input}: it is a socket (put reads files, FIFOs and devices)`, 1)
  if (st.isFile()) return await openFile(input)
  if (st.isFIFO()) {
    const fd = await openFd(input, constants.O_RDONLY | constants.O_NONBLOCK)
    return stream(new Socket({ fd, readable: true, writable: false }))
  }
  const fd = await openFd(input, constants.O_RDONLY)
  return stream(isatty(fd) ? new TtyReadStream(fd) : createReadStream('', { fd, highWaterMark: 1 << 20 }))
}

function stream (s: Readable): Input {
  return { source: s, close: async () => { s.destroy() } }
}

/**
 * A regular file, read from one open descriptor. Its size and modification time are taken
 * before the first byte and checked again after the last: if either moved, or the bytes read
 * do not add up to the size, the source fails with {@link FileChangedError} instead of ending,
 * so the put is never acknowledged and nothing is stored (a put completes only once its
 * source has ended).
 */
async function openFile (path: string): Promise<Input> {
  const handle = await open(path, 'r')
  let before: Stats
  try {
    before = await handle.stat()
  } catch (err) {
    await handle.close()
    throw err
  }
  const changed = (what: string): FileChangedError =>
    new FileChangedError(`${path} changed while it was read (${what}): nothing was stored; put it again once it is stable`)
  /** Size and modification time as when opened, or the FileChangedError saying what moved. */
  async function check (total: number): Promise<void> {
    const after = await handle.stat()
    if (total !== before.size || after.size !== before.size) throw changed(`${before.size} bytes when opened, ${total} read, ${after.size} now`)
    if (after.mtimeMs !== before.mtimeMs) throw changed('it was written to')
  }
  async function hash (): Promise<CID> {
    const hasher = new TreeHasher()
    const buf = new Uint8Array(1 << 20)
    let total = 0
    for (;;) {
      // Positional reads: `read` below starts from the beginning whatever was hashed.
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, before.size - total + 1), total)
      if (bytesRead === 0) break
      total += bytesRead
      if (total > before.size) throw changed(`it grew past its ${before.size} bytes`)
      hasher.update(buf.subarray(0, bytesRead))
    }
    await check(total)
    return cidFromDigest(hasher.finalize().root)
  }
  async function * read (): AsyncGenerator<Uint8Array> {
    let total = 0
    for (;;) {
      // A fresh buffer each time (the put may keep a piece after the next read), no larger than
      // what is left plus one byte, which tells a file that grew from one that ended.
      const buf = new Uint8Array(Math.min(1 << 20, Math.max(0, before.size - total) + 1))
      const { bytesRead } = await handle.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      total += bytesRead
      if (total > before.size) throw changed(`it grew past its ${before.size} bytes`)
      yield buf.subarray(0, bytesRead)
    }
    await check(total)
  }
  return { source: read(), size: before.size, hash, close: async () => { await handle.close() } }
}
