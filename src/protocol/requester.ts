/**
 * The requesting side of the dstore protocol (Local). Every byte it returns from Global has
 * passed the verified-stream decoder against the digest asked for; sizes Global announces are
 * only hints until the decoder has authenticated them.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { AbortError, ClosedError, DstoreError, OutOfRangeError, ProtocolError, VerificationError, errorFromCode } from '../core/errors.js'
import { decodeRange } from '../core/bao/index.js'
import { DEFAULT_GROUP_LOG, TreeHasher } from '../core/tree.js'
import type { ProgressEvent } from '../core/store/interface.js'
import { BLOB_PROTOCOL, INLINE_MAX, KIND, MAX_BATCH, MAX_FRAME, REQUEST_TIMEOUT_MS, RESPONSE } from './constants.js'
import { FrameReader, incoming, writeFrame, writeRaw } from './framing.js'
import { CreditGate, CreditGrantor } from './flow.js'
import {
  GET_INLINE, MessageReader, U64_NONE, decodeCredit, decodeError, decodeListResponse, decodeStatResponse,
  deleteBody, encodeGet, encodePutHead, getBody, listBody, putBody, statBody, type ListEntry
} from './messages.js'
import type { RpcChannel } from './rpc.js'
import { IdleWatchdog, withTimeout } from './timeout.js'

export interface RequesterContext {
  channel: RpcChannel
  connection: Connection
  requestTimeout?: number
  onBytes?: (direction: 'in' | 'out', n: number) => void
}

export interface CallOptions {
  signal?: AbortSignal
  onProgress?: (event: ProgressEvent) => void
}

/** Sizes of `digests` on Global (undefined: absent), in batches of {@link MAX_BATCH}. */
export async function statMany (ctx: RequesterContext, digests: Uint8Array[], options: CallOptions = {}): Promise<Array<number | undefined>> {
  const out: Array<number | undefined> = []
  for (let i = 0; i < digests.length; i += MAX_BATCH) {
    const batch = digests.slice(i, i + MAX_BATCH)
    const reply = await ctx.channel.request(KIND.STAT, statBody(batch), options)
    const sizes = decodeStatResponse(reply)
    if (sizes.length !== batch.length) throw new ProtocolError(`STAT answered ${sizes.length} sizes for ${batch.length} keys`)
    out.push(...sizes)
  }
  return out
}

export interface RangeRequest { offset: number, length?: number }

/**
 * Streams the verified bytes of a range of a value. Small answers come inline on the rpc
 * channel; larger ones on a blob stream of their own.
 */
export interface GetRangeOptions extends CallOptions {
  /** Refuse a value announcing more bytes than this (TooLargeError). */
  maxSize?: number
  /**
   * Called with the size Global announces (a hint: the decoder checks it against the verified
   * stream); may return a buffer of that size to decode into (see `DecodeOptions.target`).
   */
  target?: (announcedSize: number) => Uint8Array | undefined
}

export async function * getRange (ctx: RequesterContext, digest: Uint8Array, range: RangeRequest, options: GetRangeOptions = {}): AsyncGenerator<Uint8Array> {
  // Checked before anything is sent: a negative offset would be encoded as the u64 "none" value
  // (Global answers ERR_PROTOCOL) and a negative length as "to the end".
  checkRangeArgs(range)
  const wireLength = range.length ?? U64_NONE
  const decodeLength = range.length ?? Infinity
  const reply = await ctx.channel.request(KIND.GET, getBody({ digest, offset: range.offset, length: wireLength, inline: true }), options)
  const mode = reply.u8()
  const announced = reply.u64()
  let done = 0
  const progress = (n: number): void => {
    done += n
    options.onProgress?.({ type: 'blob:get:verified', bytes: done, total: range.length ?? (announced - range.offset) })
  }
  const target = options.target?.(announced)
  if (mode === GET_INLINE) {
    const encoded = reply.rest()
    ctx.onBytes?.('in', encoded.length)
    for await (const part of decodeRange([encoded], digest, { offset: range.offset, length: decodeLength }, DEFAULT_GROUP_LOG, { maxSize: options.maxSize, target })) {
      progress(part.length)
      yield part
    }
    return
  }
  const call = await BlobCall.open(ctx, options.signal)
  let finished = false
  try {
    // Our side stays open after the head: it carries CREDIT as the decoder consumes.
    await writeFrame(call.stream, encodeGet(0, { digest, offset: range.offset, length: wireLength, inline: false }))
    // incoming(): a reset (ours, when Global sends past its credit) ends the read with its error
    // however the reads and the reset interleave; the stream's own iterator could then wait
    // until the idle watchdog fired.
    const reader = new FrameReader(incoming(call.stream), MAX_FRAME, (n) => {
      call.watchdog.touch(n)
      ctx.onBytes?.('in', n)
    })
    const answer = await readAnswer(reader, KIND.GET, call.timeout, 'GET from Global')
    answer.u64()
    answer.end()
    // Global may not send past the credit we grant: more is reset as a ProtocolError.
    const grantor = new CreditGrantor(call.stream, reader.buffered)
    for await (const part of decodeRange(grantor.counting(reader.raw()), digest, { offset: range.offset, length: decodeLength }, DEFAULT_GROUP_LOG, { maxSize: options.maxSize, signal: options.signal, target })) {
      progress(part.length)
      yield part
    }
    await call.stream.close()
    finished = true
  } catch (err) {
    finished = true
    throw call.fail(err)
  } finally {
    // A consumer that stops early (break, return) abandons the transfer: reset the stream now,
    // rather than leave it open, with a window of data queued, until Global's watchdog fires.
    if (!finished) call.stream.abort(new AbortError('transfer abandoned by its consumer'))
    call.release()
  }
}

