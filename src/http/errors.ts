/**
 * The one place that maps dstore errors to HTTP statuses, and the JSON error body every route
 * answers with: `{ "error": { "name", "code", "message" } }` (docs/HTTP.md, "Errors").
 */
import type { ServerResponse } from 'node:http'
import { DstoreError } from '../core/errors.js'

/** HTTP status of each dstore error code. Anything else is a 500. */
const STATUS: Record<string, number> = {
  ERR_INVALID_CID: 400,
  ERR_INVALID_ARGUMENT: 400,
  ERR_OUT_OF_RANGE: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_PERMISSION_DENIED: 403,
  ERR_NOT_FOUND: 404,
  ERR_TOO_LARGE: 413,
  // A value that did not hash to what it claimed: the client's fault on a write (400), a lying
  // upstream's on a read (502); see statusOf.
  ERR_VERIFICATION_FAILED: 502,
  ERR_PROTOCOL: 502,
  ERR_GLOBAL_UNREACHABLE: 503,
  ERR_STORE_UNAVAILABLE: 503,
  ERR_CLOSED: 503,
  ERR_ABORTED: 503,
  ERR_TIMEOUT: 504,
  ERR_FILE_CHANGED: 500,
  ERR_STORAGE: 500,
  ERR_CONFIG: 500
}

/** An HTTP-level refusal that is not a dstore failure (405, 406, 412, 414, 416, 503 busy, ...). */
export class HttpError extends DstoreError {
  override name = 'HttpError'
  constructor (readonly status: number, code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message, code)
  }
}

/** The status for `err`. `write`: the request carried the bytes (a mismatch is then the client's fault). */
export function statusOf (err: unknown, write = false): number {
  if (err instanceof HttpError) return err.status
  if (!(err instanceof DstoreError)) return 500
  if (err.code === 'ERR_VERIFICATION_FAILED' && write) return 400
  return STATUS[err.code] ?? 500
}

/** The JSON error body. Errors that are not dstore's are not described (their text may name internals). */
export function errorBody (err: unknown): { error: { name: string, code: string, message: string } } {
  if (err instanceof DstoreError) return { error: { name: err.name, code: err.code, message: err.message } }
  return { error: { name: 'InternalError', code: 'ERR_INTERNAL', message: 'internal server error' } }
}

/**
 * Answers `err` on `res` if nothing was sent yet; otherwise the response is cut (the socket
 * destroyed), so a client never takes a truncated body for a whole one.
 */
export function sendError (res: ServerResponse, err: unknown, options: { write?: boolean, head?: boolean, close?: boolean } = {}): void {
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined)
    return
  }
  const status = statusOf(err, options.write)
  const body = Buffer.from(JSON.stringify(errorBody(err)) + '\n')
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': body.length,
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store'
  }
  if (err instanceof HttpError) Object.assign(headers, err.headers)
  // RFC 9110 11.6.1: a 401 names the scheme it wants.
  if (status === 401) headers['WWW-Authenticate'] = 'Bearer realm="dstore"'
  // The request body was not read: closing is the only way not to read it.
  if (options.close === true) headers.Connection = 'close'
  res.writeHead(status, headers)
  res.end(options.head === true ? undefined : body)
}
