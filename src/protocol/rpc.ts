/**
 * A pipelined request/response channel over one long-lived libp2p stream.
 *
 * Both ends may send requests: the Local sends STAT/GET/PUT/DELETE/LIST, Global sends EVICT.
 * Each request carries an id chosen by its sender; the answer carries the same id with the
 * RESPONSE bit set on its kind (or kind ERROR). Requests are answered concurrently and out of
 * order, at most `maxInflight` at a time per channel; beyond that the reader stops reading, so
 * a flooding peer is slowed by stream backpressure instead of growing our memory.
 *
 * Failure rules (never crash, never stall other peers):
 * - a malformed body gets an ERROR answer with the request's id, and the channel goes on;
 * - an unknown request kind gets an ERROR answer;
 * - an unframeable stream (oversized frame, truncated frame, message shorter than its header)
 *   gets an ERROR with id 0 and the stream is reset.
 */
import type { Stream } from '@libp2p/interface'
import { DstoreError, ProtocolError, TimeoutError, ClosedError, AbortError, errorFromCode } from '../core/errors.js'
import { KIND, MAX_FRAME, MAX_RPC_INFLIGHT, REQUEST_TIMEOUT_MS, RESPONSE } from './constants.js'
import { FrameReader, writeFrame } from './framing.js'
import { MessageReader, decodeError, encodeError } from './messages.js'

/** Answers one incoming request; throws a DstoreError to send an ERROR answer. */
export type RequestHandler = (request: MessageReader) => Promise<Uint8Array>

export interface RpcChannelOptions {
  /** Incoming requests answered concurrently; default {@link MAX_RPC_INFLIGHT}. */
  maxInflight?: number
  /** Default time for our requests to be answered; default {@link REQUEST_TIMEOUT_MS}. */
  requestTimeout?: number
  /** Called once when the channel closes, with the reason when it failed. */
  onClose?: (err?: Error) => void
  /** Called for each protocol violation by the remote (for logging). */
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

export class RpcChannel {
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private inflight = 0
  private slotFreed: (() => void) | undefined
  private closedWith: Error | undefined
  private closed = false
  private readonly maxInflight: number
  private readonly requestTimeout: number

  constructor (readonly stream: Stream, private readonly handler: RequestHandler, private readonly options: RpcChannelOptions = {}) {
    this.maxInflight = options.maxInflight ?? MAX_RPC_INFLIGHT
    this.requestTimeout = options.requestTimeout ?? REQUEST_TIMEOUT_MS
    stream.addEventListener('close', (evt) => {
      this.shutdown((evt as unknown as { error?: Error }).error ?? new ClosedError('rpc stream closed'))
    }, { once: true })
    void this.readLoop()
  }

  /** True until the stream closes. */
  get open (): boolean { return !this.closed }

  /** A fresh request id (never 0, which is reserved for stream-level errors). */
  allocId (): number {
    const id = this.nextId
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1
    return id
  }

  /**
   * Sends a request built with id `id` and waits for its answer. An ERROR answer rejects with
   * the typed error it names.
   */
  async request (id: number, message: Uint8Array, options: { signal?: AbortSignal, timeout?: number } = {}): Promise<MessageReader> {
    if (this.closed) throw this.closedWith ?? new ClosedError('rpc channel closed')
    options.signal?.throwIfAborted()
    const timeout = options.timeout ?? this.requestTimeout
    const answer = new Promise<MessageReader>((resolve, reject) => {
      const onAbort = (): void => { settle(); reject(new AbortError(undefined, { cause: options.signal?.reason })) }
      const settle = (): void => {
        clearTimeout(entry.timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.pending.delete(id)
      }
      const entry: Pending = {
        resolve: (r) => { settle(); resolve(r) },
        reject: (e) => { settle(); reject(e) },
        timer: setTimeout(() => { settle(); reject(new TimeoutError(`no answer within ${timeout} ms`)) }, timeout),
        cleanup: settle
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.pending.set(id, entry)
    })
    try {
      await writeFrame(this.stream, message, options)
    } catch (err) {
      this.pending.get(id)?.reject(err instanceof Error ? err : new Error(String(err)))
    }
    return await answer
  }

  /** Closes our side gracefully. */
  async close (): Promise<void> {
    if (this.closed) return
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
    for (const p of [...this.pending.values()]) p.reject(err)
    this.slotFreed?.()
    this.options.onClose?.(err)
  }

  private async readLoop (): Promise<void> {
    const reader = new FrameReader(this.stream, MAX_FRAME)
    try {
      for (;;) {
        const frame = await reader.next()
        if (frame == null) break
        if (frame.length < 5) throw new ProtocolError(`message of ${frame.length} bytes is shorter than its 5-byte header`)
        const msg = new MessageReader(frame)
        if ((msg.kind & RESPONSE) !== 0 || msg.kind === KIND.ERROR) {
          this.pending.get(msg.id)?.[msg.kind === KIND.ERROR ? 'reject' : 'resolve'](
            msg.kind === KIND.ERROR ? this.remoteError(msg) : msg as any)
          continue
        }
        while (this.inflight >= this.maxInflight && !this.closed) {
          await new Promise<void>(resolve => { this.slotFreed = resolve })
        }
        if (this.closed) break
        this.inflight++
        void this.answer(msg)
      }
      // The remote closed its side: finish what we are answering, then close ours.
      await this.drainInflight()
      await this.close()
    } catch (err) {
      if (this.closed) return
      const e = err instanceof Error ? err : new Error(String(err))
      if (err instanceof ProtocolError) {
        this.options.onProtocolError?.(e)
        try { await writeFrame(this.stream, encodeError(0, err.code, err.message)) } catch {}
      }
      this.abort(e)
    }
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
      if (!this.closed) await writeFrame(this.stream, reply)
    } catch {
      // The stream failed; the close listener tears the channel down.
    } finally {
      this.inflight--
      const wake = this.slotFreed
      this.slotFreed = undefined
      wake?.()
    }
  }

  private async drainInflight (): Promise<void> {
    while (this.inflight > 0 && !this.closed) {
      await new Promise<void>(resolve => { this.slotFreed = resolve })
    }
  }
}
