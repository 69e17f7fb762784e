/**
 * Encoding of dstore wire messages (`docs/PROTOCOL.md`, "Wire protocol").
 *
 * Every message is one frame: `kind u8 | id u32 | body`, big-endian integers. Keys travel as
 * bare 32-byte BLAKE3 digests: every dstore key is CIDv1/raw/blake3-256, so the rest of the CID
 * is implied and a peer cannot send a key of the wrong shape. Decoding never trusts a length it
 * has not checked against the bytes present; any malformed body is a `ProtocolError`.
 */
import { ProtocolError } from '../core/errors.js'
import { KIND, MAX_BATCH, RESPONSE } from './constants.js'

export const DIGEST_LEN = 32
/** "No value" in a u64 field: absent size, or a range that runs to the end. */
export const U64_NONE = 2 ** 64 - 1

export interface Header { kind: number, id: number }

/** Builds a message: a growable buffer, written once and sent as is (send() keeps a reference). */
export class MessageWriter {
  private buf: Uint8Array
  private view: DataView
  pos = 0

  /** A message `kind | id | body`; with `kind` null, a bare body (the rpc channel adds the header). */
  constructor (kind: number | null, id: number, bodyHint = 64) {
    this.buf = new Uint8Array((kind === null ? 0 : 5) + bodyHint)
    this.view = new DataView(this.buf.buffer)
    if (kind !== null) this.u8(kind).u32(id)
  }

  private room (n: number): void {
    if (this.pos + n <= this.buf.length) return
    const bigger = new Uint8Array(Math.max(this.pos + n, this.buf.length * 2))
    bigger.set(this.buf.subarray(0, this.pos))
    this.buf = bigger
    this.view = new DataView(bigger.buffer)
  }

  u8 (v: number): this { this.room(1); this.buf[this.pos++] = v; return this }
  u16 (v: number): this { this.room(2); this.view.setUint16(this.pos, v); this.pos += 2; return this }
  u32 (v: number): this { this.room(4); this.view.setUint32(this.pos, v); this.pos += 4; return this }
  /** A u64 from a safe integer, or {@link U64_NONE}. */
  u64 (v: number): this {
    this.room(8)
    if (v === U64_NONE) {
      this.view.setUint32(this.pos, 0xffffffff); this.view.setUint32(this.pos + 4, 0xffffffff)
    } else {
      this.view.setUint32(this.pos, Math.floor(v / 0x100000000)); this.view.setUint32(this.pos + 4, v >>> 0)
    }
    this.pos += 8
    return this
  }

  bytes (b: Uint8Array): this { this.room(b.length); this.buf.set(b, this.pos); this.pos += b.length; return this }
  digest (d: Uint8Array): this {
    if (d.length !== DIGEST_LEN) throw new TypeError('digest must be 32 bytes')
    return this.bytes(d)
  }

  /** A UTF-8 string with a u16 length, truncated to fit. */
  str (s: string): this {
    let b = new TextEncoder().encode(s)
    if (b.length > 0xffff) b = b.subarray(0, 0xffff)
    return this.u16(b.length).bytes(b)
  }

  finish (): Uint8Array { return this.buf.subarray(0, this.pos) }
}

/** Reads a message body, checking every length against what is present. */
export class MessageReader {
  private readonly view: DataView
  pos = 0
  readonly kind: number
  readonly id: number

  constructor (readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    if (buf.length < 5) throw new ProtocolError(`message of ${buf.length} bytes is shorter than its 5-byte header`)
    this.kind = this.u8()
    this.id = this.u32()
  }

