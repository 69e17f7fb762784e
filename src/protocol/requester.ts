/**
 * The requesting side of the dstore protocol (Local). Every byte it returns from Global has
 * passed the verified-stream decoder against the digest asked for; sizes Global announces are
 * only hints until the decoder has authenticated them.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { AbortError, ClosedError, DstoreError, GlobalUnreachableError, OutOfRangeError, ProtocolError, VerificationError, errorFromCode } from '../core/errors.js'
import { abortError, asAbortError, linkSignals, onAbort, throwIfAborted } from '../core/abort.js'
import { StreamVerificationError, decodeRange, decodeWhole } from '../core/bao/index.js'
import { DEFAULT_GROUP_LOG, TreeHasher } from '../core/tree.js'
import type { CallOptions } from '../core/store/interface.js'
import { BLOB_PROTOCOL, INLINE_MAX, KIND, MAX_BATCH, MAX_REPORT_RANGE, RESPONSE } from './constants.js'
import { BlobStream, StreamEndedError } from './blob-stream.js'
import { CreditGate } from './flow.js'
import {
  GET_INLINE, GET_SOURCES, MessageReader, type GetAnswer, U64_NONE, decodeError, decodeGetAnswer, decodeListResponse, decodeStatResponse,
  deleteBody, encodeGet, encodePutHead, getBody, listBody, putBody, reportBody, statBody, type ListEntry
} from './messages.js'
import type { RpcChannel } from './rpc.js'
import { withTimeout } from './timeout.js'

export interface RequesterContext {
  channel: RpcChannel
  connection: Connection
  requestTimeout?: number
  onBytes?: (direction: 'in' | 'out', n: number) => void
}

export type { CallOptions }

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
  /** Called with each parent node of the value's tree once verified (see `DecodeOptions.onParent`). */
  onParent?: (index: number, node: Uint8Array) => void
}

/**
 * One round trip for any size: the rpc GET may be answered with the whole range inline (small
 * values), or with the size and the start of the range inline (mode partial); then the rest
 * comes on a blob stream, which is opened before the start is decoded, so its round trip
 * overlaps the decoding and delivery of the start. A Global that answers "use a blob stream"
 * (mode 1 with nothing inline) gets the whole range asked on one.
 */
export async function * getRange (ctx: RequesterContext, digest: Uint8Array, range: RangeRequest, options: GetRangeOptions = {}): AsyncGenerator<Uint8Array> {
  const answer = await requestGet(ctx, digest, range, options, false)
  if (answer.mode === GET_SOURCES) throw new ProtocolError('GET answered with sources, which were not asked for')
  yield * deliverAnswer(ctx, digest, range, answer, options)
}

/** A GET answer that carries value bytes (inline, or the start inline and the rest on a blob stream). */
export type BytesAnswer = Exclude<GetAnswer, { mode: typeof GET_SOURCES }>

/**
 * Sends the rpc GET of a range (checked first) and reads its answer. With `swarm`, a large
 * whole value may be answered with its sources (mode {@link GET_SOURCES}) instead of its bytes.
 */
export async function requestGet (ctx: RequesterContext, digest: Uint8Array, range: RangeRequest, options: CallOptions, swarm: boolean): Promise<GetAnswer> {
  // Checked before anything is sent: a negative offset would be encoded as the u64 "none" value
  // (Global answers ERR_PROTOCOL) and a negative length as "to the end".
  checkRangeArgs(range)
  const wireLength = range.length ?? U64_NONE
  const reply = await ctx.channel.request(KIND.GET, getBody({ digest, offset: range.offset, length: wireLength, inline: true, partial: true, swarm }), options)
  return decodeGetAnswer(reply)
}

