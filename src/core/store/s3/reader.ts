/**
 * Reading values from the bucket: a GET's body as bounded pieces, and random-access readers
 * (`S3BlobStore.open`). A reader streams: a read at the position where the previous one ended
 * continues the same ranged GET (so a verified stream of a whole value costs one request), any
 * other read starts a new ranged GET from there to the end. Small values are read whole at open.
 */
import type { Readable } from 'node:stream'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { ClosedError, NotFoundError, StorageError } from '../../errors.js'
import type { BlobReader } from '../interface.js'
import { checkRead } from '../util.js'
import type { S3Ops } from './ops.js'

/** Largest piece `cat` yields (the store contract's bound). */
export const MAX_PIECE = 1 << 20

/** A GET of `key`, optionally of bytes `[start, end)`: the body and the object's size. */
export async function getObject (ops: S3Ops, key: string, range?: { start: number, end: number }, signal?: AbortSignal): Promise<{ body: Readable, length: number }> {
  const out = await ops.send<{ Body?: unknown, ContentLength?: number }>('GetObject', new GetObjectCommand({
    Bucket: ops.bucket, Key: key, Range: range !== undefined ? `bytes=${range.start}-${range.end - 1}` : undefined
  }), signal)
  if (out.Body === undefined || out.ContentLength === undefined) throw new StorageError(`S3 GetObject of ${key} answered without a body`)
  return { body: out.Body as Readable, length: out.ContentLength }
}

/**
 * Yields a body's bytes in pieces of at most MAX_PIECE, checking that exactly `length` come
 * (a short body is a StorageError, never a quietly short value). Destroys the body when the
 * consumer stops early.
 */
export async function * pieces (ops: S3Ops, body: Readable, length: number, what: string): AsyncGenerator<Uint8Array> {
  let got = 0
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      for (let off = 0; off < chunk.length; off += MAX_PIECE) {
        const piece = chunk.subarray(off, Math.min(chunk.length, off + MAX_PIECE))
        got += piece.length
        if (got > length) throw new StorageError(`S3 sent more than the ${length} bytes of ${what}`)
        yield piece
      }
    }
  } catch (err) {
    // A connection cut mid-body is the client layer's to name (StoreUnavailableError).
    throw ops.error(err, 'GetObject')
  } finally {
    body.destroy()
  }
  if (got !== length) throw new StorageError(`S3 sent ${got} of the ${length} bytes of ${what}`)
}

/** Reads a whole (small) object into one buffer. */
export async function readAll (ops: S3Ops, key: string, signal?: AbortSignal): Promise<Buffer> {
  const { body, length } = await getObject(ops, key, undefined, signal)
  const out = Buffer.allocUnsafe(length)
  let at = 0
  for await (const piece of pieces(ops, body, length, key)) { out.set(piece, at); at += piece.length }
  return out
}

/** A reader over bytes held in memory (a small value read whole at open). */
export function memoryReader (data: Uint8Array): BlobReader {
  return {
    size: data.length,
    read: async (offset, length) => {
      checkRead(data.length, offset, length)
      return new Uint8Array(data.subarray(offset, offset + length))
    },
    close: async () => {}
  }
}

/** A streaming random-access reader of one object of `size` bytes. */
export class S3Reader implements BlobReader {
  private cursor: { pos: number, iterator: AsyncGenerator<Uint8Array>, leftover: Uint8Array | undefined } | undefined
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false

  constructor (private readonly ops: S3Ops, private readonly key: string, readonly size: number) {}

  async read (offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkRead(this.size, offset, length)
    // One read at a time: each continues where the previous one left the stream.
    const result = this.queue.then(async () => await this.doRead(offset, length, into))
    this.queue = result.catch(() => {})
    return await result
  }

  private async doRead (offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new ClosedError('The reader is closed')
    if (length === 0) return new Uint8Array(0)
    if (this.cursor?.pos !== offset) {
      await this.drop()
      const { body, length: n } = await getObject(this.ops, this.key, { start: offset, end: this.size })
      this.cursor = { pos: offset, iterator: pieces(this.ops, body, n, this.key), leftover: undefined }
    }
    const cursor = this.cursor as NonNullable<S3Reader['cursor']>
    const out = into !== undefined && into.length >= length ? into.subarray(0, length) : new Uint8Array(length)
    let at = 0
    while (at < length) {
      let piece = cursor.leftover
      cursor.leftover = undefined
      if (piece === undefined) {
        const r = await cursor.iterator.next()
        if (r.done === true) {
          this.cursor = undefined
          throw new NotFoundError(`${this.key} ended early (deleted or replaced while read?)`)
        }
        piece = r.value
      }
      const n = Math.min(piece.length, length - at)
      out.set(piece.subarray(0, n), at)
      at += n
      if (n < piece.length) cursor.leftover = piece.subarray(n)
    }
    cursor.pos += length
    return out
  }

  private async drop (): Promise<void> {
    const c = this.cursor
    this.cursor = undefined
    if (c !== undefined) await c.iterator.return(undefined).catch(() => {})
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.queue
    await this.drop()
  }
}
