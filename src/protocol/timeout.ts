/**
 * Timeouts for transfers. libp2p 3 keeps an `inactivityTimeout` on streams but yamux does not
 * enforce it, so dstore guards every transfer itself: a transfer that makes no progress for the
 * limit fails with `TimeoutError` and its stream is reset. Progress is at least
 * {@link MIN_TRANSFER_PROGRESS} bytes read or written: a peer that drips a byte now and then
 * (slowloris) makes none, so it cannot hold a transfer open forever either.
 */
import { TimeoutError } from '../core/errors.js'
import { MIN_TRANSFER_PROGRESS } from './constants.js'

/**
 * Fires `onIdle` once if less than `minBytes` are reported through `touch()` in `ms`. One timer
 * per transfer, re-armed lazily: `touch()` only adds and records the time, so it is cheap
 * enough to call for every chunk.
 */
export class IdleWatchdog {
  private last = Date.now()
  private pending = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly ms: number, private readonly what: string, private readonly onIdle: (err: TimeoutError) => void,
    private readonly minBytes = MIN_TRANSFER_PROGRESS) {
    this.arm(ms)
  }

  /** Records `n` bytes read or written; without `n`, records progress outright. */
  touch (n = Infinity): void {
    this.pending += n
    if (this.pending < this.minBytes) return
    this.pending = 0
    this.last = Date.now()
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm (delay: number): void {
    this.timer = setTimeout(() => {
      const idle = Date.now() - this.last
      if (idle >= this.ms) {
        this.timer = undefined
        this.onIdle(new TimeoutError(`${this.what}: less than ${this.minBytes} bytes moved in ${this.ms} ms`))
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
