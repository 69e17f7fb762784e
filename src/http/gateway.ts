/**
 * `/ipfs/{cid}`: the IPFS HTTP Trustless Gateway for raw blocks (specs.ipfs.tech,
 * trustless-gateway and path-gateway), plus dstore's writes and its verified-range extension.
 *
 * Reads (GET, HEAD):
 * - `?format=raw` or `Accept: application/vnd.ipld.raw` answer `application/vnd.ipld.raw`; a
 *   plain request `application/octet-stream`. `format` wins over `Accept` (the spec's SHOULD).
 * - ETag `"{cid}"` (plain) or `"{cid}.raw"`, with `.{first}-{last}` for a range (path-gateway,
 *   "Etag"); `If-None-Match` with a matching tag (or `*`) answers 304.
 * - `Cache-Control: public, max-age=29030400, immutable`, `X-Content-Type-Options: nosniff`,
 *   `Content-Disposition: attachment; filename="{cid}.bin"`, `Accept-Ranges: bytes`, `Vary: Accept`.
 * - `Range` (range.ts): 206 with Content-Range, 416, or 400 for a malformed one.
 * - `Cache-Control: only-if-cached` answers 412 when the value is not at hand (a Local's cache miss).
 * - Identity CIDs (raw codec, identity multihash: `bafkqaaa`, the spec's probe) are served from the CID itself.
 * - `?format=dstore-bao&offset=N&length=M`: the bao encoding of that range (docs/HTTP.md).
 * Writes: POST /ipfs, PUT /ipfs/{cid} (body must hash to it), DELETE /ipfs/{cid}.
 */
import { CID } from 'multiformats/cid'
import { parseCID } from '../core/cid.js'
import { NotFoundError, OutOfRangeError, TooLargeError, VerificationError } from '../core/errors.js'
import { TreeHasher } from '../core/tree.js'
import { boundedBody, declaredLength, pipeBody } from './body.js'
import type { RequestContext } from './context.js'
import { HttpError } from './errors.js'
import { parseRange } from './range.js'

export const RAW_TYPE = 'application/vnd.ipld.raw'
export const BAO_TYPE = 'application/vnd.dstore.bao'
export const IMMUTABLE = 'public, max-age=29030400, immutable'

type Format = 'raw' | 'plain' | 'bao'

/** A value to serve: from the backend, or the bytes inside an identity CID. */
interface Source {
  size: number
  cached: boolean
  read: (offset: number, length: number) => AsyncIterable<Uint8Array>
}

function identityBytes (text: string): Uint8Array | undefined {
  try {
    const cid = CID.parse(text)
    if (cid.version === 1 && cid.code === 0x55 && cid.multihash.code === 0x00) return cid.multihash.digest
  } catch {}
  return undefined
}

/** Which representation the request asks for. @throws {HttpError} 400 for a format this gateway does not serve, 406 for an Accept it cannot meet. */
function negotiate (ctx: RequestContext): { format: Format, negotiated: boolean } {
  const format = ctx.target.query.get('format')
  if (format !== null) {
    if (format === 'raw') return { format: 'raw', negotiated: false }
    if (format === 'dstore-bao') return { format: 'bao', negotiated: false }
    throw new HttpError(400, 'ERR_UNSUPPORTED_FORMAT', `format=${format.slice(0, 40)} is not served: this gateway serves raw blocks (format=raw) only`)
  }
  const accept = (ctx.req.headers.accept ?? '').toLowerCase()
  const types = accept.split(',').map(t => t.split(';')[0].trim()).filter(t => t !== '')
  if (types.includes(RAW_TYPE)) return { format: 'raw', negotiated: true }
  if (types.includes(BAO_TYPE)) return { format: 'bao', negotiated: true }
  const plainOk = types.length === 0 || types.some(t => t === '*/*' || t === 'application/*' || t === 'application/octet-stream')
  if (!plainOk) throw new HttpError(406, 'ERR_NOT_ACCEPTABLE', `cannot answer Accept: ${accept.slice(0, 80)}; this gateway serves ${RAW_TYPE} and application/octet-stream`)
  return { format: 'plain', negotiated: false }
}