/** Puts a value whose bytes are all in hand. Global verifies it against `digest` before answering. */
export async function putBytes (ctx: RequesterContext, digest: Uint8Array, data: Uint8Array, options: CallOptions = {}): Promise<void> {
  if (data.length <= INLINE_MAX) {
    const reply = await ctx.channel.request(KIND.PUT, putBody(digest, data), options)
    reply.end()
    ctx.onBytes?.('out', data.length)
    options.onProgress?.({ type: 'blob:put:sent', bytes: data.length, total: data.length })
    return
  }
  const step = 1 << 20
  async function * pieces (): AsyncGenerator<Uint8Array> {
    for (let o = 0; o < data.length; o += step) yield data.subarray(o, o + step)
  }
  const stored = await putStream(ctx, pieces(), { digest, size: data.length }, options, false)
  if (!equal(stored, digest)) throw new VerificationError('Global stored a different value than was sent')
}

/**
 * Streams a value to Global on a blob stream and returns the digest Global computed and stored.
 * With `copy`, each piece is copied before sending (libp2p keeps a reference to what it sends,
 * and a caller's iterable may reuse its buffers).
 */
export async function putStream (ctx: RequesterContext, source: AsyncIterable<Uint8Array>, head: { digest?: Uint8Array, size?: number },
  options: CallOptions = {}, copy = true): Promise<Uint8Array> {
  const call = await BlobCall.open(ctx, options.signal)
  const gate = new CreditGate()
  let answer: Promise<MessageReader> | undefined
  try {
    await writeFrame(call.stream, encodePutHead(head))
    // Global's side carries CREDIT while we send, then the answer (or an ERROR, which stops us early).
    const reader = new FrameReader(incoming(call.stream), MAX_FRAME, (n) => { call.watchdog.touch(n) })
    answer = (async () => {
      for (;;) {
        const frame = await reader.next()
        if (frame == null) throw new ProtocolError('PUT to Global: Global closed the blob stream without answering')
        const msg = new MessageReader(frame)
        if (msg.kind === KIND.CREDIT) { gate.grant(decodeCredit(msg)); continue }
        expectKind(msg, KIND.PUT)
        return msg
      }
    })()
    answer.catch((err: Error) => { gate.fail(err) })
    let sent = 0
    for await (const part of source) {
      options.signal?.throwIfAborted()
      if (part.length === 0) continue
      // Never past the credit (Global resets a PUT that goes past it): a piece may go in parts.
      await gate.send(copy ? part.slice() : part, async (piece) => {
        await writeRaw(call.stream, piece, options)
        call.watchdog.touch(piece.length)
      })
      sent += part.length
      ctx.onBytes?.('out', part.length)
      options.onProgress?.({ type: 'blob:put:sent', bytes: sent, total: head.size })
    }
    await call.stream.close(options)
    const msg = await withTimeout(answer, call.timeout, 'PUT to Global')
    const stored = msg.digest()
    msg.end()
    return stored.slice()
  } catch (err) {
    // Global refuses a PUT it is still receiving with an ERROR, then resets the stream: a write
    // can fail on the reset before the ERROR, which came first, has been read. It says why.
    if (!(err instanceof DstoreError) && answer != null && call.stream.status === 'reset') {
      const refusal = await answer.then(() => undefined, (e: unknown) => e)
      if (refusal instanceof DstoreError) throw call.fail(refusal)
    }
    throw call.fail(err)
  } finally {
    gate.fail(new ClosedError('PUT finished'))
    call.release()
  }
}

