/**
 * Server-side copies (staging to final key, final key to quarantine): one CopyObject up to
 * `singleMax` bytes (S3 allows 5 GiB), above that a multipart upload whose parts are
 * UploadPartCopy ranges of the source. No byte passes through this process either way.
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, UploadPartCopyCommand
} from '@aws-sdk/client-s3'
import { StorageError } from '../../errors.js'
import { copySource } from './layout.js'
import type { S3Ops } from './ops.js'
import { MAX_PARTS, partSizeFor } from './upload.js'

export interface CopyOptions {
  /** Largest object copied with one CopyObject (default 5 GiB, S3's limit). */
  singleMax: number
  /** Part size of a multipart copy (grown to fit 10 000 parts). */
  partSize: number
  /** Parts copied at once. */
  concurrency: number
  signal?: AbortSignal
}

/** Copies `from` (of `size` bytes) to `to` in the store's bucket. */
export async function copyObject (ops: S3Ops, from: string, to: string, size: number, options: CopyOptions): Promise<void> {
  const source = copySource(ops.bucket, from)
  if (size <= options.singleMax) {
    await ops.send('CopyObject', new CopyObjectCommand({ Bucket: ops.bucket, Key: to, CopySource: source }), options.signal)
    return
  }
  const created = await ops.send<{ UploadId?: string }>('CreateMultipartUpload', new CreateMultipartUploadCommand({ Bucket: ops.bucket, Key: to }), options.signal)
  const uploadId = created.UploadId
  if (uploadId === undefined) throw new StorageError('S3 CreateMultipartUpload answered without an UploadId')
  try {
    const partSize = Math.min(partSizeFor(options.partSize, size), options.singleMax)
    const count = Math.ceil(size / partSize)
    if (count > MAX_PARTS) throw new StorageError(`A ${size}-byte copy needs more than ${MAX_PARTS} parts`)
    const parts: Array<{ PartNumber: number, ETag: string }> = []
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++
        const start = i * partSize
        const end = Math.min(size, start + partSize) - 1
        const out = await ops.send<{ CopyPartResult?: { ETag?: string } }>('UploadPartCopy', new UploadPartCopyCommand({
          Bucket: ops.bucket, Key: to, UploadId: uploadId, PartNumber: i + 1, CopySource: source, CopySourceRange: `bytes=${start}-${end}`
        }), options.signal)
        const etag = out.CopyPartResult?.ETag
        if (etag === undefined) throw new StorageError(`S3 UploadPartCopy ${i + 1} answered without an ETag`)
        parts.push({ PartNumber: i + 1, ETag: etag })
      }
    }
    await Promise.all(Array.from({ length: Math.min(options.concurrency, count) }, worker))
    parts.sort((a, b) => a.PartNumber - b.PartNumber)
    await ops.send('CompleteMultipartUpload', new CompleteMultipartUploadCommand({
      Bucket: ops.bucket, Key: to, UploadId: uploadId, MultipartUpload: { Parts: parts }
    }), options.signal)
  } catch (err) {
    await ops.send('AbortMultipartUpload', new AbortMultipartUploadCommand({ Bucket: ops.bucket, Key: to, UploadId: uploadId })).catch(() => {})
    throw err
  }
}
