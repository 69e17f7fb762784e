/**
 * Idle timeouts for byte sources. libp2p 3 keeps an `inactivityTimeout` on streams but yamux
 * does not enforce it, so dstore guards every transfer itself: a source that delivers nothing
 * for `ms` fails with `TimeoutError` (and the caller resets the stream), which is what stops a
 * slow or stalled peer from holding a transfer open forever.
 */
import { TimeoutError } from '../core/errors.js'

export async function * idleTimeout<T> (source: AsyncIterable<T>, ms: number, what: string): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]()
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(new TimeoutError(`${what}: nothing received for ${ms} ms`)) }, ms)
      })
      let result: IteratorResult<T>
      try {
        result = await Promise.race([it.next(), timeout])
      } finally {
        clearTimeout(timer)
      }
      if (result.done === true) return
      yield result.value
    }
  } finally {
    void it.return?.()
  }
}

/** Rejects with `TimeoutError` if `promise` takes longer than `ms`. */
export async function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new TimeoutError(`${what}: no answer within ${ms} ms`)) }, ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}