/** True when an If-None-Match header names `etag` (weak comparison, RFC 9110 13.1.2) or is `*`. */
function noneMatch (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const bare = etag.replace(/^W\//, '')
  return header.split(',').some(t => { const tag = t.trim(); return tag === '*' || tag.replace(/^W\//, '') === bare })
}

function parseKey (text: string): CID {
  return parseCID(text)
}

/** GET and HEAD /ipfs/{cid}. */
export async function getValue (ctx: RequestContext, cidText: string): Promise<void> {
  const { req, res, backend, signal } = ctx
  const head = ctx.method === 'HEAD'
  const { format, negotiated } = negotiate(ctx)
  const identity = identityBytes(cidText)
  let source: Source
  let cid: string
  if (identity !== undefined) {
    if (format === 'bao') throw new HttpError(400, 'ERR_UNSUPPORTED_FORMAT', 'an identity CID has no bao encoding: its bytes are the CID')
    cid = cidText
    source = { size: identity.length, cached: true, read: async function * (o, l) { yield identity.subarray(o, o + l) } }
  } else {
    const key = parseKey(cidText)
    cid = key.toString()
    const stat = await backend.stat(key, { signal })
    source = { size: stat.size, cached: stat.cached, read: (offset, length) => backend.cat(key, { offset, length }, { signal }) }
    if (/(^|,)\s*only-if-cached\s*(,|$)/i.test(req.headers['cache-control'] ?? '') && !stat.cached) {
      throw new HttpError(412, 'ERR_NOT_CACHED', `${cid} is not cached here (Cache-Control: only-if-cached)`)
    }
    if (format === 'bao') { await sendEncoded(ctx, key, head); return }
  }

  const headers: Record<string, string | number> = {
    'Cache-Control': IMMUTABLE,
    'X-Content-Type-Options': 'nosniff',
    'Content-Disposition': `attachment; filename="${cid}.bin"`,
    'Accept-Ranges': 'bytes',
    Vary: 'Accept',
    'X-Dstore-Cached': String(source.cached)
  }
  // Caches key on the URL: say where the negotiated representation lives on its own.
  if (negotiated) headers['Content-Location'] = `/ipfs/${cid}?format=raw`
  const suffix = format === 'raw' ? '.raw' : ''
  const range = parseRange(req.headers.range, source.size)
  headers.ETag = range.kind === 'range' ? `"${cid}${suffix}.${range.start}-${range.end}"` : `"${cid}${suffix}"`
  // Preconditions before Range (RFC 9110 13.2.2): a client holding the value gets 304 whatever its Range says.
  if (noneMatch(req.headers['if-none-match'], headers.ETag)) {
    delete headers['Content-Disposition']
    res.writeHead(304, headers)
    res.end()
    return
  }
  if (range.kind === 'malformed') throw new HttpError(400, 'ERR_BAD_RANGE', `malformed Range header: ${range.reason}`)
  if (range.kind === 'unsatisfiable') {
    throw new HttpError(416, 'ERR_RANGE_NOT_SATISFIABLE', `the range is outside the value (${source.size} bytes)`, { 'Content-Range': `bytes */${source.size}` })
  }
  const start = range.kind === 'range' ? range.start : 0
  const length = range.kind === 'range' ? range.end - range.start + 1 : source.size
  headers['Content-Type'] = format === 'raw' ? RAW_TYPE : 'application/octet-stream'
  headers['Content-Length'] = length
  let status = 200
  if (range.kind === 'range') {
    status = 206
    headers['Content-Range'] = `bytes ${range.start}-${range.end}/${source.size}`
  }
  if (head || length === 0) {
    res.writeHead(status, headers)
    res.end()
    return
  }
  // The first piece before the head: an error that comes at once (gone since stat, Global
  // unreachable) still gets its own status instead of a cut 200.
  const it = source.read(start, length)[Symbol.asyncIterator]()
  const first = await it.next()
  res.writeHead(status, headers)
  await pipeBody(res, it, first.done === true ? undefined : first.value)
}

function rangeParam (ctx: RequestContext, name: string, dflt: number): number {
  const text = ctx.target.query.get(name)
  if (text === null) return dflt
  const n = Number(text)
  if (text.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new OutOfRangeError(`${name}=${text.slice(0, 40)} is not a whole number of 0 or more`)
  return n
}

/** `?format=dstore-bao`: the verified encoding of `[offset, offset + length)`. */
async function sendEncoded (ctx: RequestContext, key: CID, head: boolean): Promise<void> {
  const offset = rangeParam(ctx, 'offset', 0)
  const length = rangeParam(ctx, 'length', Infinity)
  const encoded = await ctx.backend.encoded(key, { offset, length }, { signal: ctx.signal })
  const cid = key.toString()
  const headers = {
    'Content-Type': BAO_TYPE,
    'Content-Length': encoded.length,
    'X-Dstore-Size': encoded.size,
    'Cache-Control': IMMUTABLE,
    'X-Content-Type-Options': 'nosniff',
    'Content-Disposition': `attachment; filename="${cid}.bao"`,
    ETag: `"${cid}.dstore-bao.${offset}-${length === Infinity ? '' : length}"`
  }
  const it = encoded.stream[Symbol.asyncIterator]()
  if (head) {
    await it.return?.()
    ctx.res.writeHead(200, headers)
    ctx.res.end()
    return
  }
  const first = await it.next()
  ctx.res.writeHead(200, headers)
  await pipeBody(ctx.res, it, first.done === true ? undefined : first.value)
}

function sendJson (ctx: RequestContext, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(JSON.stringify(body) + '\n')
  ctx.res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': bytes.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers })
  ctx.res.end(bytes)
}

/** POST /ipfs (`cidText` undefined) and PUT /ipfs/{cid}: streams the body into the backend. */
export async function putValue (ctx: RequestContext, cidText?: string): Promise<void> {
  ctx.checkWrite()
  const expected = cidText === undefined ? undefined : parseKey(cidText)
  const max = ctx.maxBlobSize
  const declared = declaredLength(ctx.req)
  // Refused before a byte is read (and the connection closed, as the body is not read).
  if (max !== undefined && declared !== undefined && declared > max) {
    throw new TooLargeError(`the body (${declared} bytes) is larger than the ${max}-byte limit`)
  }
  const counter = { bytes: 0 }
  const cid = await ctx.backend.put(boundedBody(ctx.req, max, counter), { expected, signal: ctx.signal })
  // A Local told `expected` asks Global first and, when Global has the value, reads nothing:
  // the body must still hash to {cid}, or a PUT of any bytes would be answered 201.
  if (expected !== undefined && counter.bytes === 0 && !ctx.req.readableEnded) await checkUnread(ctx, expected, max, counter)
  const text = cid.toString()
  sendJson(ctx, 201, { cid: text, size: counter.bytes }, { Location: `/ipfs/${text}` })
}

/** Reads the body nobody read (the value was stored already) and checks that it hashes to `expected`. @throws {VerificationError} */
async function checkUnread (ctx: RequestContext, expected: CID, max: number | undefined, counter: { bytes: number }): Promise<void> {
  const hasher = new TreeHasher()
  for await (const chunk of boundedBody(ctx.req, max, counter)) hasher.update(chunk)
  const { root } = hasher.finalize()
  const want = expected.multihash.digest
  if (root.length !== want.length || root.some((b, i) => b !== want[i])) {
    throw new VerificationError(`the body does not hash to ${expected.toString()}`)
  }
}

/** DELETE /ipfs/{cid}: evicts everywhere. */
export async function deleteValue (ctx: RequestContext, cidText: string): Promise<void> {
  ctx.checkWrite()
  const key = parseKey(cidText)
  const removed = await ctx.backend.delete(key, { signal: ctx.signal })
  if (!removed) throw new NotFoundError(`${key.toString()} is not stored`)
  sendJson(ctx, 200, { cid: key.toString(), removed: true })
}

export { sendJson }