  private need (n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new ProtocolError(`message kind 0x${this.kind.toString(16)} truncated: needs ${this.pos + n} bytes, has ${this.buf.length}`)
    }
  }

  u8 (): number { this.need(1); return this.buf[this.pos++] }
  u16 (): number { this.need(2); const v = this.view.getUint16(this.pos); this.pos += 2; return v }
  u32 (): number { this.need(4); const v = this.view.getUint32(this.pos); this.pos += 4; return v }
  /** A u64 that must be a safe integer, or {@link U64_NONE}. */
  u64 (): number {
    this.need(8)
    const hi = this.view.getUint32(this.pos)
    const lo = this.view.getUint32(this.pos + 4)
    this.pos += 8
    if (hi === 0xffffffff && lo === 0xffffffff) return U64_NONE
    if (hi > 0x1fffff) throw new ProtocolError('u64 field above 2^53')
    return hi * 0x100000000 + lo
  }

  bytes (n: number): Uint8Array { this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b }
  digest (): Uint8Array { return this.bytes(DIGEST_LEN) }
  str (): string { return new TextDecoder().decode(this.bytes(this.u16())) }
  rest (): Uint8Array { const b = this.buf.subarray(this.pos); this.pos = this.buf.length; return b }

  /** A u16 count of items, checked against {@link MAX_BATCH}. */
  count (): number {
    const n = this.u16()
    if (n > MAX_BATCH) throw new ProtocolError(`batch of ${n} exceeds the limit of ${MAX_BATCH}`)
    return n
  }

  /** Asserts the whole body was consumed: trailing bytes are a protocol error. */
  end (): void {
    if (this.pos !== this.buf.length) throw new ProtocolError(`message kind 0x${this.kind.toString(16)} has ${this.buf.length - this.pos} trailing bytes`)
  }
}

// ---- Requests ------------------------------------------------------------------------------

/** A message header, `kind u8 | id u32`, for a body built without one. */
export function messageHeader (kind: number, id: number): Uint8Array {
  return new MessageWriter(kind, id, 0).finish()
}

/** `header ‖ body` in one array (tests and raw senders; the rpc channel sends the parts as they are). */
export function withHeader (kind: number, id: number, ...body: Uint8Array[]): Uint8Array {
  const w = new MessageWriter(kind, id, body.reduce((n, b) => n + b.length, 0))
  for (const b of body) w.bytes(b)
  return w.finish()
}

function digestList (digests: Uint8Array[]): Uint8Array {
  if (digests.length > MAX_BATCH) throw new RangeError(`${digests.length} keys exceed the batch limit of ${MAX_BATCH}`)
  const w = new MessageWriter(null, 0, 2 + digests.length * DIGEST_LEN).u16(digests.length)
  for (const d of digests) w.digest(d)
  return w.finish()
}

/** Body of a STAT request. */
export function statBody (digests: Uint8Array[]): Uint8Array { return digestList(digests) }

export function encodeStat (id: number, digests: Uint8Array[]): Uint8Array {
  return withHeader(KIND.STAT, id, statBody(digests))
}

export function decodeDigests (r: MessageReader): Uint8Array[] {
  const n = r.count()
  const out: Uint8Array[] = []
  for (let i = 0; i < n; i++) out.push(r.digest())
  r.end()
  return out
}

/** GET flag: the answer may carry the verified range inline (rpc channel only). */
export const GET_FLAG_INLINE = 1
/**
 * GET flag: a range too large to inline may be answered with its start inline (mode
 * {@link GET_USE_BLOB} with `covered` > 0); the requester fetches the rest on a blob stream.
 */
export const GET_FLAG_PARTIAL = 2
/**
 * GET flag: a whole value of at least `SWARM_MIN_SIZE` bytes may be answered with its size and
 * the Locals that can serve it (mode {@link GET_SOURCES}) instead of its bytes.
 */
export const GET_FLAG_SWARM = 4

export interface GetRequest {
  digest: Uint8Array
  offset: number
  /** Bytes, or {@link U64_NONE}: to the end. */
  length: number
  /** May be answered inline ({@link GET_FLAG_INLINE}). */
  inline: boolean
  /** May be answered with the start of the range inline ({@link GET_FLAG_PARTIAL}). */
  partial?: boolean
  /** May be answered with the value's sources ({@link GET_FLAG_SWARM}). */
  swarm?: boolean
}

