/**
 * Credit-based flow control for blob streams (docs/PROTOCOL.md, "Flow control").
 *
 * libp2p's stream iterator queues whatever arrives and yamux grants window on arrival, not on
 * consumption, so without this a receiver slower than the network (a disk, a slow consumer)
 * buffers a whole transfer. Here the receiver grants credit as it consumes: the total number of
 * bytes the sender may have sent. The first {@link BLOB_WINDOW} bytes need no grant.
 */
import type { Stream } from '@libp2p/interface'
import { BLOB_WINDOW } from './constants.js'
import { writeFrame } from './framing.js'
import { encodeCredit } from './messages.js'

/** The sending side: waits for credit before each piece. */
export class CreditGate {
  private credit: number
  private sent = 0
  private waiter: { resolve: () => void, reject: (e: Error) => void } | undefined
  private failure: Error | undefined
  private ending: Error | undefined

  constructor (window = BLOB_WINDOW) { this.credit = window }

  /** Applies a CREDIT message. Credit only grows. */
  grant (total: number): void {
    if (total <= this.credit) return
    this.credit = total
    const w = this.waiter
    this.waiter = undefined
    w?.resolve()
  }

  /** Makes every wait (now and later) fail: the transfer is over. */
  fail (err: Error): void {
    this.failure ??= err
    const w = this.waiter
    this.waiter = undefined
    w?.reject(err)
  }

  /**
   * No more credit can come (the receiver closed its side): sending within the credit already
   * granted goes on, but a wait for more fails with `err` instead of waiting forever.
   */
  end (err: Error): void {
    this.ending ??= err
    if (this.waiter != null) this.fail(err)
  }

  /** Waits until a piece of `n` bytes may be sent (a piece may end past the credit). */
  async take (n: number): Promise<void> {
    while (this.sent >= this.credit) {
      if (this.failure != null) throw this.failure
      if (this.ending != null) this.fail(this.ending)
      if (this.failure != null) throw this.failure
      await new Promise<void>((resolve, reject) => { this.waiter = { resolve, reject } })
    }
    if (this.failure != null) throw this.failure
    this.sent += n
  }
}

/** The receiving side: grants more credit as bytes are consumed, half a window at a time. */
export class CreditGrantor {
  private consumed = 0
  private granted: number

  constructor (private readonly stream: Stream, private readonly window = BLOB_WINDOW) {
    this.granted = window
  }

  /** Records `n` bytes consumed; sends a CREDIT message when half a window has been used. */
  consume (n: number): void {
    this.consumed += n
    if (this.consumed + this.window - this.granted < this.window / 2) return
    this.granted = this.consumed + this.window
    // A write that fails means the stream failed, which the transfer itself reports.
    writeFrame(this.stream, encodeCredit(this.granted)).catch(() => {})
  }

  /** Wraps a source so that each piece counts as consumed once the consumer asks for the next. */
  async * counting (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const piece of source) {
      yield piece
      this.consume(piece.length)
    }
  }
}
