/**
 * `connectLocal`: a Local peer's methods spoken over a Local daemon's HTTP (`dstore local`), so
 * every program on a host shares the daemon's cache.
 *
 * The daemon is not trusted with the bytes: every byte a caller receives is checked against
 * its CID first. Reads ask for the bao encoding of the range (`?format=dstore-bao`,
 * docs/HTTP.md) and verify it with `decodeRange` against the CID's digest, exactly as a Local
 * verifies Global; a put hashes what it sends and refuses a CID from the daemon that is not the
 * hash of those bytes. What the daemon only *says* (sizes in `stat`, `has`, `missing`, `list`)
 * is reported as said, as a Local reports what Global says.
 */
import type { CID } from 'multiformats/cid'
import { parseCID, type CIDLike } from '../core/cid.js'
import { decodeRange } from '../core/bao/decode.js'
import { ArgumentError, NotFoundError, OutOfRangeError, ProtocolError, VerificationError } from '../core/errors.js'
import { iterateSource } from '../core/store/util.js'
import type { AbortOptions, ByteSource, CallOptions } from '../core/store/interface.js'
import { TreeHasher } from '../core/tree.js'
import type { CatOptions, LocalPutOptions } from '../peers/local/options.js'
import { checkCallOptions } from '../peers/local/options.js'
import { Transport } from './client-request.js'

/** Media type of the verified-read extension (docs/HTTP.md). */
export const DSTORE_BAO_TYPE = 'application/vnd.dstore.bao'

export interface ConnectLocalOptions {
  /** The daemon's base URL, as `dstore local` writes it to `<repo>/local.http` (e.g. `http://127.0.0.1:5081`). */
  url: string
  /** Bearer token for writes, when the daemon's listener has one (`--http-token FILE`). */
  token?: string
  /**
   * How long a request may go without a byte either way, in ms. A cold read waits while the
   * daemon fetches a value that fits its cache from Global; a read of a value larger than the
   * daemon's cache waits while the daemon streams the whole value once to build its outboard
   * (the CLI allows 5 minutes). Keep this above those.
   * @default 30000
   */
  timeout?: number
}

/** The daemon's answer to `stat`. */
export interface ClientStat { cid: CID, size: number, cached: boolean }

/** Bytes of an NDJSON line from `list` kept, at most, before it is a ProtocolError. */
const MAX_LINE = 4096

/**
 * A Local daemon, through its HTTP: the methods of a `LocalPeer` the CLI uses. Create it with
 * {@link connectLocal}; `stop()` closes its connections (the daemon keeps running).
 */
export class LocalClient {
  /** The daemon's PeerId, once `ready()` or `stats()` has asked for it. */
  peerId: string | undefined
  private readonly transport: Transport

