/**
 * Credit-based flow control for blob streams (docs/PROTOCOL.md, "Flow control").
 *
 * libp2p's stream iterator queues whatever arrives and yamux grants window on arrival, not on
 * consumption, so without this a receiver slower than the network (a disk, a slow consumer)
 * buffers a whole transfer. Here the receiver grants credit as it consumes: the total number of
 * bytes the sender may have sent. The first {@link BLOB_WINDOW} bytes need no grant.
 */
import type { Stream } from '@libp2p/interface'
import { ProtocolError } from '../core/errors.js'
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

  /** @param onGrant called with every grant that extends the credit (its new total). */
  constructor (window = BLOB_WINDOW, private readonly onGrant?: (total: number) => void) { this.credit = window }

  /** Applies a CREDIT message. Credit only grows. */
  grant (total: number): void {
    if (total <= this.credit) return
    this.credit = total
    this.onGrant?.(total)
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

  /**
   * Waits until some of a piece of `n` bytes may be sent, and returns how many (at least 1, at
   * most `n`): a sender never goes past its credit, so it sends the rest after the next grant.
   */
  async take (n: number): Promise<number> {
    while (this.sent >= this.credit) {
      if (this.failure != null) throw this.failure
      if (this.ending != null) this.fail(this.ending)
      if (this.failure != null) throw this.failure
      await new Promise<void>((resolve, reject) => { this.waiter = { resolve, reject } })
    }
    if (this.failure != null) throw this.failure
    const allowed = Math.min(n, this.credit - this.sent)
    this.sent += allowed
    return allowed
  }

  /** Sends `data` with `write`, in as many pieces as the credit requires. */
  async send (data: Uint8Array, write: (piece: Uint8Array) => Promise<void>): Promise<void> {
    for (let o = 0; o < data.length;) {
      const n = await this.take(data.length - o)
      await write(o === 0 && n === data.length ? data : data.subarray(o, o + n))
      o += n
    }
  }
}

/**
 * The receiving side: grants more credit as bytes are consumed, half a window at a time, and
 * holds the sender to it. Bytes are counted as they *arrive* (libp2p queues them before anyone
 * reads them), so a sender that ignores its credit is cut off before it can make us buffer more
 * than a window: the stream is reset with a `ProtocolError`, which the transfer then fails with.
 */
export class CreditGrantor {
  private consumed = 0
  private granted: number
  private arrived: number
  private violation: ProtocolError | undefined
  private readonly onMessage: (evt: Event) => void

  /**
   * @param alreadyArrived raw bytes that arrived before this grantor was made (a frame reader's
   * buffer after the head). Register the grantor only once the stream's reader has started
   * pulling, so that its own 'message' listener exists.
   */
  constructor (private readonly stream: Stream, alreadyArrived = 0, private readonly window = BLOB_WINDOW) {
    this.granted = window
    this.arrived = alreadyArrived
    this.onMessage = (evt: Event) => {
      this.arrived += (evt as Event & { data: { byteLength: number } }).data.byteLength
      this.check()
    }
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('close', () => { this.stop() }, { once: true })
    this.check()
  }

  private check (): void {
    if (this.arrived <= this.granted) return
    // Checked per piece libp2p delivers: a yamux frame may carry up to a stream window.
    const err = new ProtocolError(`the sender sent ${this.arrived} bytes, past its credit of ${this.granted}`)
    this.violation = err
    this.stop()
    this.stream.abort(err)
  }

  /** Stops policing arrivals (the raw part is over). */
  stop (): void {
    this.stream.removeEventListener('message', this.onMessage)
  }

  /** Records `n` bytes consumed; sends a CREDIT message when half a window has been used. */
  consume (n: number): void {
    this.consumed += n
    if (this.consumed + this.window - this.granted < this.window / 2) return
    this.granted = this.consumed + this.window
    // A write that fails means the stream failed, which the transfer itself reports.
    writeFrame(this.stream, encodeCredit(this.granted)).catch(() => {})
  }

  /**
   * Wraps a source so that each piece counts as consumed once the consumer asks for the next.
   * After a violation it fails, even if what already arrived would complete the transfer.
   */
  async * counting (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    try {
      for await (const piece of source) {
        if (this.violation != null) throw this.violation
        yield piece
        this.consume(piece.length)
      }
      if (this.violation != null) throw this.violation
    } finally {
      this.stop()
    }
  }
}
