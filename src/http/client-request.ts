/**
 * One HTTP exchange with a Local daemon, for the client (client.ts): the request (its body
 * streamed with backpressure), the response head, and the daemon's failures turned back into
 * dstore's typed errors.
 *
 * - An error answer's body `{ "error": { name, code, message } }` becomes the same error class
 *   the daemon threw (by `code`), so a caller sees what an in-process Local would have thrown.
 * - A daemon that is not there, or a connection that breaks, is {@link DaemonUnreachableError}.
 * - `timeout` bounds inactivity (no byte either way), not the whole exchange: a large transfer
 *   that keeps moving never times out.
 */
import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import { abortError } from '../core/abort.js'
import {
  ArgumentError, DaemonUnreachableError, DstoreError, GlobalUnreachableError, NotFoundError, OutOfRangeError,
  PermissionDeniedError, ProtocolError, TimeoutError, TooLargeError, UnauthorizedError, errorFromCode
} from '../core/errors.js'

/** Codes errorFromCode does not know (their classes are declared after its table). */
const LATER: Record<string, new (message: string) => DstoreError> = {
  [ArgumentError.code]: ArgumentError,
  [UnauthorizedError.code]: UnauthorizedError
}

/** Bytes of an error answer read, at most. */
const MAX_ERROR_BODY = 64 * 1024

export interface Exchange {
  method: string
  /** Path and query, e.g. `/ipfs/bafk…?format=dstore-bao`. */
  path: string
  headers?: Record<string, string>
  /** Request body: sent as it comes, waiting for the socket to drain. */
  body?: AsyncIterable<Uint8Array>
  /** Called with each piece of the body just before it is written (hashing, progress). */
  onSent?: (piece: Uint8Array) => void
  signal?: AbortSignal
}

/** A response with a status below 400: its head, and its body as typed-error bytes. */
export interface Answer {
  res: IncomingMessage
  body: AsyncGenerator<Uint8Array>
}

/** The transport a client holds: base URL, keep-alive agent, token, timeout. */
export class Transport {
  readonly base: URL
  private readonly agent: http.Agent
  private readonly lib: typeof http | typeof https

