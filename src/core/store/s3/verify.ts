/**
 * Verify and repair of an S3 store (docs/STORAGE.md, "Verify and repair (S3)"): every value
 * under `blobs/` is streamed and re-hashed (bounded memory) against its key and compared with
 * its outboard object; outboards without a value and stale staging are found too.
 */
import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import type { CID } from 'multiformats/cid'
import { NotFoundError } from '../../errors.js'
import type { AbortOptions } from '../interface.js'
import type { S3BlobStore } from '../s3.js'
import { cleanStaging, listKeys, stagingCutoff } from './clean.js'
import { copySource } from './layout.js'
import { readAll } from './reader.js'

export interface S3VerifyProblem {
  /** The value concerned (undefined for staging). */
  cid?: CID
  /** The bucket key concerned. */
  key: string
  size: number
  /**
   * - `corrupt`: the value's bytes do not hash to its key;
   * - `outboard`: the bytes are right but the outboard object is missing or wrong;
   * - `orphan-outboard`: an outboard object whose value is gone (a delete or put interrupted
   *   between its two steps), older than the staging age;
   * - `staging`: staging older than the staging age (an interrupted put).
   */
  problem: 'corrupt' | 'outboard' | 'orphan-outboard' | 'staging'
  reason: string
  /** With `repair`: corrupt values moved to `quarantine/`, outboards rewritten, orphans and stale staging removed. */
  repaired: boolean
}

export interface S3VerifyOptions extends AbortOptions {
  /** Quarantine corrupt values, rewrite bad outboards, remove orphans and stale staging. Default false: only report. */
  repair?: boolean
  /** Called for each problem as it is found (after its repair, with `repair`). */
  onProblem?: (problem: S3VerifyProblem) => void
}

export interface S3VerifyReport {
  /** Values checked. */
  checked: number
  /** Bytes hashed. */
  bytes: number
  problems: S3VerifyProblem[]
}

/** Runs verify over `store` (see {@link S3BlobStore.verify}). */
export async function verifyS3 (store: S3BlobStore, options: S3VerifyOptions): Promise<S3VerifyReport> {
  const { ops, layout } = store
  const { signal } = options
  const repair = options.repair === true
  const report: S3VerifyReport = { checked: 0, bytes: 0, problems: [] }
  const found = (p: S3VerifyProblem): void => { report.problems.push(p); options.onProblem?.(p) }

  for await (const { cid, size } of store.list({ signal })) {
    const problem = await store.locked(cid, async () => {
      store.check(options)
      let result
      try {
        result = await store.hashStored(cid, signal)
      } catch (err) {
        if (err instanceof NotFoundError) return undefined // deleted meanwhile
        throw err
      }
      report.checked++
      report.bytes += result.size
      const key = layout.blob(cid)
      if (!Buffer.from(result.root).equals(cid.multihash.digest)) {
        const p: S3VerifyProblem = { cid, key, size, problem: 'corrupt', reason: 'bytes do not hash to the key', repaired: false }
        if (repair) {
          // Copy aside first: if the delete then fails, the value is still there to find again.
          await ops.send('CopyObject', new CopyObjectCommand({ Bucket: ops.bucket, Key: layout.quarantined(cid), CopySource: copySource(ops.bucket, key) }), signal)
          await ops.send('DeleteObject', new DeleteObjectCommand({ Bucket: ops.bucket, Key: key }), signal)
          await ops.send('DeleteObject', new DeleteObjectCommand({ Bucket: ops.bucket, Key: layout.outboard(cid) }), signal)
          p.repaired = true
        }
        return p
      }
      const expected = result.outboard as Uint8Array
      let stored: Buffer | undefined
      try {
        stored = await readAll(ops, layout.outboard(cid), signal)
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err
      }
      if (stored !== undefined && stored.equals(expected)) return undefined
      const p: S3VerifyProblem = {
        cid, key: layout.outboard(cid), size, problem: 'outboard',
        reason: stored === undefined ? 'outboard object missing (the bytes are right)' : 'outboard object does not match the bytes (the bytes are right)',
        repaired: false
      }
      if (repair) {
        await ops.send('PutObject', new PutObjectCommand({ Bucket: ops.bucket, Key: layout.outboard(cid), Body: expected, ContentLength: expected.length }), signal)
        p.repaired = true
      }
      return p
    })
    if (problem !== undefined) found(problem)
  }

  // Outboards without a value: only old ones (a young one may be a put in progress elsewhere).
  const cutoff = stagingCutoff(store.stagingMaxAge)
  for await (const o of listKeys(ops, layout.outboards, signal)) {
    const cid = layout.cidOf(o.key, layout.outboards)
    if (cid === undefined || (o.modified !== undefined && o.modified.getTime() > cutoff)) continue
    await store.locked(cid, async () => {
      const value = await ops.sendOrAbsent('HeadObject', new HeadObjectCommand({ Bucket: ops.bucket, Key: layout.blob(cid) }), signal)
      if (value !== undefined) return
      const p: S3VerifyProblem = { cid, key: o.key, size: o.size, problem: 'orphan-outboard', reason: 'outboard object without its value', repaired: false }
      if (repair) {
        await ops.send('DeleteObject', new DeleteObjectCommand({ Bucket: ops.bucket, Key: o.key }), signal)
        p.repaired = true
      }
      found(p)
    })
  }

  const staging = await cleanStaging(ops, layout, store.stagingMaxAge, repair, signal)
  const stale = staging.uploadsAborted + staging.objectsDeleted
  if (stale > 0) {
    found({
      key: layout.staging, size: 0, problem: 'staging',
      reason: `${staging.uploadsAborted} incomplete uploads and ${staging.objectsDeleted} objects left by interrupted puts`,
      repaired: repair
    })
  }
  return report
}
