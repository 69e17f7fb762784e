/**
 * Request and response bodies as streams, in bounded memory: a response is written with
 * backpressure (waiting for `drain`), a request body is counted against a size limit as it
 * arrives.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { TooLargeError } from '../core/errors.js'
import { HttpError } from './errors.js'

/** Resolves when `res` can take more, or is closed. */
async function drained (res: ServerResponse): Promise<void> {
  await new Promise<void>(resolve => {
    const done = (): void => { res.off('drain', done); res.off('close', done); resolve() }
    res.on('drain', done)
    res.on('close', done)
  })
}

/**
 * Writes the rest of `it` to `res` (whose head the caller wrote, and `first`, the piece it
 * already pulled to learn that the stream starts) and ends it. Stops early, releasing the
 * source, if the client goes away. An error after the head is sent cuts the response.
 */
export async function pipeBody (res: ServerResponse, it: AsyncIterator<Uint8Array>, first?: Uint8Array): Promise<void> {
  // The idle deadline is for a client that stops reading (we wait for `drain`), not for our own
  // source: a Local waiting for the next verified bytes (a swarm download whose next piece in
  // order is still coming) is not an idle client. Off while the source is awaited, back on after.
  const socket = res.socket
  const idle = socket?.timeout ?? 0
  const next = async (): Promise<IteratorResult<Uint8Array>> => {
    if (idle > 0) socket?.setTimeout(0)
    try {
      return await it.next()
    } finally {
      if (idle > 0 && socket?.destroyed === false) socket.setTimeout(idle)
    }
  }
  try {
    if (first !== undefined && first.length > 0 && !res.write(first)) await drained(res)
    while (!res.destroyed) {
      const { value, done } = await next()
      if (done === true) break
      if (value.length > 0 && !res.write(value)) await drained(res)
    }
    if (!res.destroyed) res.end()
  } finally {
    // A client that left early: the source (a reader, a fetch) is released now.
    await it.return?.()
  }
}

/** The request body, counted as it streams; past `max` bytes it fails with TooLargeError. */
export async function * boundedBody (req: IncomingMessage, max: number | undefined, counter: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of req as AsyncIterable<Buffer>) {
    counter.bytes += chunk.length
    if (max !== undefined && counter.bytes > max) throw new TooLargeError(`the body is larger than the ${max}-byte limit`)
    yield chunk
  }
}

/** The whole (small) body, refused (413) past `max` bytes. */
export async function readSmallBody (req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = declaredLength(req)
  if (declared !== undefined && declared > max) throw new HttpError(413, 'ERR_TOO_LARGE', `the body is larger than the ${max}-byte limit`)
  const pieces: Buffer[] = []
  const counter = { bytes: 0 }
  for await (const chunk of boundedBody(req, max, counter)) pieces.push(chunk as Buffer)
  return Buffer.concat(pieces)
}

/** The Content-Length the client declared, if any. */
export function declaredLength (req: IncomingMessage): number | undefined {
  const text = req.headers['content-length']
  if (text === undefined) return undefined
  const n = Number(text)
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}
