/**
 * The serving side of the dstore protocol (Global): answers rpc requests and blob streams
 * from a verifiable store.
 *
 * Invariants:
 * - what Global stores it has verified: an inline PUT and a blob PUT both go through the
 *   store's `put`, which hashes every byte and refuses a value that does not match the digest
 *   the sender announced (or, without one, stores it under the digest it computes);
 * - what Global serves carries its proof: GET answers are verified streams (data with the
 *   outboard's parent nodes), so a Local checks every chunk group against its CID and a
 *   corrupt disk is caught by the reader, not trusted;
 * - a failing request never takes the server down: errors become ERROR answers, stream
 *   failures reset that stream only.
 */
import type { Stream } from '@libp2p/interface'
import { cidFromDigest } from '../core/cid.js'
import type { CID } from 'multiformats/cid'
import { ClosedError, NotFoundError, OutOfRangeError, ProtocolError, TimeoutError, TooLargeError } from '../core/errors.js'
import { DEFAULT_BATCH_BYTES, encodeRange, encodeRangeSync, encodedRangeLength } from '../core/bao/index.js'
import type { ByteRange } from '../core/bao/index.js'
import { DEFAULT_GROUP_LOG } from '../core/tree.js'
import type { BlobReader, VerifiableBlobStore } from '../core/store/interface.js'
import { INLINE_MAX, KIND, MAX_BATCH, MAX_REPORT_RANGE, REQUEST_TIMEOUT_MS } from './constants.js'
import { BlobStream } from './blob-stream.js'
import { EGRESS_SLICE, type EgressBucket } from './egress.js'
import { answerSwarmRequest, swarmGetAnswer, type SwarmHooks } from './swarm-provider.js'
import { CreditGate } from './flow.js'
import { PiecePool } from './piece-pool.js'
import {
  MessageReader, U64_NONE, decodeDigests, decodeReport, decodeGet, decodeList, decodePutHead,
  encodeBlobGetResponse, encodeDeleteResponse, encodeGetInline, encodeGetPartial, encodeGetUseBlob,
  encodeListResponse, encodeOk, encodePutResponse, encodeStatResponse, type ListEntry
} from './messages.js'
import type { RequestHandler } from './rpc.js'

export interface ProviderOptions {
  store: VerifiableBlobStore
  /** Called after a delete, before it is answered: Global evicts the value from every Local here. */
  onDelete: (digest: Uint8Array) => Promise<void>
  /** Largest value accepted by PUT; default unlimited (up to 2^53). */
  maxBlobSize?: number
  /** Time a transfer may go without progress; default {@link REQUEST_TIMEOUT_MS}. */
  requestTimeout?: number
  /** Counts bytes served and received. */
  onBytes?: (direction: 'in' | 'out', n: number) => void
  /**
   * Called when the Local resets a blob GET's stream after some of the range was sent (its
   * decoder may have rejected what we sent; a consumer that stops early also resets). `covered`
   * is a range of the value that includes every data byte sent. Global re-checks it against
   * the store in the background.
   */
  onGetAborted?: (digest: Uint8Array, covered: ByteRange) => void
  /**
   * Checks the requesting peer may read (GET, STAT, LIST) or write (PUT, DELETE); throws
   * (a PermissionDeniedError) if not. Called before anything is read from the store or the stream.
   */
  authorize?: (access: 'read' | 'write') => void
  /**
   * Called when a Local reports that a range of a value it got from us failed verification
   * (REPORT; at most {@link MAX_REPORT_RANGE} bytes). Global re-checks it against the store.
   */
  onReport?: (digest: Uint8Array, covered: ByteRange) => void
  /** Called when a peer breaks a rule on a blob stream (malformed, too slow, past its credit), for logging. */
  onProtocolError?: (err: Error) => void
  /**
   * Called when a GET or PUT of value bytes ends (status and metrics: src/peers/traffic.ts).
   * `bytes` are value bytes (a range's length), `started` is Date.now() at its start, `error`
   * what failed it. The start of a range answered inline ahead of a blob stream is `partial`.
   */
  onTransfer?: (transfer: ProviderTransfer) => void
  /**
   * Caps the value bytes sent (GET answers inline and on blob streams; the verified stream's
   * bytes, parents included), shared by every peer. A blob GET waiting for it is not idle for
   * its watchdog (the wait is ours, not the peer's). Default: no cap.
   */
  egress?: EgressBucket
  /**
   * The swarm (issue #12; swarm-provider.ts): answers ANNOUNCE, SOURCES, VOUCH and BADPEER, and
   * lets a whole-value GET with the SWARM flag be answered with sources. Without it those kinds
   * are unknown requests and the flag is ignored.
   */
  swarm?: SwarmHooks
  /**
   * Checks a GET's range (clipped to the value) can be served, before anything of it is sent;
   * throws (a NotFoundError) if not. For a store that holds only parts of some values: a Local
   * serving peers the verified pieces of a value it is still fetching (src/peers/local/serve-store.ts).
   */
  canServe?: (digest: Uint8Array, range: ByteRange) => Promise<void>
}