/** Body of a GET request (on the rpc channel, or as a blob stream's head with id 0). */
export function getBody (req: GetRequest): Uint8Array {
  return new MessageWriter(null, 0, 49).digest(req.digest).u64(req.offset).u64(req.length)
    .u8((req.inline ? GET_FLAG_INLINE : 0) | (req.partial === true ? GET_FLAG_PARTIAL : 0) | (req.swarm === true ? GET_FLAG_SWARM : 0)).finish()
}

export function encodeGet (id: number, req: GetRequest): Uint8Array {
  return withHeader(KIND.GET, id, getBody(req))
}

export function decodeGet (r: MessageReader): GetRequest {
  const digest = r.digest()
  const offset = r.u64()
  const length = r.u64()
  const flags = r.u8()
  r.end()
  if (offset === U64_NONE) throw new ProtocolError('GET offset cannot be the none value')
  if ((flags & ~(GET_FLAG_INLINE | GET_FLAG_PARTIAL | GET_FLAG_SWARM)) !== 0) throw new ProtocolError(`GET flags 0x${flags.toString(16)} has unknown bits`)
  return { digest, offset, length, inline: (flags & GET_FLAG_INLINE) !== 0, partial: (flags & GET_FLAG_PARTIAL) !== 0, swarm: (flags & GET_FLAG_SWARM) !== 0 }
}

/** Body of an inline PUT: the digest, then the value (kept as its own part: not copied). */
export function putBody (digest: Uint8Array, data: Uint8Array): Uint8Array[] {
  if (digest.length !== DIGEST_LEN) throw new TypeError('digest must be 32 bytes')
  return [digest, data]
}

export function encodePut (id: number, digest: Uint8Array, data: Uint8Array): Uint8Array {
  return withHeader(KIND.PUT, id, ...putBody(digest, data))
}

/**
 * PUT head on a blob stream: the digest when the sender knows it (then Global refuses anything
 * else), and the exact size when known ({@link U64_NONE} otherwise). The raw value follows,
 * ended by the sender closing its side.
 */
export interface PutHead { digest?: Uint8Array, size?: number }

export function encodePutHead (head: PutHead): Uint8Array {
  const w = new MessageWriter(KIND.PUT, 0, 41).u8(head.digest != null ? 1 : 0)
  w.digest(head.digest ?? new Uint8Array(DIGEST_LEN))
  return w.u64(head.size ?? U64_NONE).finish()
}

export function decodePutHead (r: MessageReader): PutHead {
  const flags = r.u8()
  const digest = r.digest()
  const size = r.u64()
  r.end()
  if (flags > 1) throw new ProtocolError('PUT head flags must be 0 or 1')
  return { digest: flags === 1 ? digest : undefined, size: size === U64_NONE ? undefined : size }
}

/** Answer to a blob-stream PUT: the digest Global computed and stored. */
export function encodePutResponse (digest: Uint8Array): Uint8Array {
  return new MessageWriter(KIND.PUT | RESPONSE, 0, DIGEST_LEN).digest(digest).finish()
}

/** Answer to a blob-stream GET: the value's size; the verified stream follows raw. */
export function encodeBlobGetResponse (size: number): Uint8Array {
  return new MessageWriter(KIND.GET | RESPONSE, 0, 8).u64(size).finish()
}

/** Body of a DELETE request. */
export function deleteBody (digest: Uint8Array): Uint8Array {
  return new MessageWriter(null, 0, DIGEST_LEN).digest(digest).finish()
}

export function encodeDelete (id: number, digest: Uint8Array): Uint8Array {
  return withHeader(KIND.DELETE, id, deleteBody(digest))
}

export interface ListRequest { after?: Uint8Array, limit: number }