/** The verified bytes of a range whose GET was answered with bytes ({@link requestGet}). */
export async function * deliverAnswer (ctx: RequesterContext, digest: Uint8Array, range: RangeRequest, answer: BytesAnswer,
  options: GetRangeOptions = {}): AsyncGenerator<Uint8Array> {
  let done = 0
  const progress = (n: number): void => {
    done += n
    options.onProgress?.({ type: 'blob:get:verified', bytes: done, total: range.length ?? (answer.size - range.offset) })
  }
  const target = options.target?.(answer.size)
  const decodeOptions = { maxSize: options.maxSize, signal: options.signal, target, onParent: options.onParent }
  try {
    yield * deliver()
  } catch (err) {
    // Bad bytes from Global: tell it where, so it re-checks (and can quarantine) its copy.
    if (err instanceof StreamVerificationError && err.reason === 'mismatch') report(ctx, digest, range.offset + done, range.length === undefined ? undefined : range.length - done)
    throw err
  }
  async function * deliver (): AsyncGenerator<Uint8Array> {
    if (answer.mode === GET_INLINE) {
      ctx.onBytes?.('in', answer.encoded.length)
      // The whole verified stream is in hand: verified at once, without decodeRange's pull loop.
      for (const part of decodeWhole(answer.encoded, digest, { offset: range.offset, length: range.length ?? Infinity }, DEFAULT_GROUP_LOG, decodeOptions)) {
        progress(part.length)
        yield part
      }
      return
    }
    const covered = answer.covered
    if (range.length !== undefined && covered > range.length) throw new ProtocolError(`GET answered ${covered} bytes inline for a range of ${range.length}`)
    // Asked at once: the blob stream's round trip runs while the start is verified and delivered.
    const rest = { offset: range.offset + covered, length: range.length === undefined ? undefined : range.length - covered }
    const opened = openBlobGet(ctx, digest, rest, options.signal)
    // Awaited only once the start is delivered: a failure to open must not count as unhandled meanwhile.
    opened.catch(() => {})
    let started = false
    try {
      if (covered > 0) {
        ctx.onBytes?.('in', answer.encoded.length)
        for await (const part of decodeRange([answer.encoded], digest, { offset: range.offset, length: covered }, DEFAULT_GROUP_LOG, decodeOptions)) {
          progress(part.length)
          yield part
        }
      }
      started = true
      for await (const part of readBlobGet(ctx, await opened, digest, rest, decodeOptions, options.signal)) {
        progress(part.length)
        yield part
      }
    } finally {
      // Failed or abandoned before the rest was read: don't leave its stream open.
      if (!started) opened.then(call => { call.blob.fail(new AbortError('transfer abandoned')); call.release() }, () => {})
    }
  }
}

/** Sends a REPORT without waiting: it helps Global, and its failure changes nothing for the caller. */
function report (ctx: RequesterContext, digest: Uint8Array, offset: number, length: number | undefined): void {
  if (!ctx.channel.open) return
  const body = reportBody({ digest, offset, length: Math.min(length ?? MAX_REPORT_RANGE, MAX_REPORT_RANGE) })
  ctx.channel.request(KIND.REPORT, body).catch(() => {})
}

/** A blob stream tied to the caller's signal. */
interface BlobCall { blob: BlobStream, release: () => void }
/**
 * A blob stream for a GET, its head sent and its answer being read; `raw` is the rest of the
 * stream, whose sender is held to its credit from the moment the answer is read.
 */
interface BlobGet extends BlobCall { answer: Promise<{ msg: MessageReader, raw: AsyncGenerator<Uint8Array> }> }

async function openBlobGet (ctx: RequesterContext, digest: Uint8Array, range: RangeRequest, signal?: AbortSignal): Promise<BlobGet> {
  const call = await openBlob(ctx, signal)
  try {
    // Our side stays open after the head: it carries CREDIT as the decoder consumes.
    await call.blob.send(encodeGet(0, { digest, offset: range.offset, length: range.length ?? U64_NONE, inline: false }))
    // Read at once, even while the start of the value is still being delivered: what arrives
    // meanwhile must be queued by our reader, not left in the stream's own buffer (which
    // libp2p resets once past its limit, smaller than a credit window). The credit is policed
    // from the answer on, not from when the start has been consumed: a Global that sends past it
    // meanwhile is reset, instead of queuing without bound in our reader.
    const answer = call.blob.readMessage('GET from Global').then(msg => ({ msg, raw: call.blob.receiveRaw() }))
    answer.catch(() => {})
    return { ...call, answer }
  } catch (err) {
    call.blob.fail(err)
    call.release()
    throw classify(err, call.blob, ctx, signal)
  }
}