/** One GET or PUT the provider served, for {@link ProviderOptions.onTransfer}. */
export interface ProviderTransfer {
  op: 'get' | 'put'
  digest: Uint8Array
  bytes: number
  started: number
  partial?: boolean
  error?: unknown
}

/** The size STAT answers: none for a value the store does not hold, or holds a corrupt copy of. */
async function sizeOf (store: VerifiableBlobStore, digest: Uint8Array): Promise<number | undefined> {
  const cid = cidFromDigest(digest)
  // A copy found corrupt is not a copy: a Local putting these bytes sends them, and heals it.
  if (store.isSuspect?.(cid) === true) return undefined
  try {
    return (await store.stat(cid)).size
  } catch (err) {
    if (err instanceof NotFoundError) return undefined
    throw err
  }
}

/** Clips a wire range to the value: an offset past the end is an error, a length past it is cut. */
function clip (size: number, offset: number, length: number): ByteRange {
  if (offset > size) throw new OutOfRangeError(`offset ${offset} is past the end of a ${size}-byte value`)
  const max = size - offset
  return { offset, length: length === U64_NONE ? max : Math.min(length, max) }
}

function compareDigest (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}

/** The rpc request handler of Global. */
export function createProviderHandler (options: ProviderOptions): RequestHandler {
  const { store } = options
  const authorize = options.authorize ?? (() => {})
  return async (msg: MessageReader): Promise<Uint8Array> => {
    authorize(msg.kind === KIND.PUT || msg.kind === KIND.DELETE ? 'write' : 'read')
    switch (msg.kind) {
      case KIND.STAT: {
        const digests = decodeDigests(msg)
        const sizes = await Promise.all(digests.map(async d => await sizeOf(store, d)))
        return encodeStatResponse(msg.id, sizes)
      }
      case KIND.GET: return await answerGet(msg, options)
      case KIND.ANNOUNCE: case KIND.SOURCES: case KIND.VOUCH: case KIND.BADPEER:
        return await answerSwarmRequest(msg, options.swarm, async (d) => await sizeOf(store, d))
      case KIND.REPORT: {
        const report = decodeReport(msg)
        options.onReport?.(report.digest.slice(), { offset: report.offset, length: Math.min(report.length, MAX_REPORT_RANGE) })
        return encodeOk(KIND.REPORT, msg.id)
      }
      case KIND.PUT: {
        const digest = msg.digest()
        const data = msg.rest()
        if (data.length > INLINE_MAX) throw new ProtocolError(`inline PUT of ${data.length} bytes exceeds ${INLINE_MAX}`)
        checkSize(options, data.length)
        options.onBytes?.('in', data.length)
        const started = Date.now()
        try {
          await store.put(data, { expected: cidFromDigest(digest), size: data.length })
        } catch (error) {
          options.onTransfer?.({ op: 'put', digest, bytes: data.length, started, error })
          throw error
        }
        options.onTransfer?.({ op: 'put', digest, bytes: data.length, started })
        return encodeOk(KIND.PUT, msg.id)
      }
      case KIND.DELETE: {
        const digest = msg.digest()
        msg.end()
        const existed = await store.delete(cidFromDigest(digest))
        // Evict everywhere even if Global had no copy: a Local may still hold a stale one.
        await options.onDelete(digest)
        return encodeDeleteResponse(msg.id, existed)
      }
      case KIND.LIST: {
        const req = decodeList(msg)
        const entries: ListEntry[] = []
        let more = false
        // The filesystem store lists in digest order from `after`: a page costs one page. The
        // check below keeps the answer right for a store that ignores `after`.
        for await (const stat of store.list({ after: req.after ?? undefined })) {
          const digest = stat.cid.multihash.digest
          if (req.after != null && compareDigest(digest, req.after) <= 0) continue
          if (entries.length >= Math.min(req.limit, MAX_BATCH)) { more = true; break }
          entries.push({ digest, size: stat.size })
        }
        return encodeListResponse(msg.id, entries, more)
      }
      default:
        throw new ProtocolError(`unknown request kind 0x${msg.kind.toString(16)}`)
    }
  }
}