/** Body of a LIST request. */
export function listBody (req: ListRequest): Uint8Array {
  const w = new MessageWriter(null, 0, 35)
  if (req.after != null) w.u8(1).digest(req.after); else w.u8(0)
  return w.u16(req.limit).finish()
}

export function encodeList (id: number, req: ListRequest): Uint8Array {
  return withHeader(KIND.LIST, id, listBody(req))
}

/**
 * A LIST request. `limit` is the most entries the requester wants in one page: a larger one
 * is not an error, it is capped at {@link MAX_BATCH} (the answer says `more` when the rest did
 * not fit), so a requester need not know Global's page size.
 */
export function decodeList (r: MessageReader): ListRequest {
  const has = r.u8()
  if (has > 1) throw new ProtocolError('LIST cursor flag must be 0 or 1')
  const after = has === 1 ? r.digest() : undefined
  const limit = Math.min(r.u16(), MAX_BATCH)
  r.end()
  return { after, limit }
}

/** Body of an EVICT request (Global → Local): the Local drops these values, then answers. */
export function evictBody (digests: Uint8Array[]): Uint8Array { return digestList(digests) }

export function encodeEvict (id: number, digests: Uint8Array[]): Uint8Array {
  return withHeader(KIND.EVICT, id, evictBody(digests))
}

/** The keys of an EVICT request (copies: they outlive the frame). */
export function decodeEvict (r: MessageReader): Uint8Array[] {
  if (r.kind !== KIND.EVICT) throw new ProtocolError(`expected EVICT, got kind 0x${r.kind.toString(16)}`)
  return decodeDigests(r).map(d => d.slice())
}

/** The answer to an EVICT, sent once the copies are gone. */
export function encodeEvictResponse (id: number): Uint8Array {
  return encodeOk(KIND.EVICT, id)
}

/** A REPORT: the range of a value (from the first byte not delivered) that failed verification. */
export interface Report { digest: Uint8Array, offset: number, length: number }

/** Body of a REPORT (Local → Global). */
export function reportBody (report: Report): Uint8Array {
  return new MessageWriter(null, 0, 48).digest(report.digest).u64(report.offset).u64(report.length).finish()
}

export function decodeReport (r: MessageReader): Report {
  const digest = r.digest()
  const offset = r.u64()
  const length = r.u64()
  r.end()
  if (offset === U64_NONE || length === U64_NONE) throw new ProtocolError('REPORT offset and length cannot be the none value')
  return { digest, offset, length }
}

// ---- Responses -----------------------------------------------------------------------------

/** An empty success answer to request `kind`. */
export function encodeOk (kind: number, id: number): Uint8Array {
  return new MessageWriter(kind | RESPONSE, id, 0).finish()
}

export function encodeStatResponse (id: number, sizes: Array<number | undefined>): Uint8Array {
  const w = new MessageWriter(KIND.STAT | RESPONSE, id, 2 + sizes.length * 8).u16(sizes.length)
  for (const s of sizes) w.u64(s ?? U64_NONE)
  return w.finish()
}

export function decodeStatResponse (r: MessageReader): Array<number | undefined> {
  const n = r.count()
  const out: Array<number | undefined> = []
  for (let i = 0; i < n; i++) {
    const s = r.u64()
    out.push(s === U64_NONE ? undefined : s)
  }
  r.end()
  return out
}

/** GET answered inline: the verified stream of the whole range follows in the same message. */
export const GET_INLINE = 0
/**
 * GET too large to answer inline: the size, then `covered u64` and the verified stream of the
 * range's first `covered` bytes (a prefix ending on a chunk-group boundary, 0 when the request
 * did not set {@link GET_FLAG_PARTIAL}); the requester gets the rest on a blob stream.
 */
export const GET_USE_BLOB = 1
/**
 * GET of a large value asked with {@link GET_FLAG_SWARM}: the size, then the source list
 * (src/protocol/swarm-messages.ts) of Locals that hold or are fetching it. No value bytes.
 */
export const GET_SOURCES = 2

