/**
 * The S3 client's retry policy: a bounded number of attempts with exponential backoff and full
 * jitter, for throttling (503 SlowDown), 500/502/503/504 and network failures; never for 4xx
 * nor for a 501.
 *
 * It replaces the SDK's standard strategy for two reasons: its bounds are ours to set (tests use
 * short delays), and it has no shared retry quota, so one burst of failures does not switch
 * retries off for every later request. The SDK does not retry a request whose body is a stream
 * (it cannot be sent twice): callers that want retries send parts as buffers.
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3'
import type { S3RetryOptions } from './config.js'

/** What the SDK tells a strategy about a failed attempt (a subset of its RetryErrorInfo). */
interface RetryErrorInfo {
  errorType: 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR'
  retryAfterHint?: Date
}

interface RetryToken { getRetryCount: () => number, getRetryDelay: () => number }

/** The SDK's RetryStrategyV2, structurally. */
export interface S3RetryStrategy {
  acquireInitialRetryToken: (scope: string) => Promise<RetryToken>
  refreshRetryTokenForRetry: (token: RetryToken, info: RetryErrorInfo) => Promise<RetryToken>
  recordSuccess: (token: RetryToken) => void
}

// The SDK must accept it as its retryStrategy (a compile-time check only).
const _fits: (s: S3RetryStrategy) => S3ClientConfig['retryStrategy'] = s => s
void _fits

class Token implements RetryToken {
  constructor (private readonly count: number, private readonly delay: number) {}
  getRetryCount (): number { return this.count }
  getRetryDelay (): number { return this.delay }
  getRetryTokenCount (): number { return 0 }
}

/** A retry strategy (the SDK's RetryStrategyV2) with the given bounds. */
export function retryStrategy (options: Required<S3RetryOptions>): S3RetryStrategy {
  const { maxAttempts, baseDelay, maxDelay } = options
  return {
    async acquireInitialRetryToken (): Promise<RetryToken> { return new Token(0, 0) },
    async refreshRetryTokenForRetry (token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
      const retries = token.getRetryCount()
      // THROTTLING: SlowDown and the like; TRANSIENT: 500, 502, 503, 504 and network failures.
      // Other 5xx (SERVER_ERROR, e.g. 501 NotImplemented) would fail the same way again.
      if ((info.errorType !== 'THROTTLING' && info.errorType !== 'TRANSIENT') || retries + 1 >= maxAttempts) throw new Error('no retry')
      // Full jitter: random in [0, min(maxDelay, base · 2^n)], but no earlier than a Retry-After hint (capped).
      let delay = Math.random() * Math.min(maxDelay, baseDelay * 2 ** retries)
      if (info.retryAfterHint != null) delay = Math.max(delay, Math.min(maxDelay, info.retryAfterHint.getTime() - Date.now()))
      return new Token(retries + 1, Math.floor(delay))
    },
    recordSuccess (): void {}
  }
}