  constructor (url: string, private readonly token: string | undefined, readonly timeout: number) {
    let base: URL
    try {
      base = new URL(url)
    } catch (err) {
      throw new ArgumentError(`url: ${JSON.stringify(String(url).slice(0, 200))} is not a URL`, { cause: err })
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new ArgumentError(`url: expected http: or https:, got ${base.protocol}`)
    this.base = base
    this.lib = base.protocol === 'https:' ? https : http
    this.agent = new this.lib.Agent({ keepAlive: true, maxSockets: 64 })
  }

  /** Closes every pooled connection. */
  close (): void {
    this.agent.destroy()
  }

  /**
   * Sends the request and resolves with the response once its head is in, for a status below
   * 400; an error status is read and thrown as its dstore error. A body that fails (its source
   * throws) aborts the request and rejects with the source's own error.
   */
  async send (ex: Exchange): Promise<Answer> {
    const url = new URL(ex.path, this.base)
    const headers: Record<string, string> = { ...ex.headers }
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    if (ex.signal?.aborted === true) throw abortError(ex.signal)
    let failure: unknown // what ended the exchange, when we ended it
    const req = this.lib.request(url, { method: ex.method, headers, agent: this.agent })
    req.setTimeout(this.timeout, () => {
      failure ??= new TimeoutError(`the Local daemon at ${this.base.origin} sent nothing for ${this.timeout} ms`)
      req.destroy(failure as Error)
    })
    const onAbort = (): void => { failure ??= abortError(ex.signal); req.destroy(failure as Error) }
    ex.signal?.addEventListener('abort', onAbort, { once: true })
    let responded = false
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', (res) => { responded = true; resolve(res) })
      req.once('error', reject)
    })
    response.catch(() => {})
    if (ex.body === undefined) {
      req.end()
    } else {
      void this.write(req, ex, () => responded).catch((err: unknown) => {
        failure ??= err
        req.destroy(err instanceof Error ? err : new Error(String(err)))
      })
    }
    let res: IncomingMessage
    try {
      res = await response
    } catch (err) {
      ex.signal?.removeEventListener('abort', onAbort)
      throw failure ?? this.unreachable(err)
    }
    // The response body may still be read for a while: keep the abort wired to it.
    res.once('close', () => { ex.signal?.removeEventListener('abort', onAbort) })
    const status = res.statusCode ?? 0
    if (status < 400) return { res, body: this.read(res, () => failure) }
    const error = await readError(res, status, ex)
    req.destroy()
    throw error
  }

  private async write (req: http.ClientRequest, ex: Exchange, responded: () => boolean): Promise<void> {
    for await (const piece of ex.body as AsyncIterable<Uint8Array>) {
      // An early answer (413, 401): stop sending, the answer says why.
      if (responded() || req.destroyed) return
      if (piece.length === 0) continue
      ex.onSent?.(piece)
      if (!req.write(piece)) {
        await new Promise<void>(resolve => {
          const done = (): void => { req.off('drain', done); req.off('close', done); resolve() }
          req.once('drain', done)
          req.once('close', done)
        })
      }
    }
    if (!req.destroyed) req.end()
  }

  /** The response body, its failures typed (ours, such as a timeout or an abort, first). */
  async * read (res: IncomingMessage, failure: () => unknown): AsyncGenerator<Uint8Array> {
    try {
      for await (const piece of res) yield piece as Buffer
    } catch (err) {
      throw failure() ?? this.unreachable(err)
    } finally {
      if (!res.complete) res.destroy()
    }
    // A body cut short by the peer may end without an error: the decoder then says 'truncated'.
  }

  /** The typed error for a transport failure. */
  unreachable (err: unknown): DstoreError {
    if (err instanceof DstoreError) return err
    const code = (err as NodeJS.ErrnoException)?.code
    return new DaemonUnreachableError(`the Local daemon at ${this.base.origin} does not answer (${code ?? (err as Error)?.message ?? String(err)})`, { cause: err })
  }
}

/** The error a HEAD answer names in its headers (it has no body), or undefined. */
function errorOfHeaders (res: IncomingMessage): { code?: unknown, message?: unknown } | undefined {
  const code = res.headers['x-dstore-error-code']
  const message = res.headers['x-dstore-error-message']
  if (typeof code !== 'string' || typeof message !== 'string') return undefined
  try {
    return { code, message: decodeURIComponent(message) }
  } catch {
    return undefined
  }
}

/** Reads an error answer and builds the error it names; a body that is not one becomes an error by status. */
async function readError (res: IncomingMessage, status: number, ex: Exchange): Promise<DstoreError> {
  let text = ''
  if (ex.method !== 'HEAD') {
    try {
      for await (const piece of res) {
        text += (piece as Buffer).toString('utf8')
        if (text.length > MAX_ERROR_BODY) break
      }
    } catch {}
  }
  try {
    const doc = ex.method === 'HEAD' ? { error: errorOfHeaders(res) } : JSON.parse(text) as { error?: { code?: unknown, message?: unknown } }
    const code = doc.error?.code
    const message = doc.error?.message
    if (typeof code === 'string' && typeof message === 'string') {
      const Local = LATER[code]
      return Local !== undefined ? new Local(message) : errorFromCode(code, message)
    }
  } catch {}
  const what = `${ex.method} ${ex.path.split('?')[0]}`
  const Class = ({ 400: ArgumentError, 401: UnauthorizedError, 403: PermissionDeniedError, 404: NotFoundError, 413: TooLargeError, 416: OutOfRangeError, 503: GlobalUnreachableError } as Record<number, new (m: string) => DstoreError>)[status] ?? ProtocolError
  return new Class(`the Local daemon answered ${what} with ${status} ${res.statusMessage ?? ''}`.trim())
}