export function encodeGetInline (id: number, size: number, encoded: Uint8Array): Uint8Array {
  return new MessageWriter(KIND.GET | RESPONSE, id, 9 + encoded.length).u8(GET_INLINE).u64(size).bytes(encoded).finish()
}

/** A GET answer of mode {@link GET_USE_BLOB} with nothing inline. */
export function encodeGetUseBlob (id: number, size: number): Uint8Array {
  return encodeGetPartial(id, size, 0, new Uint8Array(0))
}

/** A GET answer of mode {@link GET_USE_BLOB} with the verified stream of the first `covered` bytes of the range. */
export function encodeGetPartial (id: number, size: number, covered: number, encoded: Uint8Array): Uint8Array {
  return new MessageWriter(KIND.GET | RESPONSE, id, 17 + encoded.length).u8(GET_USE_BLOB).u64(size).u64(covered).bytes(encoded).finish()
}

export type GetAnswer =
  | { mode: typeof GET_INLINE, size: number, encoded: Uint8Array }
  | { mode: typeof GET_USE_BLOB, size: number, covered: number, encoded: Uint8Array }
  /** `sources`: the encoded source list, decoded by `decodeSourceList` (swarm-messages.ts). */
  | { mode: typeof GET_SOURCES, size: number, sources: MessageReader }

/** An rpc GET answer. The size is only a hint until the decoder authenticates it. */
export function decodeGetAnswer (r: MessageReader): GetAnswer {
  const mode = r.u8()
  const size = r.u64()
  if (size === U64_NONE) throw new ProtocolError('GET answer size cannot be the none value')
  if (mode === GET_INLINE) return { mode, size, encoded: r.rest() }
  if (mode === GET_SOURCES) return { mode, size, sources: r }
  if (mode !== GET_USE_BLOB) throw new ProtocolError(`unknown GET answer mode ${mode}`)
  const covered = r.u64()
  if (covered === U64_NONE) throw new ProtocolError('GET answer covered length cannot be the none value')
  const encoded = r.rest()
  if ((covered === 0) !== (encoded.length === 0)) throw new ProtocolError('GET answer: the inline start and its length disagree')
  return { mode, size, covered, encoded }
}

export function encodeDeleteResponse (id: number, existed: boolean): Uint8Array {
  return new MessageWriter(KIND.DELETE | RESPONSE, id, 1).u8(existed ? 1 : 0).finish()
}

export interface ListEntry { digest: Uint8Array, size: number }

export function encodeListResponse (id: number, entries: ListEntry[], more: boolean): Uint8Array {
  const w = new MessageWriter(KIND.LIST | RESPONSE, id, 3 + entries.length * 40).u16(entries.length)
  for (const e of entries) w.digest(e.digest).u64(e.size)
  return w.u8(more ? 1 : 0).finish()
}

export function decodeListResponse (r: MessageReader): { entries: ListEntry[], more: boolean } {
  const n = r.count()
  const entries: ListEntry[] = []
  for (let i = 0; i < n; i++) entries.push({ digest: r.digest(), size: r.u64() })
  const more = r.u8() === 1
  r.end()
  return { entries, more }
}

export function encodeError (id: number, code: string, message: string): Uint8Array {
  return new MessageWriter(KIND.ERROR, id, 8 + message.length).str(code).str(message).finish()
}

export function decodeError (r: MessageReader): { code: string, message: string } {
  const code = r.str()
  const message = r.str()
  r.end()
  return { code, message }
}

/** CREDIT on a blob stream: the total number of bytes the receiver now allows (cumulative). */
export function encodeCredit (total: number): Uint8Array {
  return new MessageWriter(KIND.CREDIT, 0, 8).u64(total).finish()
}

export function decodeCredit (r: MessageReader): number {
  const total = r.u64()
  r.end()
  if (total === U64_NONE) throw new ProtocolError('CREDIT cannot be the none value')
  return total
}
