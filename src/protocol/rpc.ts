/**
 * A pipelined request/response channel over one long-lived libp2p stream.
 *
 * Both ends may send requests: the Local sends STAT/GET/PUT/DELETE/LIST, Global sends EVICT.
 * Each request carries an id chosen by its sender; the answer carries the same id with the
 * RESPONSE bit set on its kind (or kind ERROR). Requests are answered concurrently and out of
 * order, at most `maxInflight` at a time per channel; beyond that the reader pauses the stream,
 * so yamux stops granting window and a flooding peer is held to one stream window (at most
 * {@link MAX_PAUSED_BUFFER} unread bytes) instead of growing our memory.
 *
 * Failure rules (never crash, never stall other peers):
 * - a malformed body gets an ERROR answer with the request's id, and the channel goes on;
 * - an unknown request kind gets an ERROR answer;
 * - an unframeable stream (oversized frame, truncated frame, message shorter than its header)
 *   gets an ERROR with id 0 and the stream is reset;
 * - a frame that takes longer than the request timeout to arrive once it has begun (a slowloris),
 *   and a peer that reads none of our answers for the request timeout while they wait to be
 *   written, get an ERROR `ERR_TIMEOUT` (id 0) when it can be sent at once, and a reset.
 *
 * Small frames (requests and answers under {@link COALESCE_MAX}) are not sent one by one: those
 * queued in one tick go out together when it ends, as one write (see {@link RpcChannel.queue}).
 */
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { DstoreError, ProtocolError, TimeoutError, ClosedError, errorFromCode } from '../core/errors.js'
import { abortError, onAbort, throwIfAborted } from '../core/abort.js'
import { KIND, MAX_FRAME, MAX_PAUSED_BUFFER, MAX_RPC_INFLIGHT, REQUEST_TIMEOUT_MS, RESPONSE } from './constants.js'
import { FrameReader, frame as framed, framePrefix, incoming, waitForDrain } from './framing.js'
import { MessageReader, decodeError, encodeError, messageHeader } from './messages.js'

/** Answers one incoming request; throws a DstoreError to send an ERROR answer. */
export type RequestHandler = (request: MessageReader) => Promise<Uint8Array>

export interface RpcChannelOptions {
  /** Incoming requests answered concurrently; default {@link MAX_RPC_INFLIGHT}. */
  maxInflight?: number
  /**
   * Default time for our requests to be answered, for a frame to arrive once begun, and for our
   * answers to be written while the peer does not read; default {@link REQUEST_TIMEOUT_MS}.
   */
  requestTimeout?: number
  /** Called once when the channel closes, with the reason when it failed. */
  onClose?: (err?: Error) => void
  /** Called for each protocol violation by the remote, timeouts included (for logging). */
  onProtocolError?: (err: Error) => void
}

interface Pending {
  resolve: (r: MessageReader) => void
  reject: (e: Error) => void
  timer: ReturnType<typeof setTimeout>
  cleanup: () => void
}

/** Maps an error to what goes on the wire: our typed errors keep their code. */
function wireError (err: unknown): { code: string, message: string } {
  if (err instanceof DstoreError) return { code: err.code, message: err.message }
  return { code: 'ERR_INTERNAL', message: 'internal error' }
}

/**
 * Frames smaller than this are coalesced with the others of their tick; and the queue is sent
 * as soon as it holds this many bytes. Each write on the stream is a yamux frame, which
 * js-yamux acknowledged with a window update of its own (dstore now sends one per half window:
 * src/peers/yamux-window.ts), then a TLS record (or noise message) and a write to the socket:
 * a thousand requests made at once were two thousand frames and a thousand window updates each
 * way; coalesced, a handful.
 */
const COALESCE_MAX = 64 * 1024

