/**
 * The one retry policy of a Local's calls to Global. Every operation is idempotent (keys are
 * content hashes), so a call whose channel broke before it got an answer is retried on the
 * next connection (once with one Global; with several, once per Global, each retry on another
 * Global when one is connected: globals.ts) — unless it has already delivered part of a stream (or consumed a source that
 * cannot be replayed). How a call ends:
 *
 * - the Local was stopped meanwhile: ClosedError, always (whatever the transfer broke with);
 * - the caller aborted: AbortError;
 * - Global answered (a typed error): that error;
 * - the connection failed and a retry is not possible or failed too: GlobalUnreachableError.
 */
import { asAbortError } from '../../core/abort.js'
import { ClosedError, DstoreError, GlobalUnreachableError } from '../../core/errors.js'
import type { RequesterContext } from '../../protocol/requester.js'
import type { GlobalRoute } from './globals.js'

export interface RetryOptions {
  signal?: AbortSignal
  /** Whether the call may still be retried (nothing delivered yet); default always. */
  canRetry?: () => boolean
  /** What the call was, for the message when it gives up ("during a streamed read"). */
  what?: string
  /** Errors passed on unchanged, never taken for a failed connection (a put source's own). */
  passes?: (err: unknown) => boolean
  /** The key the call is about (its digest): which Global it goes to (rendezvous hashing). */
  key?: Uint8Array
}

/**
 * Runs the streaming call `fn` on the channel to Global, under the retry policy above.
 * {@link callGlobal} is the same for a call with one answer.
 */
export async function * withGlobal<T> (conn: GlobalRoute, options: RetryOptions, fn: (ctx: RequesterContext) => AsyncIterable<T>): AsyncGenerator<T> {
  let failed: RequesterContext | undefined
  for (let attempt = 0; ; attempt++) {
    let ctx: RequesterContext | undefined
    try {
      ctx = await conn.context(options.signal, options.key, failed)
      yield * fn(ctx)
      return
    } catch (err) {
      giveUpOrRetry(conn, options, err, ctx, attempt)
      failed = ctx
    }
  }
}

/**
 * {@link withGlobal} for a call with one answer (the same policy, without a generator: most
 * calls are small, and an async generator costs a few microtask hops per call).
 */
export async function callGlobal<T> (conn: GlobalRoute, options: RetryOptions, fn: (ctx: RequesterContext) => Promise<T>): Promise<T> {
  let failed: RequesterContext | undefined
  for (let attempt = 0; ; attempt++) {
    let ctx: RequesterContext | undefined
    try {
      ctx = await conn.context(options.signal, options.key, failed)
      return await fn(ctx)
    } catch (err) {
      giveUpOrRetry(conn, options, err, ctx, attempt)
      failed = ctx
    }
  }
}

/** The retry policy: throws the error a failed attempt ends the call with, or returns to retry. */
function giveUpOrRetry (conn: GlobalRoute, options: RetryOptions, err: unknown, ctx: RequesterContext | undefined, attempt: number): void {
  const { signal } = options
  if (conn.stopped) throw stoppedError(err)
  if (ctx === undefined) throw err // no channel: context() says why
  if (options.passes?.(err) === true) throw err
  if (signal?.aborted === true) throw asAbortError(err, signal)
  if (!isChannelFailure(err)) throw err
  // Part of the value was delivered (or the retry broke too): it cannot be resumed here.
  // Say the connection was lost, not that the data was bad (a truncated verified stream
  // is a VerificationError to the decoder; nothing unverified was delivered either way).
  if (attempt >= conn.retries) throw connectionLost(err, `${options.what ?? ''} and again after a retry`)
  if (options.canRetry?.() === false) throw connectionLost(err, options.what ?? '')
}

/**
 * A failure of the connection itself (not an answer from Global), after which a retry may work:
 * a ClosedError (the rpc channel closed), a GlobalUnreachableError (the requester found a blob
 * stream cut under a transfer, reset by Global or the connection, or ended early while the
 * connection went down; it carries the close reason), or an error that is not dstore's
 * (libp2p's stream resets and EOFs: answers from Global are always typed). A truncated stream
 * or a missing answer on a healthy connection is Global's fault, and is not retried.
 */
export function isChannelFailure (err: unknown): boolean {
  if (err instanceof DstoreError) return err instanceof ClosedError || err instanceof GlobalUnreachableError
  return true
}

/** The error of a call in flight when the Local stopped: whatever the transfer broke with is only the cause. */
export function stoppedError (err: unknown): ClosedError {
  if (err instanceof ClosedError) return err
  return new ClosedError('this Local was stopped during the call', { cause: err })
}

/** The error a call gives up with when the connection to Global failed under it. */
function connectionLost (err: unknown, when: string): DstoreError {
  if (err instanceof GlobalUnreachableError) return err
  const why = err instanceof Error ? `${err.name}: ${err.message}` : err instanceof Event ? `a '${err.type}' event` : String(err)
  return new GlobalUnreachableError(`the connection to Global failed${when !== '' ? ' ' + when.trim() : ''} (${why})`, { cause: err })
}