async function * readBlobGet (ctx: RequesterContext, call: BlobGet, digest: Uint8Array, range: RangeRequest,
  decodeOptions: { maxSize?: number, target?: Uint8Array, onParent?: (index: number, node: Uint8Array) => void }, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const { blob } = call
  let finished = false
  try {
    const { msg: answer, raw } = await call.answer
    expectKind(answer, KIND.GET)
    answer.u64()
    answer.end()
    // Global may not send past the credit we grant: more is reset as a ProtocolError.
    for await (const part of decodeRange(raw, digest, { offset: range.offset, length: range.length ?? Infinity }, DEFAULT_GROUP_LOG, { ...decodeOptions, signal })) {
      yield part
    }
    await blob.close()
    finished = true
  } catch (err) {
    finished = true
    blob.fail(err)
    throw classify(err, blob, ctx, signal)
  } finally {
    // A consumer that stops early (break, return) abandons the transfer: reset the stream now,
    // rather than leave it open, with a window of data queued, until Global's watchdog fires.
    if (!finished) blob.fail(new AbortError('transfer abandoned by its consumer'))
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
  const call = await openBlob(ctx, options.signal)
  const { blob } = call
  const gate = new CreditGate()
  let answered: Promise<MessageReader> | undefined
  try {
    await blob.send(encodePutHead(head))
    // Global's side carries CREDIT while we send, then the answer (or an ERROR, which stops us early).
    answered = blob.readCredit(gate).then((msg) => {
      if (msg == null) throw new StreamEndedError('PUT to Global: Global closed the blob stream without answering')
      expectKind(msg, KIND.PUT)
      return msg
    })
    answered.catch((err: Error) => { gate.fail(err) })
    let sent = 0
    for await (const part of source) {
      throwIfAborted(options.signal)
      if (part.length === 0) continue
      // Never past the credit (Global resets a PUT that goes past it): a piece may go in parts.
      await blob.sendRaw(gate, copy ? part.slice() : part, options)
      sent += part.length
      ctx.onBytes?.('out', part.length)
      options.onProgress?.({ type: 'blob:put:sent', bytes: sent, total: head.size })
    }
    await blob.close()
    const msg = await withTimeout(answered, blob.timeout, 'PUT to Global')
    const stored = msg.digest()
    msg.end()
    return stored.slice()
  } catch (err) {
    // Global refuses a PUT it is still receiving with an ERROR, then resets the stream: a write
    // can fail on the reset before the ERROR, which came first, has been read. It says why.
    if ((!(err instanceof DstoreError) || err instanceof ClosedError) && answered != null && blob.stream.status === 'reset') {
      const refusal = await answered.then(() => undefined, (e: unknown) => e)
      if (refusal instanceof DstoreError) { blob.fail(refusal); throw classify(refusal, blob, ctx, options.signal) }
    }
    blob.fail(err)
    throw classify(err, blob, ctx, options.signal)
  } finally {
    gate.fail(new ClosedError('PUT finished'))
    call.release()
  }
}

/**
 * Hashes a stream locally while putting it, and checks Global stored what we hashed. Each part
 * is copied before it is hashed and sent (libp2p keeps a reference to what it sends, and a
 * caller's iterable may reuse its buffers) — unless `owned`: the source yields arrays of its
 * own that nothing changes any more.
 */
export async function putHashed (ctx: RequesterContext, source: AsyncIterable<Uint8Array>, options: CallOptions & { digest?: Uint8Array, size?: number, owned?: boolean } = {}): Promise<Uint8Array> {
  const hasher = new TreeHasher()
  const owned = options.owned === true
  async function * hashed (): AsyncGenerator<Uint8Array> {
    for await (const part of source) {
      const copy = owned ? part : part.slice()
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

/** Opens a blob stream tied to the caller's signal: aborting the signal resets the stream. */
async function openBlob (ctx: RequesterContext, signal?: AbortSignal): Promise<BlobCall> {
  // libp2p listens on the signal it is given while the stream opens: give it one of ours, so that
  // a signal shared by many calls holds onAbort's one listener, not one per stream being opened.
  const opening = signal != null ? linkSignals(signal) : undefined
  let stream: Stream
  try {
    stream = await ctx.connection.newStream(BLOB_PROTOCOL, { signal: opening?.signal, negotiateFully: false })
  } finally {
    opening?.clear()
  }
  const blob = new BlobStream(stream, { timeout: ctx.requestTimeout, what: 'transfer with Global', onRead: (n) => { ctx.onBytes?.('in', n) } })
  const abortStream = (): void => { stream.abort(abortError(signal)) }
  // An abort while the stream was being opened would otherwise go unnoticed until the decoder checks.
  if (signal?.aborted === true) { abortStream(); blob.release(); throw abortError(signal) }
  const cancelAbort = onAbort(signal, abortStream)
  return { blob, release: () => { blob.release(); cancelAbort() } }
}

/**
 * The error a failed transfer ends with. A caller's abort is an AbortError. A transfer whose
 * stream was cut under it — reset by Global or the connection, or ended early while the
 * connection is going down — is a GlobalUnreachableError carrying the close reason (never a
 * VerificationError: nothing unverified was delivered, and the data was not shown bad), so a
 * caller can retry on a new connection without polling the connection's state. Anything else
 * (Global's typed answers, bad data on a healthy stream, our own resets) is returned as is.
 */
function classify (err: unknown, blob: BlobStream, ctx: RequesterContext, signal?: AbortSignal): unknown {
  if (signal?.aborted === true) return asAbortError(err, signal)
  if (err instanceof GlobalUnreachableError) return err
  const reason = blob.closeReason
  const cutShort = !(err instanceof DstoreError) || err instanceof ClosedError ||
    (err instanceof StreamVerificationError && err.reason === 'truncated') ||
    err instanceof StreamEndedError
  if (!cutShort) return err
  // Not lost: bad data or a missing answer on a healthy connection is Global's fault; an error
  // of the caller's source passes unchanged.
  const lost = reason?.by === 'remote' || ctx.connection.status !== 'open' || !ctx.channel.open
  if (!lost) return err
  const why = reason?.error != null ? `${reason.error.name}: ${reason.error.message}` : err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  return new GlobalUnreachableError(`the blob stream to Global was cut off (${why})`, { cause: reason?.error ?? err })
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
