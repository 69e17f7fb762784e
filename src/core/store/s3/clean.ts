/**
 * Removing what interrupted puts left under `staging/`: multipart uploads never completed (a
 * Global killed while streaming) and complete staging objects never copied or deleted (killed
 * between the steps). Only what is older than `maxAge` goes, so a put still running on another
 * Global that shares the bucket is not harmed. Ages come from the server's clock (the
 * upload's `Initiated`, the object's `LastModified`) compared with this machine's: keep the
 * threshold well above any clock skew. A bucket lifecycle rule is the backstop (STORAGE.md).
 */
import { AbortMultipartUploadCommand, DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { S3Layout } from './layout.js'
import type { S3Ops } from './ops.js'

export interface StagingCleanReport {
  /** Incomplete multipart uploads aborted (or found, when only counting). */
  uploadsAborted: number
  /** Leftover staging objects deleted (or found, when only counting). */
  objectsDeleted: number
  /** Younger staging left alone (possibly a put in progress elsewhere). */
  kept: number
}

/**
 * The time before which staging counts as old. Servers give times to the second, some rounded
 * up (Swift's s3api does), so one second is added: `maxAge` 0 then takes everything made
 * before this call.
 */
export function stagingCutoff (maxAge: number): number {
  return Date.now() - maxAge + 1000
}

/** Lists every key under `prefix` with its size and modification time (ListObjectsV2, paged). */
export async function * listKeys (ops: S3Ops, prefix: string, signal?: AbortSignal): AsyncGenerator<{ key: string, size: number, modified: Date | undefined }> {
  let token: string | undefined
  do {
    const page = await ops.send<{ Contents?: Array<{ Key?: string, Size?: number, LastModified?: Date }>, IsTruncated?: boolean, NextContinuationToken?: string }>(
      'ListObjectsV2', new ListObjectsV2Command({ Bucket: ops.bucket, Prefix: prefix, ContinuationToken: token }), signal)
    for (const o of page.Contents ?? []) {
      if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0, modified: o.LastModified }
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
}

/**
 * Removes staging older than `maxAge` ms (with `remove` false: only counts it): incomplete
 * multipart uploads under `staging/` and `blobs/` (a put with a known CID uploads to its final
 * key, invisible until completed), and objects under `staging/`.
 */
export async function cleanStaging (ops: S3Ops, layout: S3Layout, maxAge: number, remove: boolean, signal?: AbortSignal): Promise<StagingCleanReport> {
  const report: StagingCleanReport = { uploadsAborted: 0, objectsDeleted: 0, kept: 0 }
  const cutoff = stagingCutoff(maxAge)
  for (const prefix of [layout.staging, layout.blobs]) await abortUploads(ops, prefix, cutoff, remove, report, signal)
  for await (const o of listKeys(ops, layout.staging, signal)) {
    if (o.modified !== undefined && o.modified.getTime() > cutoff) { report.kept++; continue }
    if (remove) await ops.send('DeleteObject', new DeleteObjectCommand({ Bucket: ops.bucket, Key: o.key }), signal)
    report.objectsDeleted++
  }
  return report
}

async function abortUploads (ops: S3Ops, prefix: string, cutoff: number, remove: boolean, report: StagingCleanReport, signal?: AbortSignal): Promise<void> {
  let keyMarker: string | undefined
  let idMarker: string | undefined
  for (;;) {
    const page = await ops.send<{ Uploads?: Array<{ Key?: string, UploadId?: string, Initiated?: Date }>, IsTruncated?: boolean, NextKeyMarker?: string, NextUploadIdMarker?: string }>(
      'ListMultipartUploads', new ListMultipartUploadsCommand({ Bucket: ops.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }), signal)
    for (const u of page.Uploads ?? []) {
      if (u.Key === undefined || u.UploadId === undefined) continue
      if (u.Initiated !== undefined && u.Initiated.getTime() > cutoff) { report.kept++; continue }
      if (remove) await ops.send('AbortMultipartUpload', new AbortMultipartUploadCommand({ Bucket: ops.bucket, Key: u.Key, UploadId: u.UploadId }), signal)
      report.uploadsAborted++
    }
    if (page.IsTruncated !== true || page.NextKeyMarker === undefined) break
    keyMarker = page.NextKeyMarker
    idMarker = page.NextUploadIdMarker
  }
}