/** One frame holding `kind | id | body`, the body's parts not copied. */
function frameMessage (kind: number, id: number, body: Uint8Array[]): Uint8Array | Uint8ArrayList {
  const length = 5 + body.reduce((n, b) => n + b.length, 0)
  const prefix = framePrefix(length)
  // A small message goes as one array (one piece for the muxer); a large body is not copied.
  const head = new Uint8Array(prefix.length + (length < 4096 ? length : 5))
  head.set(prefix)
  head.set(messageHeader(kind, id), prefix.length)
  if (length >= 4096) return new Uint8ArrayList(head, ...body)
  let o = prefix.length + 5
  for (const b of body) { head.set(b, o); o += b.length }
  return head
}

export class RpcChannel {
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private inflight = 0
  private slotFreed: (() => void) | undefined
  private closedWith: Error | undefined
  private closed = false
  /** The remote closed its side: it can answer nothing more. */
  private remoteEnded = false
  private readonly maxInflight: number
  private readonly requestTimeout: number
  /** When the frame being read began to arrive (undefined between frames and while paused). */
  private frameSince: number | undefined
  private frameTimer: ReturnType<typeof setTimeout> | undefined
  /** Small frames queued this tick ({@link queue}), and their bytes. */
  private outbox: Uint8Array[] = []
  private outboxBytes = 0
  private flushQueued = false
  /** The wait for the stream to drain that held-back answers share ({@link drained}). */
  private drainWait: Promise<void> | undefined