/** Hashes a stream locally while putting it, and checks Global stored what we hashed. */
export async function putHashed (ctx: RequesterContext, source: AsyncIterable<Uint8Array>, options: CallOptions & { digest?: Uint8Array, size?: number } = {}): Promise<Uint8Array> {
  const hasher = new TreeHasher()
  async function * hashed (): AsyncGenerator<Uint8Array> {
    for await (const part of source) {
      const copy = part.slice()
      hasher.update(copy)
      yield copy
    }
  }
  const stored = await putStream(ctx, hashed(), { digest: options.digest, size: options.size }, options, false)
  const mine = hasher.finalize().root
  if (!equal(stored, mine)) throw new VerificationError('Global stored a different value than was sent')
  return mine
}

/** Deletes a value on Global; resolves once every connected Local has evicted it. */
export async function deleteBlob (ctx: RequesterContext, digest: Uint8Array, options: CallOptions = {}): Promise<boolean> {
  const reply = await ctx.channel.request(KIND.DELETE, deleteBody(digest), options)
  const existed = reply.u8() === 1
  reply.end()
  return existed
}

/** Every value pinned on Global, a page at a time. */
export async function * listBlobs (ctx: RequesterContext, options: CallOptions = {}): AsyncGenerator<ListEntry> {
  let after: Uint8Array | undefined
  for (;;) {
    const reply = await ctx.channel.request(KIND.LIST, listBody({ after, limit: MAX_BATCH }), options)
    const { entries, more } = decodeListResponse(reply)
    for (const e of entries) yield { digest: e.digest.slice(), size: e.size }
    if (!more || entries.length === 0) return
    after = entries[entries.length - 1].digest
  }
}

/** @throws {OutOfRangeError} unless offset and length are non-negative safe integers. */
export function checkRangeArgs (range: RangeRequest): void {
  if (!Number.isSafeInteger(range.offset) || range.offset < 0) throw new OutOfRangeError(`invalid offset ${String(range.offset)}`)
  if (range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)) {
    throw new OutOfRangeError(`invalid length ${String(range.length)}`)
  }
}

/** A blob stream tied to the caller's signal: aborting the signal resets the stream. */
class BlobCall {
  /** Resets the stream when the transfer makes no progress (no byte read or written) for `timeout`. */
  readonly watchdog: IdleWatchdog

  private constructor (readonly stream: Stream, readonly timeout: number, private readonly signal: AbortSignal | undefined, private readonly onAbort: () => void) {
    this.watchdog = new IdleWatchdog(timeout, 'transfer with Global', (err) => { stream.abort(err) })
  }

  static async open (ctx: RequesterContext, signal?: AbortSignal): Promise<BlobCall> {
    const stream = await ctx.connection.newStream(BLOB_PROTOCOL, { signal, negotiateFully: false })
    const onAbort = (): void => { stream.abort(new AbortError()) }
    // An abort while the stream was being opened would otherwise go unnoticed until the decoder checks.
    if (signal?.aborted === true) { onAbort(); throw new AbortError(undefined, { cause: signal.reason }) }
    signal?.addEventListener('abort', onAbort, { once: true })
    return new BlobCall(stream, ctx.requestTimeout ?? REQUEST_TIMEOUT_MS, signal, onAbort)
  }

  /** Resets the stream; returns the error to throw (an abort by the caller becomes AbortError). */
  fail (err: unknown): unknown {
    this.stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (this.signal?.aborted === true && !(err instanceof DstoreError)) return new AbortError(undefined, { cause: err })
    return err
  }

  release (): void {
    this.watchdog.stop()
    this.signal?.removeEventListener('abort', this.onAbort)
  }
}

/** Reads the one answer frame of a blob stream, turning an ERROR answer into its typed error. */
async function readAnswer (reader: FrameReader, kind: number, timeout: number, what: string): Promise<MessageReader> {
  const frame = await withTimeout(reader.next(), timeout, what)
  if (frame == null) throw new ProtocolError(`${what}: Global closed the blob stream without answering`)
  const answer = new MessageReader(frame)
  expectKind(answer, kind)
  return answer
}

function expectKind (msg: MessageReader, kind: number): void {
  if (msg.kind === KIND.ERROR) {
    const { code, message } = decodeError(msg)
    throw errorFromCode(code, message)
  }
  if (msg.kind !== (kind | RESPONSE)) throw new ProtocolError(`expected an answer of kind 0x${(kind | RESPONSE).toString(16)}, got 0x${msg.kind.toString(16)}`)
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
