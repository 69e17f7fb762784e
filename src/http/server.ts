/**
 * The HTTP listener of a Local daemon or a Global (docs/HTTP.md): node:http, with the limits
 * that keep one client from starving the rest (docs/SECURITY.md, "HTTP"):
 * - a deadline for the request head (slowloris) and for idle sockets;
 * - a cap on header size, on open connections, and on requests in progress (the rest wait in
 *   a bounded queue; past it, 503 with Retry-After);
 * - malformed requests (garbage, bad paths) get 400 and touch nothing else.
 * Writes are open on a loopback listener, or with a bearer token; elsewhere the listener is
 * read-only (and refuses to start with `writable: true` and no token).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { isIP } from 'node:net'
import { ConfigError, PermissionDeniedError, UnauthorizedError } from '../core/errors.js'
import { bearerChecker } from './auth.js'
import type { HttpBackend } from './backend.js'
import type { RequestContext } from './context.js'
import { HttpError, sendError, statusOf } from './errors.js'
import { RequestLimiter } from './limiter.js'
import { route, type HttpMetrics } from './routes.js'
import { STATUS_PAGE_HTML } from './status-page.js'
import { parseTarget } from './target.js'

export type { HttpMetrics } from './routes.js'

export interface HttpServerOptions {
  /** Address to listen on: an IP address or `localhost`. */
  host: string
  /** Port; 0 picks any free one. */
  port: number
  backend: HttpBackend
  /** Serves GET /metrics and observes every request; without it /metrics is 404. */
  metrics?: HttpMetrics
  /** Bearer token every write must carry (`Authorization: Bearer TOKEN`). */
  token?: string
  /** Accept writes. @default true on a loopback host or with a token, else false */
  writable?: boolean
  /** Largest body a put may have (413 above it). @default no limit */
  maxBlobSize?: number
  /** The HTML of GET /. @default the status page (status-page.ts) */
  page?: () => string
  log?: (line: string) => void
  /** Time a client gets to send the whole request head. @default 10000 */
  headersTimeout?: number
  /** Time a socket may be silent (no bytes either way) before it is closed. @default 30000 */
  idleTimeout?: number
  /** Largest request head, in bytes (431 above it). @default 16384 */
  maxHeaderSize?: number
  /** Open connections at once; more are closed as they arrive. @default 4096 */
  maxConnections?: number
  /** Requests handled at once. @default 64 */
  maxConcurrentRequests?: number
  /** Requests waiting for a slot; past this, 503 with Retry-After. @default 4096 */
  maxQueuedRequests?: number
}

export interface HttpServer {
  /** `http://HOST:PORT` (IPv6 in brackets). */
  readonly url: string
  readonly host: string
  readonly port: number
  /** Stops listening, cuts open connections and in-flight requests. */
  close: () => Promise<void>
}

/** True for loopback addresses and names: 127.0.0.0/8, ::1, ::ffff:127.x, `localhost`. */
export function isLoopbackHost (host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h)
  return false
}

/** The host part of a Host header (`name:port`, `[v6]:port`). */
function hostOf (header: string): string {
  const m = /^\[([^\]]*)\](?::\d*)?$/.exec(header)
  if (m !== null) return m[1]
  const colon = header.lastIndexOf(':')
  return colon >= 0 && header.indexOf(':') === colon ? header.slice(0, colon) : header
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'])

/** The default GET /: the status page (status-page.ts). */
export function placeholderPage (): string {
  return STATUS_PAGE_HTML
}

