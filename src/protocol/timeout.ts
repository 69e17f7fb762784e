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
  /** Holds in progress ({@link hold}), and when the outermost began. */
  private held = 0
  private heldSince = 0

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

  /**
   * Waits for `promise` with the clock stopped: time spent in it is not idleness. For waits of
   * our own making (Global's egress cap), which must not count against the peer.
   */
  async hold<T> (promise: Promise<T>): Promise<T> {
    if (this.held++ === 0) this.heldSince = Date.now()
    try {
      return await promise
    } finally {
      if (--this.held === 0) this.last += Date.now() - this.heldSince
    }
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm (delay: number): void {
    this.timer = setTimeout(() => {
      // While held, the clock is stopped: look again a full period later.
      if (this.held > 0) { this.arm(this.ms); return }
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
