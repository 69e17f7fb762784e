/** What every route handler gets: the request, its checked target, the backend and the listener's policy. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { HttpBackend } from './backend.js'
import type { Target } from './target.js'

export interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  /** Upper-case request method. */
  method: string
  target: Target
  backend: HttpBackend
  /** Aborted when the client goes away or the server closes. */
  signal: AbortSignal
  /** Refuses a write (401 without the token, 403 on a read-only listener or a cross-site request). */
  checkWrite: () => void
  /** Largest body a put may have. */
  maxBlobSize?: number
  log: (line: string) => void
}

/** A route: handles the request fully (or throws, and the server answers the error). */
export type Handler = (ctx: RequestContext) => Promise<void>