  /** @internal use {@link connectLocal}. */
  constructor (options: ConnectLocalOptions) {
    if (options === null || typeof options !== 'object' || typeof options.url !== 'string') throw new ArgumentError('connectLocal needs { url }')
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token === '')) throw new ArgumentError('token: expected a non-empty string')
    const timeout = options.timeout ?? 30_000
    if (!Number.isSafeInteger(timeout) || timeout < 1) throw new ArgumentError(`timeout: expected an integer >= 1, got ${String(timeout)}`)
    this.transport = new Transport(options.url, options.token, timeout)
  }

  /** The daemon's base URL. */
  get url (): string { return this.transport.base.origin }

  /** Resolves once the daemon answers `GET /status`. @throws {DaemonUnreachableError} */
  async ready (options: AbortOptions = {}): Promise<void> {
    await this.stats(options)
  }

  /** The daemon's `GET /status` document (role, PeerId, cache figures; docs/HTTP.md). */
  async stats (options: AbortOptions = {}): Promise<Record<string, unknown>> {
    const { signal } = checkCallOptions(options)
    const doc = await this.json('GET', '/status', undefined, signal) as Record<string, unknown>
    if (typeof doc?.peerId === 'string') this.peerId = doc.peerId
    return doc
  }

  /** The value of `cid`, verified. @throws {NotFoundError} @throws {VerificationError} when the daemon's bytes do not match. */
  async get (cid: CIDLike, options: CallOptions = {}): Promise<Uint8Array> {
    const parts: Uint8Array[] = []
    let n = 0
    for await (const part of this.cat(cid, options)) { parts.push(part); n += part.length }
    if (parts.length === 1 && parts[0].byteOffset === 0 && parts[0].buffer.byteLength === n) return parts[0]
    const out = new Uint8Array(n)
    let o = 0
    for (const p of parts) { out.set(p, o); o += p.length }
    return out
  }

  /**
   * Streams verified bytes of a value, or of a range of it: nothing reaches the caller before
   * the group of the tree that holds it has been checked against the CID.
   * @throws {OutOfRangeError} for an offset past the end (as a Local does).
   */
  async * cat (cid: CIDLike, options: CatOptions = {}): AsyncGenerator<Uint8Array> {
    const key = parseCID(cid)
    const opts = checkCallOptions(options)
    const offset = opts.offset ?? 0
    if (!Number.isSafeInteger(offset) || offset < 0) throw new OutOfRangeError(`invalid offset ${String(opts.offset)}`)
    if (opts.length !== undefined && (!Number.isSafeInteger(opts.length) || opts.length < 0)) throw new OutOfRangeError(`invalid length ${String(opts.length)}`)
    const query = `format=dstore-bao&offset=${offset}${opts.length !== undefined ? `&length=${opts.length}` : ''}`
    let answer
    try {
      answer = await this.transport.send({ method: 'GET', path: `/ipfs/${key.toString()}?${query}`, headers: { accept: DSTORE_BAO_TYPE }, signal: opts.signal })
    } catch (err) {
      // The daemon found it missing when it asked Global for the size; a Local's cat reports
      // what Global's store says when asked for the bytes. Say that, so the CLI's line is the same.
      if (err instanceof NotFoundError) throw new NotFoundError(`Not in store: ${key.toString()}`)
      throw err
    }
    const body = answer.body
    const decoded = decodeRange(body, key.multihash.digest, { offset, length: opts.length ?? Infinity }, undefined, { signal: opts.signal })
    let done = 0
    let total: number | undefined
    for await (const piece of decoded) {
      done += piece.length
      yield piece
      total ??= opts.length ?? (decoded.size !== undefined ? decoded.size - offset : undefined)
      opts.onProgress?.({ type: 'blob:get:verified', bytes: done, total })
    }
    // The size is authenticated whenever the range reached the end of the value.
    if (decoded.size !== undefined && offset > decoded.size) throw new OutOfRangeError(`offset ${offset} is past the end of a ${decoded.size}-byte value`)
  }

  /**
   * Stores a value through the daemon (on Global) and returns its CID, once the daemon says
   * Global has it, and only if that CID is the hash of the bytes sent. With `expected`, the
   * daemon is asked first, and nothing is read from `source` or sent when the value is there.
   * @throws {VerificationError} when the bytes do not hash to `expected`, or the daemon names another CID.
   */
  async put (source: ByteSource, options: LocalPutOptions = {}): Promise<CID> {
    const opts = checkCallOptions(options)
    const expected = opts.expected !== undefined ? parseCID(opts.expected) : undefined
    if (expected !== undefined && await this.has(expected, { signal: opts.signal })) return expected
    const hasher = new TreeHasher()
    let sent = 0
    const known = source instanceof Uint8Array ? source.length : undefined
    const { body } = await this.transport.send({
      method: expected !== undefined ? 'PUT' : 'POST',
      path: expected !== undefined ? `/ipfs/${expected.toString()}` : '/ipfs',
      headers: { 'content-type': 'application/octet-stream', ...(known !== undefined ? { 'content-length': String(known) } : {}) },
      body: iterateSource(source, opts.signal),
      onSent: (piece) => {
        hasher.update(piece)
        sent += piece.length
        opts.onProgress?.({ type: 'blob:put:sent', bytes: sent, total: known })
      },
      signal: opts.signal
    })
    const doc = await readJson(body) as { cid?: unknown, size?: unknown }
    const { root, size } = hasher.finalize()
    const cid = typeof doc?.cid === 'string' ? parseCID(doc.cid) : undefined
    if (cid === undefined) throw new ProtocolError('the Local daemon answered a put without a CID')
    if (size !== sent || doc.size !== size || !equalBytes(cid.multihash.digest, root)) {
      throw new VerificationError(`the Local daemon named ${cid.toString()} (${String(doc.size)} bytes) for a ${size}-byte value that hashes to something else`)
    }
    return cid
  }

  /** True when the value is cached by the daemon or stored on Global. */
  async has (cid: CIDLike, options: AbortOptions = {}): Promise<boolean> {
    try {
      await this.stat(cid, options)
      return true
    } catch (err) {
      if (err instanceof NotFoundError) return false
      throw err
    }
  }

  /** Which of `cids` Global does not have (one request). */
  async missing (cids: CIDLike[], options: AbortOptions = {}): Promise<CID[]> {
    if (!Array.isArray(cids)) throw new ArgumentError(`missing needs an array of keys, got ${typeof cids === 'string' ? 'a string' : typeof cids}`)
    const keys = cids.map(c => parseCID(c))
    const { signal } = checkCallOptions(options)
    if (keys.length === 0) return []
    const answer = await this.json('POST', '/dstore/v1/missing', JSON.stringify(keys.map(k => k.toString())), signal)
    if (!Array.isArray(answer)) throw new ProtocolError('the Local daemon answered missing with something other than an array')
    const asked = new Set(keys.map(k => k.toString()))
    const gone = new Set(answer.map(c => parseCID(c).toString()))
    for (const c of gone) if (!asked.has(c)) throw new ProtocolError(`the Local daemon named ${c} missing, which was not asked about`)
    return keys.filter(k => gone.has(k.toString()))
  }

  /** Size of a value, and whether the daemon has it cached. @throws {NotFoundError} */
  async stat (cid: CIDLike, options: AbortOptions = {}): Promise<ClientStat> {
    const key = parseCID(cid)
    const { signal } = checkCallOptions(options)
    try {
      const { res } = await this.transport.send({ method: 'HEAD', path: `/ipfs/${key.toString()}`, signal })
      res.resume()
      const size = Number(res.headers['content-length'])
      if (!Number.isSafeInteger(size) || size < 0) throw new ProtocolError(`the Local daemon gave no size for ${key.toString()}`)
      return { cid: key, size, cached: res.headers['x-dstore-cached'] === 'true' }
    } catch (err) {
      // A HEAD answer has no body to name the error: say what a Local says.
      if (err instanceof NotFoundError) throw new NotFoundError(`${key.toString()} is not stored on Global`)
      throw err
    }
  }

  /** Deletes a value from Global and every connected Local's cache; false when it was not stored. */
  async delete (cid: CIDLike, options: AbortOptions = {}): Promise<boolean> {
    const key = parseCID(cid)
    const { signal } = checkCallOptions(options)
    try {
      const { body } = await this.transport.send({ method: 'DELETE', path: `/ipfs/${key.toString()}`, signal })
      const doc = await readJson(body) as { removed?: unknown }
      return doc?.removed === true
    } catch (err) {
      if (err instanceof NotFoundError) return false
      throw err
    }
  }

  /** Every value stored on Global, with its size (streamed: NDJSON). */
  async * list (options: AbortOptions = {}): AsyncGenerator<{ cid: CID, size: number }> {
    const { signal } = checkCallOptions(options)
    const { body } = await this.transport.send({ method: 'GET', path: '/dstore/v1/ls', headers: { accept: 'application/x-ndjson' }, signal })
    let rest = ''
    const parse = (line: string): { cid: CID, size: number } => {
      const doc = JSON.parse(line) as { cid?: unknown, size?: unknown }
      if (typeof doc?.size !== 'number' || !Number.isSafeInteger(doc.size) || doc.size < 0) throw new ProtocolError(`the Local daemon listed a bad entry: ${line.slice(0, 200)}`)
      return { cid: parseCID(doc.cid), size: doc.size }
    }
    for await (const piece of body) {
      rest += Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).toString('utf8')
      const lines = rest.split('\n')
      rest = lines.pop() as string
      if (rest.length > MAX_LINE) throw new ProtocolError('the Local daemon sent an over-long listing line')
      for (const line of lines) if (line.trim() !== '') yield parse(line)
    }
    if (rest.trim() !== '') yield parse(rest)
  }

  /** Closes this client's connections. The daemon keeps running. */
  async stop (): Promise<void> {
    this.transport.close()
  }

  private async json (method: string, path: string, body: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    const bytes = body !== undefined ? new TextEncoder().encode(body) : undefined
    const answer = await this.transport.send({
      method,
      path,
      headers: bytes !== undefined ? { 'content-type': 'application/json', 'content-length': String(bytes.length) } : { accept: 'application/json' },
      body: bytes !== undefined ? (async function * () { yield bytes })() : undefined,
      signal
    })
    return await readJson(answer.body)
  }
}

/** Connects to a Local daemon (nothing is sent until the first call; `ready()` checks it answers). */
export function connectLocal (options: ConnectLocalOptions): LocalClient {
  return new LocalClient(options)
}

/** A small JSON answer (at most 1 MiB). */
async function readJson (body: AsyncIterable<Uint8Array>): Promise<unknown> {
  const parts: Buffer[] = []
  let n = 0
  for await (const piece of body) {
    n += piece.length
    if (n > 1 << 20) throw new ProtocolError('the Local daemon sent an over-long JSON answer')
    parts.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength))
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'))
  } catch (err) {
    throw new ProtocolError('the Local daemon sent an answer that is not JSON', { cause: err })
  }
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
