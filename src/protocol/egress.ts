/**
 * Global's egress cap (`GlobalOptions.maxEgress`, `dstore global --max-egress`): a token bucket
 * over the value bytes Global sends, shared by every transfer to every peer.
 *
 * It is a GCRA ("virtual scheduling") bucket: each `take(n)` reserves its `n` bytes at once, in
 * call order, and waits until the bucket's clock allows them. So:
 * - callers are served first come, first served: a large transfer that takes its bytes a slice
 *   at a time ({@link EGRESS_SLICE}) queues behind every other transfer's slice, and a peer
 *   asking for a small value is not stuck behind another's gigabyte;
 * - at most `burst` bytes go out at once after an idle spell; over any longer time, at most
 *   `rate` bytes per second (plus that one burst);
 * - no timer runs while nobody waits, and the state is two numbers.
 */

/** The most bytes one `take` asks for in the provider: a transfer's turn in the queue is at most this long. */
export const EGRESS_SLICE = 64 * 1024

/** The lowest cap accepted (bytes/s): below it, Locals' own transfer watchdogs could time out. */
export const MIN_EGRESS = 64 * 1024

export interface EgressBucketOptions {
  /** Bytes allowed at once after an idle spell; default 1/10 s of `rate`, at least {@link EGRESS_SLICE}. */
  burst?: number
  /** The clock, in ms (tests). @default performance.now */
  now?: () => number
  /** Waits `ms` (tests). @default setTimeout */
  sleep?: (ms: number) => Promise<void>
}

/** A token bucket: `rate` bytes per second, first come first served. */
export class EgressBucket {
  /** The time (ms, on `now()`'s clock) at which every byte reserved so far is within the rate. */
  private tat: number
  private readonly burstMs: number
  private readonly now: () => number
  private readonly sleep: (ms: number) => Promise<void>
  /** Total time callers waited for their bytes, ms. */
  waitedMs = 0

  /** @param rate bytes per second, > 0 */
  constructor (readonly rate: number, options: EgressBucketOptions = {}) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`egress rate must be a positive number of bytes per second, not ${rate}`)
    const burst = options.burst ?? Math.max(EGRESS_SLICE, rate / 10)
    this.burstMs = burst / rate * 1000
    this.now = options.now ?? (() => performance.now())
    this.sleep = options.sleep ?? (async (ms) => { await new Promise(resolve => setTimeout(resolve, ms)) })
    this.tat = this.now()
  }

  /**
   * Reserves `n` bytes and resolves when they may be sent. Reservations are made in call order,
   * so waiters are released in that order. Aborting does not give the bytes back (the next
   * callers wait as if they had been sent: the cap errs on the low side).
   */
  async take (n: number, signal?: AbortSignal): Promise<void> {
    const now = this.now()
    this.tat = Math.max(this.tat, now) + n / this.rate * 1000
    const wait = this.tat - now - this.burstMs
    if (wait <= 0) return
    signal?.throwIfAborted()
    this.waitedMs += wait
    await this.sleep(wait)
    signal?.throwIfAborted()
  }

  /** How long a `take` made now would wait, ms (0 when bytes may go at once). */
  get backlogMs (): number {
    return Math.max(0, this.tat - this.now() - this.burstMs)
  }
}

/**
 * `source`, held to `bucket` (a slice of at most {@link EGRESS_SLICE} bytes at a time); `source`
 * itself when there is no bucket. For value bytes that leave other than on a blob stream (the
 * HTTP gateway).
 */
export function capped (source: AsyncIterable<Uint8Array>, bucket: EgressBucket | undefined, signal?: AbortSignal): AsyncIterable<Uint8Array> {
  if (bucket === undefined) return source
  return (async function * () {
    for await (const part of source) {
      for (let o = 0; o < part.length; o += EGRESS_SLICE) {
        const slice = part.length <= EGRESS_SLICE ? part : part.subarray(o, o + EGRESS_SLICE)
        await bucket.take(slice.length, signal)
        yield slice
      }
    }
  })()
}
