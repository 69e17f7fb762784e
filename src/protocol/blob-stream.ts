/**
 * The plumbing of one blob stream (docs/PROTOCOL.md, "Blob streams" and "Flow control"), the
 * same for both sides and both directions: a head frame, then raw bytes one way and frames
 * (CREDIT, then the answer) the other way.
 *
 * - reading goes through `incoming()`: a reset ends a read with its error however the reads
 *   and the reset interleave (the stream's own iterator could wait for the idle watchdog);
 * - an idle watchdog resets a stream on which less than `MIN_TRANSFER_PROGRESS` moved, read or
 *   written, in the request time;
 * - the receiver of raw bytes holds the sender to its credit (`CreditGrantor`), the sender never
 *   goes past it (`CreditGate`);
 * - a failure is answered with an ERROR frame when that costs no waiting, then the stream is
 *   reset (`refuse`), or just reset (`fail`).
 *
 * It also remembers how the stream ended, so a transfer cut short by a reset or a lost
 * connection can be told apart from a peer sending bad data (`closeReason`).
 */
import type { Stream } from '@libp2p/interface'
import { ClosedError, DstoreError, ProtocolError, TimeoutError } from '../core/errors.js'
import { KIND, MAX_FRAME, REQUEST_TIMEOUT_MS } from './constants.js'
import { CreditGate, CreditGrantor } from './flow.js'
import { FrameReader, frame, incoming, writeFrame, writeRaw } from './framing.js'
import { MessageReader, decodeCredit, encodeError } from './messages.js'
import { IdleWatchdog, withTimeout } from './timeout.js'

export interface BlobStreamOptions {
  /** Time for the head or answer to arrive, and for a transfer to make progress; default {@link REQUEST_TIMEOUT_MS}. */
  timeout?: number
  /** Names the stream in timeout messages. */
  what?: string
  /** Bytes read from the stream, for counters. */
  onRead?: (n: number) => void
  /** The watchdog fired (before the stream is reset). */
  onIdle?: (err: TimeoutError) => void
  /** Say why with an ERROR frame (id 0) before an idle reset, when it can be sent at once (the serving side). */
  explainIdle?: boolean
}

/**
 * A blob stream that ended before the message it should carry (a head, an answer): the peer
 * closed its side early, or the stream was cut. Its name and code are ProtocolError's; the class
 * lets the requester tell it from other protocol errors when the connection turns out lost.
 */
export class StreamEndedError extends ProtocolError {}

/** How a blob stream ended, when it ended otherwise than by both sides closing. */
export interface CloseReason {
  /** The stream was reset by us (`local`) or by the remote or the connection (`remote`). */
  by: 'local' | 'remote'
  error?: Error
}

/** One blob stream and its head, frames, credit, watchdog and failure handling. */
export class BlobStream {
  readonly frames: FrameReader
  readonly watchdog: IdleWatchdog
  readonly timeout: number
  private closed: CloseReason | undefined
  /** Bytes arrived on the stream (queued by our reader, pulled or not), and pulled by the frame reader. */
  private arrived = 0
  private pulled = 0

  constructor (readonly stream: Stream, private readonly options: BlobStreamOptions = {}) {
    this.timeout = options.timeout ?? REQUEST_TIMEOUT_MS
    this.watchdog = new IdleWatchdog(this.timeout, options.what ?? 'blob stream', (err) => {
      options.onIdle?.(err)
      if (options.explainIdle === true) this.sayWhy(err)
      stream.abort(err)
    })
    this.frames = new FrameReader(incoming(stream, (n) => { this.arrived += n }), MAX_FRAME, (n) => {
      this.pulled += n
      this.watchdog.touch(n)
      options.onRead?.(n)
    })
    stream.addEventListener('close', (evt: Event) => {
      const e = evt as Event & { local?: boolean, error?: Error }
      if (e.error != null) this.closed = { by: e.local === true ? 'local' : 'remote', error: e.error }
    }, { once: true })
  }

  /** Set once the stream was reset (by either side, or its connection); undefined while open or after a clean close. */
  get closeReason (): CloseReason | undefined {
    if (this.closed == null && this.stream.status === 'reset') return { by: 'remote' }
    return this.closed
  }

  /** Sends one message frame (a head, a CREDIT, an answer). */
  async send (message: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
    await writeFrame(this.stream, message, options)
  }