function checkSize (options: ProviderOptions, size: number): void {
  if (options.maxBlobSize != null && size > options.maxBlobSize) {
    throw new TooLargeError(`value of ${size} bytes exceeds this Global's limit of ${options.maxBlobSize}`)
  }
}

/**
 * Bytes of a range answered inline as the start of a larger one (mode partial): whole groups,
 * so that the rest starts on a group boundary and no group is sent twice, and small enough that
 * their verified stream (data, parents, header) stays within {@link INLINE_MAX}.
 */
const PARTIAL_GROUPS = Math.floor(INLINE_MAX / (1 << (DEFAULT_GROUP_LOG + 10))) - 1

/**
 * An rpc GET: the whole range inline when its verified stream fits in {@link INLINE_MAX} and the
 * request allows it; else the size and (when the request allows it) the start of the range
 * inline, the rest to be fetched on a blob stream. Index lookups: one for a small value held in
 * the index (`readInline`), three for a larger one (`readInline`, `open`, `outboard`).
 */
async function answerGet (msg: MessageReader, options: ProviderOptions): Promise<Uint8Array> {
  const { store } = options
  const req = decodeGet(msg)
  const cid = cidFromDigest(req.digest)
  // Small values live in the store's index: answered synchronously, no file, no generator.
  const started = Date.now()
  const small = req.inline ? store.readInline?.(cid) : undefined
  if (small !== undefined) {
    const range = clip(small.data.length, req.offset, req.length)
    const encoded = encodeRangeSync(small.data, small.outboard, range, DEFAULT_GROUP_LOG)
    if (options.egress !== undefined) await options.egress.take(encoded.length)
    options.onBytes?.('out', encoded.length)
    options.onTransfer?.({ op: 'get', digest: req.digest, bytes: range.length, started })
    return encodeGetInline(msg.id, small.data.length, encoded)
  }
  const reader = await store.open(cid)
  try {
    const size = reader.size
    const range = clip(size, req.offset, req.length)
    // A large whole value asked with the SWARM flag: who else can serve it, if anyone.
    const sources = swarmGetAnswer(msg.id, req, size, range, options.swarm)
    if (sources !== undefined) return sources
    await options.canServe?.(req.digest, range)
    const fits = encodedRangeLength(size, range, DEFAULT_GROUP_LOG) <= INLINE_MAX
    if (req.inline && fits) {
      const encoded = await collectEncoded(reader, await store.outboard(cid), range)
      if (options.egress !== undefined) await options.egress.take(encoded.length)
      options.onBytes?.('out', encoded.length)
      options.onTransfer?.({ op: 'get', digest: req.digest, bytes: range.length, started })
      return encodeGetInline(msg.id, size, encoded)
    }
    if (!req.partial || fits) return encodeGetUseBlob(msg.id, size)
    const groupLen = 1 << (DEFAULT_GROUP_LOG + 10)
    const end = (Math.floor(range.offset / groupLen) + PARTIAL_GROUPS) * groupLen
    const start = { offset: range.offset, length: end - range.offset }
    const encoded = await collectEncoded(reader, await store.outboard(cid), start)
    if (options.egress !== undefined) await options.egress.take(encoded.length)
    options.onBytes?.('out', encoded.length)
    options.onTransfer?.({ op: 'get', digest: req.digest, bytes: start.length, started, partial: true })
    return encodeGetPartial(msg.id, size, start.length, encoded)
  } finally {
    await reader.close()
  }
}

async function collectEncoded (reader: BlobReader, outboard: Uint8Array, range: ByteRange): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let n = 0
  for await (const part of encodeRange(reader, outboard, range, DEFAULT_GROUP_LOG)) { parts.push(part); n += part.length }
  if (parts.length === 1) return parts[0]
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

/**
 * Serves one blob stream: a head frame (GET or PUT), then raw bytes. Errors are answered with
 * an ERROR frame when the stream still works, and the stream is reset otherwise.
 */
export async function handleBlobStream (stream: Stream, options: ProviderOptions): Promise<void> {
  let reported = false
  const report = (err: Error): void => {
    if (!reported && (err instanceof ProtocolError || err instanceof TimeoutError)) { reported = true; options.onProtocolError?.(err) }
  }
  // Progress is bytes read or written: a peer that stops (or all but stops) sending or reading times out.
  const blob = new BlobStream(stream, { timeout: options.requestTimeout, what: 'blob stream', onIdle: report, explainIdle: true })
  try {
    const msg = await blob.readMessage('blob stream head')
    if (msg.kind === KIND.GET) {
      options.authorize?.('read')
      await serveGet(blob, msg, options)
    } else if (msg.kind === KIND.PUT) {
      options.authorize?.('write')
      await receivePut(blob, msg, options)
    } else {
      throw new ProtocolError(`unknown blob stream kind 0x${msg.kind.toString(16)}`)
    }
    await blob.close()
  } catch (err) {
    report(err instanceof Error ? err : new Error(String(err)))
    await blob.refuse(err)
  } finally {
    blob.release()
  }
}

