/**
 * Which handler answers which method and path (docs/HTTP.md lists them all), and dstore's own
 * routes: `/dstore/v1/ls`, `/dstore/v1/missing`, `/status`, `/metrics` and the page at `/`.
 */
import { parseCID } from '../core/cid.js'
import { ArgumentError } from '../core/errors.js'
import { pipeBody, readSmallBody } from './body.js'
import type { Handler, RequestContext } from './context.js'
import { HttpError } from './errors.js'
import { deleteValue, getValue, putValue, sendJson } from './gateway.js'
import { STATUS_PAGE_CSP } from './status-page.js'

/** What GET /metrics needs (B's `HttpMetrics`, src/http/metrics.ts, has this shape). */
export interface HttpMetrics {
  readonly registry: import('prom-client').Registry
  /** One finished HTTP request. route: a fixed label such as 'ipfs', 'status', 'metrics', 'page', 'other' */
  observeRequest: (method: string, status: number, seconds: number, route: string) => void
  text: () => Promise<string>
  readonly contentType: string
}

/** Largest body POST /dstore/v1/missing reads (about 17,000 CIDs). */
export const MAX_MISSING_BODY = 1 << 20

export interface RouteExtras {
  metrics?: HttpMetrics
  page: () => string
}

/** A route found for a request: its handler, and its fixed metrics label. */
export interface Route { handler: Handler, label: string }

function methods (label: string, table: Record<string, Handler>): (ctx: RequestContext) => Route {
  return (ctx) => {
    const handler = table[ctx.method] ?? (ctx.method === 'HEAD' ? table.GET : undefined)
    if (handler !== undefined) return { handler, label }
    const allow = Object.keys(table).concat('GET' in table ? ['HEAD'] : []).join(', ')
    return { label, handler: async () => { throw new HttpError(405, 'ERR_METHOD_NOT_ALLOWED', `${(ctx.req.method ?? ctx.method).slice(0, 20)} is not allowed here (Allow: ${allow})`, { Allow: allow }) } }
  }
}

/** Finds the route for `ctx` (a 404 or 405 handler when there is none). */
export function route (ctx: RequestContext, extras: RouteExtras): Route {
  const s = ctx.target.segments
  const at = (...want: string[]): boolean => s.length === want.length && want.every((w, i) => s[i] === w)
  if (s[0] === 'ipfs') {
    if (s.length === 1) return methods('ipfs', { POST: async (c) => { await putValue(c) } })(ctx)
    if (s.length > 2) return { label: 'ipfs', handler: async () => { throw new HttpError(400, 'ERR_BAD_PATH', 'raw blocks have no paths: only /ipfs/{cid} is served') } }
    const cid = s[1]
    return methods('ipfs', {
      GET: async (c) => { await getValue(c, cid) },
      PUT: async (c) => { await putValue(c, cid) },
      DELETE: async (c) => { await deleteValue(c, cid) }
    })(ctx)
  }
  if (s.length === 0) return methods('page', { GET: async (c) => { sendPage(c, extras.page()) } })(ctx)
  if (at('status')) return methods('status', { GET: async (c) => { sendJson(c, 200, await c.backend.status()) } })(ctx)
  if (at('metrics')) return methods('metrics', { GET: async (c) => { await sendMetrics(c, extras.metrics) } })(ctx)
  if (at('dstore', 'v1', 'ls')) return methods('ls', { GET: listValues })(ctx)
  if (at('dstore', 'v1', 'missing')) return methods('missing', { POST: missingValues })(ctx)
  return { label: 'other', handler: async () => { throw new HttpError(404, 'ERR_NO_ROUTE', 'no such route (see docs/HTTP.md)') } }
}

/** The page: its own inline script and style only (by hash), talking to this origin only. */
const PAGE_CSP = STATUS_PAGE_CSP

function sendPage (ctx: RequestContext, html: string): void {
  const bytes = Buffer.from(html)
  ctx.res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': bytes.length,
    'Cache-Control': 'no-store',
    'Content-Security-Policy': PAGE_CSP,
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer'
  })
  ctx.res.end(bytes)
}

async function sendMetrics (ctx: RequestContext, metrics: HttpMetrics | undefined): Promise<void> {
  if (metrics === undefined) throw new HttpError(404, 'ERR_NO_ROUTE', 'metrics are not enabled on this listener')
  const bytes = Buffer.from(await metrics.text())
  ctx.res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': bytes.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' })
  ctx.res.end(bytes)
}

/** GET /dstore/v1/ls: one `{"cid","size"}` per line, streamed. */
async function listValues (ctx: RequestContext): Promise<void> {
  const { res } = ctx
  const it = ctx.backend.list({ signal: ctx.signal })[Symbol.asyncIterator]()
  const first = await it.next()
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' })
  if (ctx.method === 'HEAD') { await it.return?.(); res.end(); return }
  const enc = new TextEncoder()
  const line = (v: { cid: { toString: () => string }, size: number }): Uint8Array => enc.encode(JSON.stringify({ cid: v.cid.toString(), size: v.size }) + '\n')
  const lines: AsyncIterator<Uint8Array> = {
    next: async () => { const r = await it.next(); return r.done === true ? { done: true, value: undefined } : { done: false, value: line(r.value) } },
    return: async () => { await it.return?.(); return { done: true, value: undefined } }
  }
  await pipeBody(res, lines, first.done === true ? undefined : line(first.value))
}

/** POST /dstore/v1/missing: a JSON array of CIDs in, the ones not stored out. */
async function missingValues (ctx: RequestContext): Promise<void> {
  const body = await readSmallBody(ctx.req, MAX_MISSING_BODY)
  let list: unknown
  try { list = JSON.parse(body.toString('utf8')) } catch { throw new ArgumentError('the body must be a JSON array of CID strings') }
  if (!Array.isArray(list) || !list.every(x => typeof x === 'string')) throw new ArgumentError('the body must be a JSON array of CID strings')
  const cids = (list as string[]).map(text => parseCID(text))
  const missing = await ctx.backend.missing(cids, { signal: ctx.signal })
  sendJson(ctx, 200, missing.map(c => c.toString()))
}