/** Starts listening. @throws {ConfigError} for unsafe options; the listen error (with its errno `code`, e.g. EADDRINUSE) if the port cannot be had. */
export async function startHttpServer (options: HttpServerOptions): Promise<HttpServer> {
  const loopback = isLoopbackHost(options.host)
  const token = options.token
  if (token !== undefined && token.trim() === '') throw new ConfigError('the HTTP token is empty')
  const writable = options.writable ?? (loopback || token !== undefined)
  if (writable && !loopback && token === undefined) {
    throw new ConfigError(`refusing to open writes on ${options.host}, which is not loopback, without a token (give one, or listen read-only)`)
  }
  const checkToken = token === undefined ? undefined : bearerChecker(token)
  const log = options.log ?? (() => {})
  const headersTimeout = options.headersTimeout ?? 10_000
  const idleTimeout = options.idleTimeout ?? 30_000
  const limiter = new RequestLimiter(options.maxConcurrentRequests ?? 64, options.maxQueuedRequests ?? 4096)
  // Requests in progress, aborted together by close(). (One controller each: AbortSignal.any per
  // request costs more than the rest of a small GET.)
  const inFlight = new Set<AbortController>()
  const page = options.page ?? placeholderPage

  const checkWrite = (req: IncomingMessage) => () => {
    if (!writable) throw new PermissionDeniedError('this HTTP listener is read-only (not loopback, and no --http-token)')
    if (checkToken !== undefined && !checkToken(req.headers.authorization)) {
      throw new UnauthorizedError('this HTTP listener needs "Authorization: Bearer TOKEN" for writes')
    }
    // A web page on another origin may send a simple POST to a loopback port; browsers say who sent it.
    const origin = req.headers.origin
    if ((origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) || req.headers['sec-fetch-site'] === 'cross-site') {
      throw new PermissionDeniedError('cross-site writes are refused')
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now()
    const method = METHODS.has(req.method ?? '') ? req.method as string : 'OTHER'
    let label = 'other'
    const abort = new AbortController()
    const signal = abort.signal
    inFlight.add(abort)
    res.on('close', () => {
      inFlight.delete(abort)
      abort.abort()
      options.metrics?.observeRequest(method, res.statusCode, (performance.now() - started) / 1000, label)
    })
    const write = method === 'POST' || method === 'PUT' || method === 'DELETE'
    // Once the whole body is in, the wait is the server's (storing, fsync, a Local waiting for
    // Global or for the first piece of a swarm download), not an idle client: the idle deadline
    // is off until the answer starts, and back on while it streams (a reader that stops is cut).
    // A request without a body is whole at once: its 'end' would never come, as nobody reads it.
    const socket = req.socket
    const waiting = (): void => { if (!res.headersSent && !socket.destroyed) socket.setTimeout(0) }
    if (hasNoBody(req)) waiting(); else req.once('end', waiting)
    const writeHead = res.writeHead
    res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      if (!socket.destroyed) socket.setTimeout(idleTimeout)
      return writeHead.apply(this, args)
    } as ServerResponse['writeHead']
    let release: (() => void) | undefined
    try {
      // DNS rebinding: a loopback listener answers only requests addressed to a loopback name.
      if (loopback && !isLoopbackHost(hostOf(req.headers.host ?? ''))) {
        throw new HttpError(403, 'ERR_BAD_HOST', 'this loopback listener only answers requests for a loopback host name')
      }
      const ctx: RequestContext = {
        req, res, method, target: parseTarget(req.url ?? ''), backend: options.backend, signal,
        checkWrite: checkWrite(req), maxBlobSize: options.maxBlobSize, log
      }
      const found = route(ctx, { metrics: options.metrics, page })
      label = found.label
      release = await limiter.acquire(signal)
      await found.handler(ctx)
    } catch (err) {
      // A failure once the head is out cuts the body: the client sees only a short transfer, so
      // say why here, whatever the status (a client that left is no failure: AbortError).
      if (res.headersSent && (err as Error)?.name !== 'AbortError') log(`HTTP ${method} ${(req.url ?? '').slice(0, 100)}: cut after the head was sent: ${(err as Error)?.name}: ${(err as Error)?.message}`)
      if (res.destroyed) return
      const status = statusOf(err, write)
      if (status >= 500 && status !== 503 && !res.headersSent) log(`HTTP ${method} ${(req.url ?? '').slice(0, 100)}: ${(err as Error)?.stack ?? String(err)}`)
      // A write refused before its body was read: close rather than read the body.
      sendError(res, err, { write, head: method === 'HEAD', close: write && !req.complete })
    } finally {
      release?.()
    }
  }

  const server = createServer({
    maxHeaderSize: options.maxHeaderSize ?? 16384,
    headersTimeout,
    // No deadline on a whole request: a large body must be able to stream; idleTimeout stops a stalled one.
    requestTimeout: 0,
    keepAliveTimeout: 5000,
    // Node checks headersTimeout only this often (30 s by default).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4)))
  }, (req, res) => { void handle(req, res) })
  server.maxConnections = options.maxConnections ?? 4096
  server.setTimeout(idleTimeout, (socket: Socket) => { socket.destroy() })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Mid-response (a pipelined request gone bad), raw bytes would corrupt the answer being sent.
    const sending = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
    if (!socket.writable || sending || err.code === 'ECONNRESET') { socket.destroy(); return }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
    const text = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    socket.destroySoon?.()
  })

  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => { reject(err) }
    server.once('error', failed)
    server.listen({ host: options.host, port: options.port, exclusive: true }, () => {
      server.off('error', failed)
      resolve()
    })
  })
  server.on('error', (err) => { log(`HTTP server error: ${err.message}`) })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port
  const host = options.host
  const url = `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`
  let closed: Promise<void> | undefined
  return {
    url,
    host,
    port,
    close: async () => {
      closed ??= new Promise<void>(resolve => {
        for (const abort of inFlight) abort.abort()
        server.close(() => { resolve() })
        server.closeAllConnections()
      })
      await closed
    }
  }
}

/** Whether a request has no body (no Content-Length above 0, no Transfer-Encoding). */
function hasNoBody (req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return false
  const length = req.headers['content-length']
  return length === undefined || Number(length) === 0
}
