/**
 * `--store` and the `--s3-*` flags of `dstore global` and `dstore verify`: which store holds a
 * Global's canonical copies. Without `--store`, the fs store in `<repo>/store`; with
 * `--store s3://BUCKET[/PREFIX]`, an S3 bucket (several Globals may share one).
 *
 * Only what the flags and the environment say is decided here; credentials are left to the AWS
 * SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE
 * and ~/.aws/config and credentials, SSO, instance roles), so every way a user already gives AWS
 * tools their keys works. Endpoint and region have the usual fallbacks: `--s3-endpoint`, else
 * AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL; `--s3-region`, else AWS_REGION, else
 * AWS_DEFAULT_REGION, else the profile's (and us-east-1 for a self-hosted endpoint with none).
 */
import { Option } from 'commander'
import { UsageError } from './output.js'

/** The flags as commander gives them. */
export interface StoreFlags {
  store?: string
  s3Endpoint?: string
  s3Region?: string
  s3PathStyle?: boolean
}

/** Where an S3 store lives and how to reach it: what `createS3Store` takes. */
export interface S3StoreChoice {
  kind: 's3'
  bucket: string
  /** '' or ending in '/'. */
  prefix: string
  endpoint?: string
  region?: string
  forcePathStyle?: boolean
  /** `s3://bucket/prefix/` as given, for messages. */
  url: string
}

export type StoreChoice = { kind: 'fs' } | S3StoreChoice

/** The options, fresh for each command (`dstore global`, `dstore verify`). */
export function storeOptions (): { store: Option, endpoint: Option, region: Option, pathStyle: Option } {
  return {
    store: new Option('--store <url>', 'keep the values in an S3 bucket, s3://BUCKET[/PREFIX], instead of <repo>/store (credentials: the AWS environment, profiles and ~/.aws)'),
    endpoint: new Option('--s3-endpoint <url>', 'the S3 server, for one that is not AWS (Swift, MinIO, Ceph, R2, ...; $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL)'),
    region: new Option('--s3-region <region>', 'the bucket\'s region ($AWS_REGION, $AWS_DEFAULT_REGION, the profile\'s; us-east-1 for an --s3-endpoint with none)'),
    pathStyle: new Option('--s3-path-style', 'address the bucket in the path (http://host/BUCKET/key), as self-hosted servers need, not as a host name')
  }
}

// S3's rules for bucket names (3–63 characters of a-z, 0-9, '.' and '-'; a letter or digit at
// each end; no '..'): the same check as the store's own (src/core/store/s3/config.ts
// checkBucket), which refuses anything else at open, so a name it would refuse is a usage error
// here (exit 2), not a failure to open the store (exit 1).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** Parses `s3://BUCKET[/PREFIX]`; a usage error (exit 2) says what is wrong. */
export function parseStoreUrl (url: string): { bucket: string, prefix: string } {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(url)
  if (m === null) throw new UsageError(`--store ${JSON.stringify(url)} is not s3://BUCKET[/PREFIX] (without --store, the store is <repo>/store)`)
  const [, bucket, rest = ''] = m
  if (!BUCKET.test(bucket) || bucket.includes('..')) throw new UsageError(`--store ${JSON.stringify(url)}: ${JSON.stringify(bucket)} is not a bucket name (3 to 63 lower-case letters, digits, '.' or '-')`)
  const trimmed = rest.replace(/\/+$/, '')
  if (trimmed !== '' && trimmed.split('/').some(s => s === '' || s === '.' || s === '..')) {
    throw new UsageError(`--store ${JSON.stringify(url)}: the prefix has an empty, '.' or '..' segment`)
  }
  return { bucket, prefix: trimmed === '' ? '' : `${trimmed}/` }
}

/** What the flags (and the environment, for the fallbacks) choose. */
export function storeChoice (flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): StoreChoice {
  if (flags.store === undefined) {
    const stray = flags.s3Endpoint !== undefined ? '--s3-endpoint' : flags.s3Region !== undefined ? '--s3-region' : flags.s3PathStyle === true ? '--s3-path-style' : undefined
    if (stray !== undefined) throw new UsageError(`${stray} needs --store s3://BUCKET[/PREFIX]`)
    return { kind: 'fs' }
  }
  const { bucket, prefix } = parseStoreUrl(flags.store)
  const endpoint = nonEmpty(flags.s3Endpoint) ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL)
  if (endpoint !== undefined) checkEndpoint(endpoint, flags.s3Endpoint !== undefined ? '--s3-endpoint' : 'AWS_ENDPOINT_URL')
  if (flags.s3Region !== undefined && !/^[a-z0-9-]{1,64}$/i.test(flags.s3Region)) throw new UsageError(`--s3-region ${JSON.stringify(flags.s3Region)} is not a region name (such as us-east-1)`)
  let region = nonEmpty(flags.s3Region) ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION)
  // A self-hosted server rarely cares, and the SDK refuses to sign without one; AWS itself gets
  // the profile's region (the SDK reads ~/.aws/config when none is given here).
  if (region === undefined && endpoint !== undefined && env.AWS_PROFILE === undefined) region = 'us-east-1'
  return {
    kind: 's3',
    bucket,
    prefix,
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(region !== undefined ? { region } : {}),
    ...(flags.s3PathStyle === true ? { forcePathStyle: true } : {}),
    url: `s3://${bucket}/${prefix}`
  }
}

function checkEndpoint (endpoint: string, from: string): void {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new UsageError(`${from} ${JSON.stringify(endpoint)} is not a URL (such as http://127.0.0.1:8080)`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${from} ${JSON.stringify(endpoint)} is not an http:// or https:// URL`)
}

function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim()
}
