/**
 * A put's bytes on their way to the bucket, in bounded memory: they gather in part buffers;
 * while the value still fits one part nothing is sent (a small value is then written to its
 * final key in one PutObject, once its hash is known); past that, a multipart upload to a
 * fresh staging key starts and full parts go up, at most `concurrency` at a time. Memory:
 * at most `concurrency + 1` part buffers, whatever the value's size.
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand
} from '@aws-sdk/client-s3'
import { NotFoundError, StorageError, TooLargeError } from '../../errors.js'
import type { S3Ops } from './ops.js'

/** S3's limits: at most 10 000 parts, each at least 5 MiB but the last, at most 5 GiB. */
export const MAX_PARTS = 10_000
export const MIN_PART = 5 * 1024 * 1024
export const MAX_PART = 5 * 1024 * 1024 * 1024
/** Size of a put's first buffer, before it grows. */
const FIRST_BUFFER = 64 * 1024

/** Part size for a value of `size` bytes (when known): `base`, or larger so it fits in MAX_PARTS. */
export function partSizeFor (base: number, size: number | undefined): number {
  if (size === undefined) return base
  const needed = Math.ceil(size / MAX_PARTS)
  const mib = 1024 * 1024
  return Math.min(MAX_PART, Math.max(base, Math.ceil(needed / mib) * mib))
}

export class StagingUpload {
  /** The staging key, once the multipart upload has started. */
  private uploadId: string | undefined
  private completed = false
  private readonly parts: Array<{ PartNumber: number, ETag: string }> = []
  private readonly inflight = new Set<Promise<void>>()
  private failure: Error | undefined
  private readonly free: Buffer[] = []
  private current: Buffer
  private fill = 0
  private partNumber = 0
  /** Bytes sent in completed parts. */
  private sent = 0

  constructor (
    private readonly ops: S3Ops,
    readonly key: string,
    private readonly partSize: number,
    private readonly concurrency: number,
    private readonly signal?: AbortSignal
  ) {
    // The first buffer grows as bytes come: most values are small, and concurrent small puts
    // must not each hold a whole part.
    this.current = Buffer.allocUnsafeSlow(Math.min(partSize, FIRST_BUFFER))
  }

  /** Whether the value outgrew one part (so it is in a multipart upload under `key`). */
  get multipart (): boolean { return this.uploadId !== undefined }

  /** Takes a copy of `chunk` (the caller may reuse it), sending each part that fills up. */
  async add (chunk: Uint8Array): Promise<void> {
    let off = 0
    while (off < chunk.length) {
      if (this.fill === this.partSize) await this.flush()
      if (this.fill + chunk.length - off > this.current.length && this.current.length < this.partSize) this.grow(this.fill + chunk.length - off)
      const n = Math.min(this.current.length - this.fill, chunk.length - off)
      this.current.set(chunk.subarray(off, off + n), this.fill)
      this.fill += n
      off += n
    }
  }

  /** The whole value, when it never outgrew one part (nothing was sent). */
  buffered (): Buffer | undefined {
    return this.uploadId === undefined ? this.current.subarray(0, this.fill) : undefined
  }

  /** Sends the last part and completes the multipart upload: the staging object then exists. */
  async complete (): Promise<void> {
    if (this.uploadId === undefined) throw new Error('StagingUpload.complete: nothing was staged')
    if (this.fill > 0) await this.flush()
    await Promise.all([...this.inflight])
    if (this.failure !== undefined) throw this.failure
    this.parts.sort((a, b) => a.PartNumber - b.PartNumber)
    await this.ops.send('CompleteMultipartUpload', new CompleteMultipartUploadCommand({
      Bucket: this.ops.bucket, Key: this.key, UploadId: this.uploadId, MultipartUpload: { Parts: this.parts }
    }), this.signal).catch(uploadGone(this.key))
    this.completed = true
  }

  /** Bytes in parts the server has acknowledged. */
  get bytesSent (): number { return this.sent }

  /** Abandons an upload not completed (the server drops its parts); never throws. */
  async abort (): Promise<void> {
    await Promise.allSettled([...this.inflight])
    if (this.uploadId === undefined || this.completed) return
    await this.ops.send('AbortMultipartUpload', new AbortMultipartUploadCommand({
      Bucket: this.ops.bucket, Key: this.key, UploadId: this.uploadId
    })).catch(() => {})
  }

  /** Grows the (first) buffer to hold `needed` bytes, doubling, at most a part. */
  private grow (needed: number): void {
    const size = Math.min(this.partSize, Math.max(needed, this.current.length * 2))
    const next = Buffer.allocUnsafeSlow(size)
    next.set(this.current.subarray(0, this.fill))
    this.current = next
  }

  private async flush (): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    if (this.uploadId === undefined) {
      const created = await this.ops.send<{ UploadId?: string }>('CreateMultipartUpload', new CreateMultipartUploadCommand({
        Bucket: this.ops.bucket, Key: this.key
      }), this.signal)
      if (created.UploadId === undefined) throw new StorageError('S3 CreateMultipartUpload answered without an UploadId')
      this.uploadId = created.UploadId
    }
    if (this.partNumber === MAX_PARTS) throw new TooLargeError(`Value too large for ${MAX_PARTS} parts of ${this.partSize} bytes (pass its size to put)`)
    const number = ++this.partNumber
    const body = this.current.subarray(0, this.fill)
    const buffer = this.current
    const task = this.sendPart(number, body).then(() => {
      this.sent += body.length
      if (buffer.length === this.partSize) this.free.push(buffer)
    }, (err: Error) => { this.failure ??= err })
    const tracked = task.finally(() => { this.inflight.delete(tracked) })
    this.inflight.add(tracked)
    // Bounded memory: wait for a slot before taking another buffer.
    while (this.inflight.size >= this.concurrency) await Promise.race(this.inflight)
    if (this.failure !== undefined) throw this.failure
    this.current = this.free.pop() ?? Buffer.allocUnsafeSlow(this.partSize)
    this.fill = 0
  }

  private async sendPart (number: number, body: Buffer): Promise<void> {
    const out = await this.ops.send<{ ETag?: string }>('UploadPart', new UploadPartCommand({
      Bucket: this.ops.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: number, Body: body, ContentLength: body.length
    }), this.signal).catch(uploadGone(this.key))
    if (out.ETag === undefined) throw new StorageError(`S3 UploadPart ${number} answered without an ETag`)
    this.parts.push({ PartNumber: number, ETag: out.ETag })
  }
}

/**
 * A multipart upload that vanished under a put (NoSuchUpload: another Global's staging clean-up,
 * or a lifecycle rule, aborted it as too old) fails the put with StorageError: a NotFoundError
 * would tell the caller the value is missing, which a put never means.
 */
function uploadGone (key: string): (err: unknown) => never {
  return (err: unknown) => {
    if (err instanceof NotFoundError) {
      throw new StorageError(`the multipart upload to ${key} was aborted under this put (a clean-up of staging older than stagingMaxAge, on this or another Global, or a lifecycle rule): raise stagingMaxAge above the longest put`, { cause: err })
    }
    throw err
  }
}