  /**
   * The next message: the head on the serving side, the answer on the requesting side. It must
   * arrive within the timeout; an ERROR message is returned as it is (the caller decides).
   */
  async readMessage (what: string): Promise<MessageReader> {
    const next = await withTimeout(this.frames.next(), this.timeout, what)
    if (next == null) throw new StreamEndedError(`${what}: the blob stream closed without it`)
    return new MessageReader(next)
  }

  /**
   * The raw bytes after the frames read so far, counted for flow control as the consumer pulls
   * them: credit is granted as they are consumed, and a sender past its credit is reset. The
   * sender is policed from this call on (counting what arrived before it, after the frames),
   * not from the first pull: call it as soon as the frames are read.
   */
  receiveRaw (): AsyncGenerator<Uint8Array> {
    // Raw bytes already here: those in the frame reader's buffer, and those queued unread.
    const grantor = new CreditGrantor(this.stream, this.frames.buffered + this.arrived - this.pulled)
    return grantor.counting(this.frames.raw())
  }

  /**
   * Starts reading the frames the receiver of our raw bytes sends: each CREDIT extends `gate`.
   * Resolves with the first other message (the answer, or an ERROR), or with undefined when
   * the receiver closes its side (no more credit can come: `gate` then stops waiting for more).
   * A failure (a reset, a malformed frame) also fails `gate`.
   */
  readCredit (gate: CreditGate): Promise<MessageReader | undefined> {
    // A reset (a watchdog, the peer, the connection) must also end a wait for credit.
    const onClose = (): void => { gate.fail(new ClosedError('blob stream closed during a transfer')) }
    this.stream.addEventListener('close', onClose, { once: true })
    const loop = (async () => {
      try {
        for (;;) {
          const next = await this.frames.next()
          if (next == null) {
            gate.end(new ProtocolError('the receiver closed its side of the blob stream before granting the credit needed'))
            return undefined
          }
          const msg = new MessageReader(next)
          if (msg.kind !== KIND.CREDIT) return msg
          gate.grant(decodeCredit(msg))
        }
      } finally {
        this.stream.removeEventListener('close', onClose)
      }
    })()
    loop.catch((err: Error) => { gate.fail(err) })
    return loop
  }

  /** Sends `data` raw, within the credit of `gate` (in parts if it must wait for a grant). */
  async sendRaw (gate: CreditGate, data: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
    await gate.send(data, async (piece) => {
      await writeRaw(this.stream, piece, options)
      this.watchdog.touch(piece.length)
    })
  }

  /**
   * Closes our side (the transfer, or our part of it, is complete). Takes no signal: libp2p's
   * close waits for its queue to drain with a listener on the signal it is given that it never
   * removes (p-event), one per put on a caller's long-lived signal. A caller's abort resets the
   * stream instead (`openBlob`), which ends the wait.
   */
  async close (): Promise<void> {
    await this.stream.close()
  }

  /** Resets the stream with `err`. */
  fail (err: unknown): void {
    this.stream.abort(err instanceof Error ? err : new Error(String(err)))
  }

  /**
   * Refuses or ends a failed transfer: a dstore error is answered with an ERROR frame (id 0)
   * and our side closed, and the stream is reset if the peer is still sending (what it sends
   * would pile up unread); anything else, or a stream that cannot be written, is reset.
   */
  async refuse (err: unknown): Promise<void> {
    const e = err instanceof Error ? err : new Error(String(err))
    if (err instanceof DstoreError && this.stream.writeStatus === 'writable') {
      try {
        await this.send(encodeError(0, err.code, err.message))
        await this.stream.close()
        // The ERROR went out before the reset.
        if (this.stream.remoteWriteStatus !== 'closed') this.stream.abort(e)
        return
      } catch {}
    }
    this.stream.abort(e)
  }

  /** Stops the watchdog: call once the transfer is over, however it ended. */
  release (): void {
    this.watchdog.stop()
  }

  /** Sends an ERROR frame if it can go without waiting (the peer may not be reading). */
  private sayWhy (err: DstoreError): void {
    if (this.stream.writeStatus === 'writable' && !this.stream.writableNeedsDrain) {
      try { this.stream.send(frame(encodeError(0, err.code, err.message))) } catch {}
    }
  }
}
