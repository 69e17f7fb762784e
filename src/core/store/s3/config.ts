/**
 * Where an S3 store lives (`s3://BUCKET[/PREFIX]`) and how to reach it: endpoint, region,
 * addressing style, credentials and retry bounds. Anything not given comes from the standard AWS
 * environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...) and, for credentials, the SDK's default
 * provider chain (environment, shared config and credentials files with `AWS_PROFILE`, SSO,
 * container and instance metadata).
 */
import { ConfigError } from '../../errors.js'

/** Static S3 credentials (otherwise the SDK's default provider chain finds them). */
export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

/** How retries of throttled (503 SlowDown), failed (5xx) and unreachable requests are bounded. */
export interface S3RetryOptions {
  /** Attempts per request, the first included. @default 4 */
  maxAttempts?: number
  /** Backoff before retry n is a random delay in [0, min(maxDelay, baseDelay · 2^n)] ms. @default 100 */
  baseDelay?: number
  /** @default 2000 */
  maxDelay?: number
}

/** An S3 bucket (and key prefix) to store into, and how to reach it. */
export interface S3Config {
  bucket: string
  /** Key prefix, `''` or ending in `/` (added when missing). @default '' */
  prefix?: string
  /** An S3-compatible server's URL. @default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS's own endpoints */
  endpoint?: string
  /** @default AWS_REGION, AWS_DEFAULT_REGION, else the SDK's profile lookup with AWS_PROFILE set, else `us-east-1` when an endpoint is set, else the SDK's profile lookup */
  region?: string
  /** Path-style URLs (`http://host/bucket/key`), which most self-hosted servers need. @default false */
  forcePathStyle?: boolean
  /** @default the SDK's default credential provider chain */
  credentials?: S3Credentials
  retry?: S3RetryOptions
  /** Most sockets open to the endpoint at once. @default 128 */
  maxSockets?: number
  /** Time to open a connection, in ms. @default 5000 */
  connectTimeout?: number
  /** Where the SDK's warnings and errors go (one line each, prefixed `s3: `). @default nowhere */
  log?: (line: string) => void
}

/** A bucket name S3 accepts: 3–63 of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** The bucket and normalised prefix of an `s3://BUCKET[/PREFIX]` URL. @throws {ConfigError} */
export function parseS3Url (url: string): { bucket: string, prefix: string } {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(url)
  if (m == null) throw new ConfigError(`not an S3 URL: ${JSON.stringify(url)} (expected s3://BUCKET[/PREFIX])`)
  const bucket = m[1]
  checkBucket(bucket)
  return { bucket, prefix: normalisePrefix(m[2] ?? '') }
}

/** `''` stays `''`; anything else ends in exactly one `/` and starts with none. @throws {ConfigError} */
export function normalisePrefix (prefix: string): string {
  const p = prefix.replace(/^\/+/, '').replace(/\/+$/, '')
  if (p === '') return ''
  if (p.split('/').some(s => s === '' || s === '.' || s === '..')) throw new ConfigError(`bad S3 key prefix ${JSON.stringify(prefix)}: empty, "." or ".." segments`)
  if (Buffer.byteLength(p) > 512) throw new ConfigError('S3 key prefix longer than 512 bytes (S3 keys are at most 1024)')
  return p + '/'
}

/** @throws {ConfigError} when `bucket` is not a valid S3 bucket name. */
export function checkBucket (bucket: string): void {
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new ConfigError(`bad S3 bucket name ${JSON.stringify(bucket)} (3–63 characters of a-z, 0-9, "." and "-")`)
  }
}

/** The settings the client is built from, after environment fallbacks. */
export interface ResolvedS3Config {
  bucket: string
  prefix: string
  endpoint?: string
  region?: string
  forcePathStyle: boolean
  credentials?: S3Credentials
  retry: Required<S3RetryOptions>
  maxSockets: number
  connectTimeout: number
  log?: (line: string) => void
}

/** Applies the defaults and environment fallbacks to `config`. @throws {ConfigError} */
export function resolveS3Config (config: S3Config, env: NodeJS.ProcessEnv = process.env): ResolvedS3Config {
  if (config == null || typeof config.bucket !== 'string') throw new ConfigError('an S3 store needs a bucket')
  checkBucket(config.bucket)
  const endpoint = nonEmpty(config.endpoint) ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL)
  if (endpoint != null) {
    let u: URL
    try { u = new URL(endpoint) } catch { throw new ConfigError(`bad S3 endpoint ${JSON.stringify(endpoint)}: not a URL`) }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`bad S3 endpoint ${JSON.stringify(endpoint)}: http or https only`)
  }
  // A self-hosted endpoint rarely cares about the region, but SigV4 signs one: us-east-1 is what
  // most of them (Swift s3api, MinIO, Ceph RGW) expect when none is configured. With AWS_PROFILE
  // set, the profile's region (which the SDK reads from ~/.aws/config) comes first.
  const region = nonEmpty(config.region) ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ??
    (endpoint != null && nonEmpty(env.AWS_PROFILE) == null ? 'us-east-1' : undefined)
  const r = config.retry ?? {}
  const retry = {
    maxAttempts: positiveInt(r.maxAttempts, 4, 'retry.maxAttempts'),
    baseDelay: nonNegative(r.baseDelay, 100, 'retry.baseDelay'),
    maxDelay: nonNegative(r.maxDelay, 2000, 'retry.maxDelay')
  }
  const c = config.credentials
  if (c != null && (typeof c.accessKeyId !== 'string' || typeof c.secretAccessKey !== 'string')) {
    throw new ConfigError('S3 credentials need accessKeyId and secretAccessKey')
  }
  return {
    bucket: config.bucket,
    prefix: normalisePrefix(config.prefix ?? ''),
    endpoint,
    region,
    forcePathStyle: config.forcePathStyle ?? false,
    credentials: c,
    retry,
    maxSockets: positiveInt(config.maxSockets, 128, 'maxSockets'),
    connectTimeout: positiveInt(config.connectTimeout, 5000, 'connectTimeout'),
    ...(typeof config.log === 'function' ? { log: config.log } : {})
  }
}

function nonEmpty (s: string | undefined): string | undefined {
  return s == null || s.trim() === '' ? undefined : s.trim()
}

function positiveInt (v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < 1) throw new ConfigError(`S3 ${what} must be a positive integer`)
  return v
}

function nonNegative (v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`S3 ${what} must be a number >= 0`)
  return v
}
