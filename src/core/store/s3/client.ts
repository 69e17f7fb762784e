/**
 * The S3 client layer of the S3 store: one SDK v3 `S3Client` per store, configured for
 * S3-compatible servers as well as AWS, whose every failure is a typed dstore error, whose
 * retries are bounded, and whose calls are counted by operation.
 *
 * Middleware stack of a call (outermost first):
 * 1. `dstoreS3Errors` (initialize step): counts the call in {@link s3Stats} and turns a failure,
 *    after the retries, into a dstore error ({@link s3Error}); the SDK error is its `cause`.
 * 2. the SDK's retry middleware, driven by our {@link retryStrategy} (bounded, jittered backoff).
 * 3. signing, then one HTTP request per attempt.
 *
 * Checksums are computed and checked only when an operation requires them (`WHEN_REQUIRED`):
 * the SDK's default sends streamed bodies as `aws-chunked` with trailing CRC32s, which Swift's
 * s3api (and other self-hosted servers) answer with 501. Integrity does not rest on S3's
 * checksums anyway: every byte dstore serves is verified against its BLAKE3 tree.
 */
import { S3Client } from '@aws-sdk/client-s3'
import { resolveS3Config, type ResolvedS3Config, type S3Config } from './config.js'
import { retryStrategy } from './retry.js'
import { s3Error, where } from './s3-error.js'
import { processStats, S3StatsRecorder, type S3Stats } from './stats.js'
import { NotFoundError } from '../../errors.js'

export { parseS3Url, normalisePrefix, resolveS3Config, type S3Config, type S3Credentials, type S3RetryOptions, type ResolvedS3Config } from './config.js'
export { s3Error, s3Body, isNetworkError } from './s3-error.js'
export type { S3OpStats, S3Stats } from './stats.js'

const recorders = new WeakMap<S3Client, S3StatsRecorder>()
const configs = new WeakMap<S3Client, ResolvedS3Config>()

/**
 * An SDK v3 S3 client for `config` (with the environment fallbacks of {@link resolveS3Config}).
 * Its `send` rejects only with dstore errors, after at most `retry.maxAttempts` attempts for
 * throttling, 5xx and network failures. Pass it to `@aws-sdk/lib-storage`'s `Upload` as is:
 * its calls are counted and mapped too. `destroy()` it when done (closes its sockets).
 * @throws {ConfigError} for a bad bucket, prefix, endpoint or bound.
 */
export function createS3Client (config: S3Config): S3Client {
  const c = resolveS3Config(config)
  // dstore pins its SDK release (later ones need Node 22); the SDK's warning about that would
  // be printed by every command on Node 20 and tells the user nothing they can act on.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  // Agent *options*, not Agent instances: with its own agents the SDK waits for
  // `100 Continue` before sending a large body; with ours it sends at once, and a server that
  // refuses early (413, 403) makes the socket's late EPIPE an unhandled 'error' that kills the
  // process (seen with Swift and a 9 MiB PutObject over its max_file_size).
  const agentOptions = { keepAlive: true, maxSockets: c.maxSockets }
  // The SDK logs to the console when it has no logger (e.g. "non-retryable streaming request").
  const say = (level: string) => (...args: unknown[]): void => { c.log?.(`s3: ${level}: ${args.map(a => a instanceof Error ? a.message : String(a)).join(' ')}`) }
  // Not `error`: the SDK's logger middleware logs every failed command there, 404s of a `has`
  // included, as an object ("[object Object]"); each failure already reaches the caller as a
  // typed dstore error, which says more.
  const logger = { trace: () => {}, debug: () => {}, info: () => {}, warn: say('warning'), error: () => {} }
  const client = new S3Client({
    ...(c.endpoint != null ? { endpoint: c.endpoint } : {}),
    ...(c.region != null ? { region: c.region } : {}),
    ...(c.credentials != null ? { credentials: c.credentials } : {}),
    forcePathStyle: c.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    retryStrategy: retryStrategy(c.retry),
    maxAttempts: c.retry.maxAttempts,
    logger,
    requestHandler: {
      connectionTimeout: c.connectTimeout,
      httpAgent: agentOptions,
      httpsAgent: agentOptions
    }
  })
  const recorder = new S3StatsRecorder(processStats)
  recorders.set(client, recorder)
  configs.set(client, c)
  client.middlewareStack.add((next, context) => async (args) => {
    const op = String(context.commandName ?? 'Unknown').replace(/Command$/, '')
    const input = args.input as { Bucket?: unknown, Key?: unknown }
    try {
      const result = await next(args)
      recorder.record(op, (result.output as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1, 'ok')
      return result
    } catch (err) {
      const attempts = (err as { $metadata?: { attempts?: number } })?.$metadata?.attempts ?? 1
      const mapped = s3Error(err, op, where(input))
      recorder.record(op, attempts, mapped instanceof NotFoundError ? 'notFound' : 'error')
      throw mapped
    }
  }, { step: 'initialize', priority: 'high', name: 'dstoreS3Errors' })
  return client
}

/**
 * Counters by S3 operation (`PutObject`, `GetObject`, ...): of `client` (one made by
 * {@link createS3Client}), or of every such client in this process when none is given.
 */
export function s3Stats (client?: S3Client): S3Stats {
  if (client == null) return processStats.snapshot()
  return recorders.get(client)?.snapshot() ?? {}
}

/** The settings `client` was made with (bucket, normalised prefix, resolved endpoint and region). */
export function s3ClientConfig (client: S3Client): ResolvedS3Config | undefined {
  return configs.get(client)
}