  constructor (readonly stream: Stream, private readonly handler: RequestHandler, private readonly options: RpcChannelOptions = {}) {
    this.maxInflight = options.maxInflight ?? MAX_RPC_INFLIGHT
    this.requestTimeout = options.requestTimeout ?? REQUEST_TIMEOUT_MS
    // While paused, what the peer may still send within its yamux window waits in this buffer.
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, MAX_PAUSED_BUFFER)
    stream.addEventListener('close', (evt) => {
      this.shutdown((evt as unknown as { error?: Error }).error ?? new ClosedError('rpc stream closed'))
    }, { once: true })
    void this.readLoop()
  }

  /** True until the stream closes. */
  get open (): boolean { return !this.closed }

  /** A fresh request id (never 0, which is reserved for stream-level errors). */
  private allocId (): number {
    let id = this.nextId
    // After 2^32 − 2 requests ids wrap: skip one still waiting for its answer.
    while (this.pending.has(id)) id = id >= 0xfffffffe ? 1 : id + 1
    this.nextId = id >= 0xfffffffe ? 1 : id + 1
    return id
  }

  /**
   * Sends a request of `kind` with `body` (a body built without a header, in one or more parts,
   * none of them copied) and waits for its answer. The channel picks the id, so a request and
   * the answer it waits for cannot disagree. An ERROR answer rejects with the typed error it
   * names; an answer of another kind than `kind | RESPONSE` is a `ProtocolError`.
   */
  async request (kind: number, body: Uint8Array | Uint8Array[], options: { signal?: AbortSignal, timeout?: number } = {}): Promise<MessageReader> {
    if (this.closed) throw this.closedWith ?? new ClosedError('rpc channel closed')
    if (this.remoteEnded) throw new ClosedError('the peer closed its side of the rpc stream')
    throwIfAborted(options.signal)
    const id = this.allocId()
    const timeout = options.timeout ?? this.requestTimeout
    const answer = new Promise<MessageReader>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(entry.timer)
        cancelAbort()
        this.pending.delete(id)
      }
      const entry: Pending = {
        resolve: (r) => {
          settle()
          if (r.kind === (kind | RESPONSE)) resolve(r)
          else reject(new ProtocolError(`expected an answer of kind 0x${(kind | RESPONSE).toString(16)}, got 0x${r.kind.toString(16)}`))
        },
        reject: (e) => { settle(); reject(e) },
        timer: setTimeout(() => { settle(); reject(new TimeoutError(`no answer within ${timeout} ms`)) }, timeout),
        cleanup: settle
      }
      const cancelAbort = onAbort(options.signal, () => { settle(); reject(abortError(options.signal)) })
      this.pending.set(id, entry)
    })
    try {
      // Awaited only when needed: an await costs every request a promise and a microtask hop.
      if (this.stream.writableNeedsDrain) await waitForDrain(this.stream, options)
      this.queue(frameMessage(kind, id, Array.isArray(body) ? body : [body]))
    } catch (err) {
      this.pending.get(id)?.reject(err instanceof Error ? err : new Error(String(err)))
    }
    return await answer
  }

  /**
   * Sends a frame: a large one at once, a small one with the others queued in this tick, in one
   * write once the tick's work is done (process.nextTick runs after the promise reactions
   * pending now: a thousand gets started together all reach their send first). It adds no wait:
   * the frames go before the event loop turns. Order is kept. A failed write aborts the channel
   * (its requests are rejected then: the stream cannot be written any more).
   */
  private queue (frame: Uint8Array | Uint8ArrayList): void {
    if (frame.byteLength >= COALESCE_MAX || !(frame instanceof Uint8Array)) {
      this.flush()
      this.send(frame)
      return
    }
    this.outbox.push(frame)
    this.outboxBytes += frame.byteLength
    if (this.outboxBytes >= COALESCE_MAX) { this.flush(); return }
    if (!this.flushQueued) {
      this.flushQueued = true
      process.nextTick(this.flushLater)
    }
  }

  private readonly flushLater = (): void => { this.flushQueued = false; this.flush() }

  /** Sends the queued small frames, as one array. */
  private flush (): void {
    const frames = this.outbox
    if (frames.length === 0) return
    const n = this.outboxBytes
    this.outbox = []
    this.outboxBytes = 0
    if (this.closed) return
    if (frames.length === 1) { this.send(frames[0]); return }
    const out = new Uint8Array(n)
    let o = 0
    for (const f of frames) { out.set(f, o); o += f.length }
    this.send(out)
  }

  private send (data: Uint8Array | Uint8ArrayList): void {
    try {
      this.stream.send(data)
    } catch (err) {
      this.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Closes our side gracefully. */
  async close (): Promise<void> {
    if (this.closed) return
    this.flush()
    try { await this.stream.close() } catch { this.stream.abort(new ClosedError('rpc channel closed')) }
    this.shutdown(new ClosedError('rpc channel closed'))
  }

  /** Resets the stream. */
  abort (err: Error): void {
    this.stream.abort(err)
    this.shutdown(err)
  }

  private shutdown (err: Error): void {
    if (this.closed) return
    this.closed = true
    this.closedWith = err
    clearTimeout(this.frameTimer)
    for (const p of [...this.pending.values()]) p.reject(err)
    this.slotFreed?.()
    this.options.onClose?.(err)
  }

  private async readLoop (): Promise<void> {
    const reader = new FrameReader(incoming(this.stream), MAX_FRAME, () => { this.frameBegun() })
    try {
      for (;;) {
        const frame = await reader.next()
        // The clock of the next frame runs from now if part of it is already here.
        this.frameSince = undefined
        if (reader.buffered > 0) this.frameBegun()
        if (frame == null) break
        if (frame.length < 5) throw new ProtocolError(`message of ${frame.length} bytes is shorter than its 5-byte header`)
        const msg = new MessageReader(frame)
        if ((msg.kind & RESPONSE) !== 0 || msg.kind === KIND.ERROR) {
          this.pending.get(msg.id)?.[msg.kind === KIND.ERROR ? 'reject' : 'resolve'](
            msg.kind === KIND.ERROR ? this.remoteError(msg) : msg as any)
          continue
        }
        if (this.inflight >= this.maxInflight && !this.closed) {
          // Stop reading until a request completes: yamux then stops granting window.
          this.frameSince = undefined
          this.setPaused(true)
          while (this.inflight >= this.maxInflight && !this.closed) {
            await new Promise<void>(resolve => { this.slotFreed = resolve })
          }
          this.setPaused(false)
          if (reader.buffered > 0) this.frameBegun()
        }
        if (this.closed) break
        this.inflight++
        void this.answer(msg)
      }
      // The remote closed its side: no answer to our requests can come any more; finish what we
      // are answering, then close ours.
      this.remoteEnded = true
      for (const p of [...this.pending.values()]) p.reject(new ClosedError('the peer closed its side of the rpc stream'))
      await this.drainInflight()
      await this.close()
    } catch (err) {
      if (this.closed) return
      const e = err instanceof Error ? err : new Error(String(err))
      if (err instanceof ProtocolError) this.violation(err)
      else this.abort(e)
    }
  }

  private setPaused (paused: boolean): void {
    try {
      if (paused) this.stream.pause(); else this.stream.resume()
    } catch {
      // The stream is closing: the read loop ends on its own.
    }
  }

  /** A piece of a frame arrived: start that frame's clock if it is not running. */
  private frameBegun (): void {
    this.frameSince ??= Date.now()
    if (this.frameTimer == null && !this.closed) this.armFrameTimer(this.requestTimeout)
  }

  private armFrameTimer (delay: number): void {
    this.frameTimer = setTimeout(() => {
      this.frameTimer = undefined
      if (this.frameSince === undefined || this.closed) return
      const waited = Date.now() - this.frameSince
      if (waited < this.requestTimeout) { this.armFrameTimer(this.requestTimeout - waited); return }
      this.violation(new TimeoutError(`a frame took more than ${this.requestTimeout} ms to arrive`))
    }, delay)
    this.frameTimer.unref?.()
  }

  /**
   * The remote broke a rule: report it, tell it why if that can be sent without waiting (it may
   * not be reading), and reset the stream.
   */
  private violation (err: DstoreError): void {
    if (this.closed) return
    this.options.onProtocolError?.(err)
    if (this.stream.writeStatus === 'writable' && !this.stream.writableNeedsDrain) {
      try { this.stream.send(framed(encodeError(0, err.code, err.message))) } catch {}
    }
    this.abort(err)
  }

  private remoteError (msg: MessageReader): Error {
    try {
      const { code, message } = decodeError(msg)
      return errorFromCode(code, message)
    } catch (err) {
      return err as Error
    }
  }

  private async answer (msg: MessageReader): Promise<void> {
    let reply: Uint8Array
    try {
      reply = await this.handler(msg)
    } catch (err) {
      if (err instanceof ProtocolError) this.options.onProtocolError?.(err)
      const { code, message } = wireError(err)
      reply = encodeError(msg.id, code, message)
    }
    try {
      if (!this.closed) await this.writeAnswer(reply)
    } catch {
      // The stream failed; the close listener tears the channel down.
    } finally {
      this.inflight--
      const wake = this.slotFreed
      this.slotFreed = undefined
      wake?.()
    }
  }

  /**
   * Writes an answer once the stream can take it; a peer that reads none of them for the
   * request timeout is cut off. Answers waiting for the stream share one wait ({@link drained}).
   */
  private async writeAnswer (reply: Uint8Array): Promise<void> {
    while (this.stream.writableNeedsDrain && !this.closed) await this.drained()
    if (!this.closed) this.queue(framed(reply))
  }

  /**
   * The stream's next drain, one wait for every answer held back meanwhile: a timer and a
   * listener each made a burst of answers to a slow reader cost a thousand timers.
   */
  private drained (): Promise<void> {
    if (this.drainWait !== undefined) return this.drainWait
    this.flush()
    const wait = (async () => {
      const signal = AbortSignal.timeout(this.requestTimeout)
      try {
        await waitForDrain(this.stream, { signal })
      } catch (err) {
        if (signal.aborted) this.violation(new TimeoutError(`the peer read none of our answers for ${this.requestTimeout} ms`))
        throw err
      } finally {
        this.drainWait = undefined
      }
    })()
    this.drainWait = wait
    return wait
  }

  private async drainInflight (): Promise<void> {
    while (this.inflight > 0 && !this.closed) {
      await new Promise<void>(resolve => { this.slotFreed = resolve })
    }
  }
}
