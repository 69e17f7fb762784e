/**
 * Shared set-up of the S3 store specs: one real S3 server (Swift s3api) per spec file, a
 * bucket, and a fresh prefix per store so each test starts empty; helpers to look into the bucket.
 */
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import type { S3StoreOptions } from '../src/core/store/s3.js'
import { TreeHasher } from '../src/core/tree.js'
import { startS3Server, type S3Server } from './s3-server.js'
import { pseudoRandom } from './helpers.js'

export const MiB = 1024 * 1024
let server: S3Server | undefined
let bucket = ''
let counter = 0

/** Registers before/after hooks in the calling describe: a server and a bucket for its tests. */
export function useS3Server (): void {
  before(async function () {
    this.timeout(60_000)
    server = await startS3Server()
    bucket = await server.createBucket()
  })
  after(async () => {
    await server?.stop()
    server = undefined
  })
}

export function s3 (): { server: S3Server, bucket: string, client: S3Client } {
  if (server === undefined) throw new Error('useS3Server() first')
  return { server, bucket, client: server.client() }
}

/** Options for a store on the test server under a fresh prefix (so each test starts empty). */
export function config (extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  const { server } = s3()
  return {
    bucket,
    prefix: `t${process.pid}-${++counter}/`,
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    ...extra
  }
}

/** Keys under `prefix` in the test bucket. */
export async function keys (prefix: string): Promise<string[]> {
  const out: string[] = []
  let token: string | undefined
  do {
    const page = await s3().client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
    for (const o of page.Contents ?? []) out.push(o.Key as string)
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
  return out
}

/** Keys of the incomplete multipart uploads under `prefix`. */
export async function uploads (prefix: string): Promise<string[]> {
  const page = await s3().client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))
  return (page.Uploads ?? []).map(u => u.Key as string)
}

export async function getBytes (key: string): Promise<Uint8Array> {
  const out = await s3().client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return await (out.Body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray()
}

/** `count` MiB of deterministic bytes, yielded 1 MiB at a time (never all in memory). */
export function * bigPieces (count: number, seed = 7): Generator<Uint8Array> {
  const base = pseudoRandom(MiB, seed)
  for (let i = 0; i < count; i++) {
    const piece = base.slice()
    piece[0] = i & 0xff
    piece[1] = (i >> 8) & 0xff
    yield piece
  }
}

export function hashOf (source: Iterable<Uint8Array>): ReturnType<TreeHasher['finalize']> {
  const h = new TreeHasher({ outboard: true })
  for (const p of source) h.update(p)
  return h.finalize()
}
