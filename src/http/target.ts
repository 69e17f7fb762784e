/**
 * The request target, checked before any route sees it. Paths are matched segment by segment
 * on what the client sent, never normalised: `..`, `.`, empty segments (`//`), encoded
 * slashes, NUL and other control characters are refused (400), so no route can be reached by
 * a path that only resolves to it (`/ipfs/../status`, `/%2e%2e/`).
 */
import { HttpError } from './errors.js'

/** Longest request target accepted (a CID is about 60 characters; the rest is a query). */
export const MAX_TARGET_LENGTH = 2048

export interface Target {
  /** Decoded path segments; `[]` for `/`. */
  segments: string[]
  query: URLSearchParams
}

const bad = (message: string): HttpError => new HttpError(400, 'ERR_BAD_PATH', message)

/** Splits and checks `url` (the request line's target). @throws {HttpError} 400 or 414. */
export function parseTarget (url: string): Target {
  if (url.length > MAX_TARGET_LENGTH) throw new HttpError(414, 'ERR_URI_TOO_LONG', `request target longer than ${MAX_TARGET_LENGTH} characters`)
  let text = url
  // absolute-form (a proxy-style request line): only the path and query count.
  const abs = /^https?:\/\/[^/?#]*/i.exec(text)
  if (abs !== null) text = text.slice(abs[0].length) === '' ? '/' : text.slice(abs[0].length)
  if (!text.startsWith('/')) throw bad('the request target must be a path starting with /')
  const q = text.indexOf('?')
  const path = q < 0 ? text : text.slice(0, q)
  const query = new URLSearchParams(q < 0 ? '' : text.slice(q + 1))
  if (path.includes('#')) throw bad('a fragment is not part of a request target')
  if (path === '/') return { segments: [], query }
  const segments = path.slice(1).split('/').map(raw => {
    let seg = raw
    if (raw.includes('%')) {
      try { seg = decodeURIComponent(raw) } catch { throw bad('the path has a malformed percent-encoding') }
    }
    if (seg === '') throw bad('the path has an empty segment (//, or a trailing /)')
    if (seg === '.' || seg === '..') throw bad('the path has a . or .. segment')
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f/\\]/.test(seg)) throw bad('the path has a control character, or an encoded / or \\')
    return seg
  })
  return { segments, query }
}
