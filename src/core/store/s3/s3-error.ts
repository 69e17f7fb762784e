/**
 * S3 failures as dstore's typed errors. No raw SDK error reaches a caller: the client's outermost
 * middleware passes every failure through {@link s3Error} (after the retries), and a body
 * stream's failures go through {@link s3Body}. The SDK error stays as `cause`.
 *
 * HEAD answers carry no body, so their errors have no S3 code (`NotFound`, `Unknown`): the HTTP
 * status decides then.
 */
import {
  AbortError, ConfigError, DstoreError, NotFoundError, OutOfRangeError, PermissionDeniedError,
  StorageError, StoreUnavailableError, TooLargeError
} from '../../errors.js'

/** What an SDK error looks like, as far as the mapping cares. */
interface SdkErrorLike {
  name?: string
  code?: string
  message?: string
  Code?: string
  $fault?: string
  $metadata?: { httpStatusCode?: number, attempts?: number }
  cause?: unknown
}

/** Node's codes for a server that cannot be reached or dropped the connection. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN',
  'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE'
])
const AUTH_CODES = new Set([
  'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken',
  'TokenRefreshRequired', 'AllAccessDisabled', 'AccountProblem', 'InvalidSecurity'
])
const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload'])

/** `s3://bucket/key` for messages, from a command's input. */
export function where (input: { Bucket?: unknown, Key?: unknown } | undefined): string {
  const bucket = typeof input?.Bucket === 'string' ? input.Bucket : '?'
  return typeof input?.Key === 'string' ? `s3://${bucket}/${input.Key}` : `s3://${bucket}`
}

/** A network-level failure (nothing, or nothing whole, came back from the endpoint). */
export function isNetworkError (err: unknown, depth = 0): boolean {
  const e = err as SdkErrorLike | undefined
  if (e == null || typeof e !== 'object' || depth > 5) return false
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true
  // The SDK's own connection and socket timeouts.
  if (e.name === 'TimeoutError' && e.$metadata?.httpStatusCode == null) return true
  return isNetworkError(e.cause, depth + 1)
}

/**
 * The dstore error for a failed S3 operation `op` (`GetObject`, ...) on `at` (`s3://bucket/key`):
 * - missing key or upload (404, `NoSuchKey`, `NoSuchUpload`): NotFoundError;
 * - missing bucket (`NoSuchBucket`): StorageError naming the bucket (a configuration problem, not a missing blob);
 * - refused credentials (403, `AccessDenied`, `InvalidAccessKeyId`, `SignatureDoesNotMatch`, ...): PermissionDeniedError;
 * - a wrong region (`AuthorizationHeaderMalformed`, `PermanentRedirect`), no credentials found: ConfigError;
 * - unreachable endpoint, dropped connection, 503 (`SlowDown`, `ServiceUnavailable`) after the retries: StoreUnavailableError;
 * - `InvalidRange` (416): OutOfRangeError; `EntityTooLarge`: TooLargeError; an abort: AbortError;
 * - anything else: StorageError with the S3 code and status in the message.
 * A DstoreError passes through unchanged.
 */
export function s3Error (err: unknown, op: string, at = 's3'): DstoreError {
  if (err instanceof DstoreError) return err
  const e = (err ?? {}) as SdkErrorLike
  const status = e.$metadata?.httpStatusCode
  const code = e.Code ?? (e.name !== 'Error' && e.name !== 'Unknown' && e.name !== 'UnknownError' ? e.name : undefined) ?? e.code
  const detail = cleanMessage(e.message)
  const attempts = (e.$metadata?.attempts ?? 1) > 1 ? ` after ${e.$metadata?.attempts} attempts` : ''
  const opts = { cause: err }
  if (e.name === 'AbortError' || code === 'AbortError') return new AbortError(`S3 ${op} ${at} was aborted`, opts)
  if (e.name === 'CredentialsProviderError' || code === 'CredentialsProviderError') {
    return new ConfigError(`no S3 credentials for ${op} ${at}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (${detail})`, opts)
  }
  if (status == null && isNetworkError(err)) {
    return new StoreUnavailableError(`S3 endpoint unreachable for ${op} ${at}${attempts}: ${networkReason(err)}`, opts)
  }
  if (code === 'NoSuchBucket') return new StorageError(`S3 bucket of ${at} does not exist (${op})`, opts)
  if ((code != null && NOT_FOUND_CODES.has(code)) || status === 404) return new NotFoundError(`${at} not found (S3 ${op})`, opts)
  if ((code != null && AUTH_CODES.has(code)) || status === 403) {
    return new PermissionDeniedError(`S3 refused ${op} ${at}: ${code != null && code !== 'Forbidden' ? code : '403 Forbidden'} (check the access key and secret)`, opts)
  }
  if (code === 'AuthorizationHeaderMalformed' || code === 'PermanentRedirect' || code === 'IllegalLocationConstraintException') {
    return new ConfigError(`S3 ${op} ${at}: wrong region or endpoint (${code}: ${detail})`, opts)
  }
  if (e.message?.startsWith('Region is missing') === true) return new ConfigError('no S3 region: set AWS_REGION or --s3-region', opts)
  if (code === 'InvalidRange' || status === 416) return new OutOfRangeError(`S3 ${op} ${at}: the range is outside the object`, opts)
  if (code === 'EntityTooLarge') return new TooLargeError(`S3 ${op} ${at}: ${detail}`, opts)
  if (status === 503 || code === 'SlowDown' || code === 'ServiceUnavailable' || code === 'Throttling' || code === 'RequestLimitExceeded') {
    return new StoreUnavailableError(`S3 is throttling or unavailable for ${op} ${at}${attempts}: ${code ?? status}`, opts)
  }
  const what = [code, status != null ? String(status) : undefined].filter(Boolean).join(' ')
  return new StorageError(`S3 ${op} ${at} failed${attempts}: ${what !== '' ? what + ': ' : ''}${detail}`, opts)
}

/**
 * A GetObject body as an async iterable whose failures (a connection cut mid-body) are dstore
 * errors too. `body` is the SDK's `Body` (a Node readable in Node).
 */
export async function * s3Body (body: unknown, op: string, at = 's3'): AsyncGenerator<Uint8Array> {
  if (body == null) return
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array>) yield chunk
  } catch (err) {
    throw s3Error(err, op, at)
  }
}

function networkReason (err: unknown): string {
  const e = err as SdkErrorLike
  if (typeof e.code === 'string') return e.code
  if (e.cause != null) return networkReason(e.cause)
  return cleanMessage(e.message)
}

/** The SDK's messages for body-less answers say "UnknownError": keep them short and on one line. */
function cleanMessage (message: string | undefined): string {
  const m = (message ?? '').split('\n')[0].trim()
  return m === '' || m === 'UnknownError' ? 'no detail' : m
}
