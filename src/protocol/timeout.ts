/**
 * Timeouts for transfers. libp2p 3 keeps an `inactivityTimeout` on streams but yamux does not
 * enforce it, so dstore guards every transfer itself: a transfer that makes no progress (no
 * byte read or written) for the limit fails with `TimeoutError` and its stream is reset. That
 * is what stops a stalled or slow-dripping peer from holding a transfer open forever.
 */
import { TimeoutError } from '../core/errors.js'

/**
 * Fires `onIdle` once if `touch()` is not called for `ms`. One timer per transfer, re-armed
 * lazily: `touch()` only records the time, so it is cheap enough to call for every chunk.
 */
export class IdleWatchdog {
  private last = Date.now()
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly ms: number, private readonly what: string, private readonly onIdle: (err: TimeoutError) => void) {
    this.arm(ms)
  }

  /** Records progress. */
  touch (): void { this.last = Date.now() }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm (delay: number): void {
    this.timer = setTimeout(() => {
      const idle = Date.now() - this.last
      if (idle >= this.ms) {
        this.timer = undefined
        this.onIdle(new TimeoutError(`${this.what}: no progress for ${this.ms} ms`))
      } else {
        this.arm(this.ms - idle)
      }
    }, delay)
    // A watchdog never keeps the process alive by itself.
    this.timer.unref?.()
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