async function serveGet (blob: BlobStream, msg: MessageReader, options: ProviderOptions): Promise<void> {
  const req = decodeGet(msg)
  const { store } = options
  const cid = cidFromDigest(req.digest)
  // The reader knows the size: no separate stat (one index lookup fewer).
  const reader = await store.open(cid)
  try {
    const size = reader.size
    const range = clip(size, req.offset, req.length)
    // Before the answer's head: once it is sent, a refusal could only reset the stream.
    await options.canServe?.(req.digest, range)
    const outboard = await store.outboard(cid)
    // The Local grants credit as it consumes; anything but CREDIT on its side is a protocol error.
    // Pieces the Local has provably consumed are reused for later ones (piece-pool.ts).
    const pool = new PiecePool(DEFAULT_BATCH_BYTES)
    const gate = new CreditGate(undefined, (total) => { pool.granted(total) })
    blob.readCredit(gate).then((other) => {
      if (other != null) throw new ProtocolError(`expected CREDIT during a GET, got kind 0x${other.kind.toString(16)}`)
    }).catch((err: Error) => { gate.fail(err); blob.fail(err) })
    let sent = 0
    // The Local resets the stream when its decoder rejects what we sent (or when its consumer
    // stops early), possibly after everything was sent: have what was sent re-checked.
    blob.stream.addEventListener('close', () => {
      const reason = blob.closeReason
      if (reason?.by === 'remote' && reason.error != null && sent > 0) {
        // The encoded bytes sent (parents included) bound the data bytes sent from range.offset.
        options.onGetAborted?.(req.digest, { offset: range.offset, length: Math.min(range.length, sent) })
      }
    }, { once: true })
    const started = Date.now()
    try {
      await blob.send(encodeBlobGetResponse(size))
      const { egress } = options
      for await (const part of encodeRange(reader, outboard, range, DEFAULT_GROUP_LOG, { batchBytes: DEFAULT_BATCH_BYTES, allocate: pool.allocate })) {
        pool.sending(part, sent + part.length)
        // Capped: a slice at a time, so that other transfers' slices take turns with ours.
        const step = egress === undefined ? part.length : EGRESS_SLICE
        for (let o = 0; o < part.length; o += step) {
          const slice = step >= part.length ? part : part.subarray(o, o + step)
          if (egress !== undefined) await blob.watchdog.hold(egress.take(slice.length))
          // Never past the credit: the Local resets a stream that sends more than it allowed.
          await blob.sendRaw(gate, slice)
          sent += slice.length
          options.onBytes?.('out', slice.length)
        }
      }
      options.onTransfer?.({ op: 'get', digest: req.digest, bytes: range.length, started })
    } catch (error) {
      // The encoded bytes sent bound the value bytes sent.
      options.onTransfer?.({ op: 'get', digest: req.digest, bytes: Math.min(range.length, sent), started, error })
      throw error
    } finally {
      gate.fail(new ClosedError('GET finished'))
    }
  } finally {
    await reader.close()
  }
}

async function receivePut (blob: BlobStream, msg: MessageReader, options: ProviderOptions): Promise<void> {
  const head = decodePutHead(msg)
  if (head.size != null) checkSize(options, head.size)
  const limit = options.maxBlobSize
  let received = 0
  // Credit is granted as the store consumes, so a disk slower than the network bounds what we
  // buffer; a sender that ignores it is reset as soon as it goes past (it is reported by the caller).
  const raw = blob.receiveRaw()
  async function * body (): AsyncGenerator<Uint8Array> {
    for await (const part of raw) {
      received += part.length
      if (limit != null && received > limit) throw new TooLargeError(`value exceeds this Global's limit of ${limit} bytes`)
      if (head.size != null && received > head.size) throw new ProtocolError(`PUT sent more than the ${head.size} bytes it announced`)
      options.onBytes?.('in', part.length)
      yield part
    }
  }
  const started = Date.now()
  let cid: CID
  try {
    cid = await options.store.put(body(), {
      expected: head.digest != null ? cidFromDigest(head.digest) : undefined,
      size: head.size
    })
  } catch (error) {
    options.onTransfer?.({ op: 'put', digest: head.digest ?? new Uint8Array(0), bytes: received, started, error })
    throw error
  }
  options.onTransfer?.({ op: 'put', digest: cid.multihash.digest, bytes: received, started })
  await blob.send(encodePutResponse(cid.multihash.digest))
}
